"""Queue controls that need more than one record: plain functions over the Store port.

``go_back``: /back plays the previous track of the guild's history again, now, and puts the current
one back at the head of the queue (from its start), in one conditional write (``insert_entries``).
Repeated /back walks further back (``previous_track``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from timmybot.errors import InvalidInputError
from timmybot.models import BACK_REPLAY, GuildRecord, QueueEntry, is_back_replay, replay_id, root_id
from timmybot.store.base import Store
from timmybot.store.keys import USER_GUILDS_SK, user_pk

NOTHING_BEFORE = "There's no earlier track in this server's history to go back to."
USER_GUILDS_MAX = 200


@dataclass(frozen=True)
class Back:
    previous: QueueEntry
    record: GuildRecord


def previous_track(record: GuildRecord, history: list[QueueEntry]) -> QueueEntry | None:
    """The track to go back to (history is newest first and holds the current one).

    Repeated /back walks back through the history instead of swapping the last two: when the
    current track is itself /back's replay of an earlier entry, the walk goes on from that entry
    (the newest one of the same track below the current one), not from the replay.
    """
    playing = record.actual.now_playing
    if playing is None:
        return history[0] if history else None
    ids = [entry.entry_id for entry in history]
    at = ids.index(playing.entry_id) if playing.entry_id in ids else -1
    if is_back_replay(playing.entry_id):
        root = root_id(playing.entry_id)
        replayed = (i for i in range(at + 1, len(ids)) if root_id(ids[i]) == root and ids[i] != playing.entry_id)
        at = next(replayed, at)
    if at >= 0:
        return history[at + 1] if at + 1 < len(history) else None
    return next((entry for entry in history if entry.entry_id != playing.entry_id), None)


def go_back(store: Store, guild_id: str, *, interaction_id: str, user_id: str, cap: int, now: float) -> Back:
    """Play the previous track again now; the current one goes back to the head, to play next.

    Both are replays (``replay_id``): under loop queue each takes the place in the cycle of the
    track it replays (``Store.insert_entries`` and ``pop_head`` keep one entry per track)."""
    record = store.get_guild(guild_id)
    previous = previous_track(record, store.guild_history(guild_id))
    if previous is None:
        raise InvalidInputError(NOTHING_BEFORE)
    again = QueueEntry(
        entry_id=replay_id(previous.entry_id, interaction_id, BACK_REPLAY),
        track=previous.track,
        requester_id=previous.requester_id or user_id,
        added_at=now,
    )
    playing = record.actual.now_playing
    comeback = None
    if playing is not None:
        back_id = replay_id(playing.entry_id, interaction_id, "-back")
        comeback = (playing.entry_id, replace(playing, entry_id=back_id, start_ms=0, added_at=now))
    written = store.insert_entries(guild_id, [again], cap=cap, now_play=playing is not None, comeback=comeback)
    return Back(previous=again, record=written)


def remember_guild(store: Store, user_id: str, guild_id: str) -> None:
    """Note that ``user_id`` queued music in ``guild_id`` (newest first), so that /forget-me finds
    their name in that guild's history without scanning every guild."""
    if not user_id.isdigit() or not guild_id.isdigit():
        return

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        ids = [str(i) for i in (current or {}).get("ids") or ()]
        if ids[:1] == [guild_id]:
            return current
        return {"ids": [guild_id, *(i for i in ids if i != guild_id)][:USER_GUILDS_MAX]}

    store.update_record(user_pk(user_id), USER_GUILDS_SK, change)


def forget_in_guilds(store: Store, user_id: str) -> int:
    """/forget-me: drop ``user_id`` as the requester in every guild history they queued in (the
    tracks stay: they are the server's history). Returns how many entries named them."""
    record = store.get_record(user_pk(user_id), USER_GUILDS_SK) or {}
    return sum(store.forget_requester(str(guild_id), user_id) for guild_id in record.get("ids") or ())
