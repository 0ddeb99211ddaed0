"""Queue controls that need more than one record: plain functions over the Store port.

``go_back``: /back plays the previous track of the guild's history again, now, and puts the current
one back at the head of the queue (from its start), in one conditional write (``insert_entries``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from timmybot.errors import InvalidInputError
from timmybot.models import GuildRecord, QueueEntry
from timmybot.store.base import Store
from timmybot.store.keys import USER_GUILDS_SK, user_pk

NOTHING_BEFORE = "There's no earlier track in this server's history to go back to."
USER_GUILDS_MAX = 200


@dataclass(frozen=True)
class Back:
    previous: QueueEntry
    record: GuildRecord


def previous_track(record: GuildRecord, history: list[QueueEntry]) -> QueueEntry | None:
    """The track played before the current one (history is newest first and holds the current one)."""
    playing = record.actual.now_playing
    if playing is None:
        return history[0] if history else None
    for index, entry in enumerate(history):
        if entry.entry_id == playing.entry_id:
            return history[index + 1] if index + 1 < len(history) else None
    return next((entry for entry in history if entry.entry_id != playing.entry_id), None)


def go_back(store: Store, guild_id: str, *, interaction_id: str, user_id: str, cap: int, now: float) -> Back:
    """Play the previous track again now; the current one goes back to the head, to play next."""
    record = store.get_guild(guild_id)
    previous = previous_track(record, store.guild_history(guild_id))
    if previous is None:
        raise InvalidInputError(NOTHING_BEFORE)
    again = QueueEntry(
        entry_id=f"{interaction_id}-prev",
        track=dict(previous.track),
        requester_id=previous.requester_id or user_id,
        added_at=now,
    )
    playing = record.actual.now_playing
    comeback = None
    if playing is not None:
        comeback = (playing.entry_id, replace(playing, entry_id=f"{interaction_id}-back", start_ms=0, added_at=now))
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
