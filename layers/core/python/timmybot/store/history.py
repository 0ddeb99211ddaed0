"""The guild's play history: a ring of small slots, merged with the legacy single item on read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from timmybot.models import QueueEntry, Track
from timmybot.store.core import Key, StoreCore
from timmybot.store.keys import GUILD_HISTORY_SK, HISTORY_SLOTS, guild_pk, history_slot_sk, history_slot_sks
from timmybot.store.limits import item_size

GUILD_HISTORY_MAX = HISTORY_SLOTS


class HistoryOps(StoreCore):
    # ------------------------------------------------------------------ guild history
    def record_played(self, guild_id: str, entry: QueueEntry, *, now: float, seq: int) -> None:
        """Note that ``entry`` started playing, as the guild's play number ``seq``.

        One small item of its own (``G#{guild}`` / ``H#{seq % 50}``, see ``keys.history_slot_sk``),
        written unconditionally: about one write unit and no read, where the legacy single item
        (``HISTORY``, rewritten whole at every track) cost ten to twenty-five. ``seq`` comes from the
        voice task's ``Actual.played_seq``; noting the same ``seq`` again (a retried write) rewrites
        the same slot."""
        key = (guild_pk(guild_id), history_slot_sk(seq % HISTORY_SLOTS))
        self._put_items([(key, history_slot(key, entry, now=now, seq=seq), None)])

    def guild_history(self, guild_id: str) -> list[QueueEntry]:
        """The tracks played in the guild, newest first (the one playing now, if any, is the first).

        ONE batch get: the ring's 50 slots and the legacy item, which an older voice task may still
        write during a rolling deploy (and guilds that played before the ring have). Both are merged
        by when they played, newest first, each entry once (its newest play), at most 50."""
        pk = guild_pk(guild_id)
        legacy_key = (pk, GUILD_HISTORY_SK)
        slot_keys = [(pk, sk) for sk in history_slot_sks()]
        found = self._get_items([*slot_keys, legacy_key])
        slots = [
            (int(item.data.get("seq") or 0), raw)
            for key in slot_keys
            if (item := self._fresh(found.get(key))) is not None and isinstance(raw := item.data, dict)
        ]
        ring = [raw for _, raw in sorted(slots, key=lambda pair: pair[0], reverse=True)]
        legacy_item = self._fresh(found.get(legacy_key))
        legacy = [i for i in (legacy_item.data.get("items") or ()) if isinstance(i, dict)] if legacy_item else []
        played: list[QueueEntry] = []
        seen: set[str] = set()
        for raw in _newest_first(ring, legacy):
            entry_id = str(raw.get("entry_id") or "")
            if entry_id in seen or not isinstance(raw.get("track"), dict):
                continue
            seen.add(entry_id)
            played.append(
                QueueEntry(
                    entry_id=entry_id,
                    track=Track.from_stored(raw["track"]),
                    requester_id=str(raw.get("requester_id") or ""),
                    added_at=float(raw.get("played_at") or 0.0),
                )
            )
        return played[:GUILD_HISTORY_MAX]

    def forget_requester(self, guild_id: str, user_id: str) -> int:
        """/forget-me: keep the guild history's tracks, drop ``user_id`` as their requester, in the
        ring's slots and in the legacy item. Returns how many plays named them.

        A slot is rewritten only if it still holds the version read (a conditional put); a voice
        task that writes a new play into that very slot in between wins, and its play is newer than
        the one forgotten."""
        pk = guild_pk(guild_id)
        slot_keys = [(pk, sk) for sk in history_slot_sks()]
        dropped = 0
        for key, item in self._get_items(slot_keys).items():
            fresh = self._fresh(item)
            if fresh is None or fresh.data.get("requester_id") != user_id:
                continue
            dropped += 1
            data = {**fresh.data, "requester_id": ""}
            self._put_item(key, data, expected_version=fresh.version, now=self._clock())
        legacy = [0]

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            items = [dict(i) for i in (current or {}).get("items") or () if isinstance(i, dict)]
            legacy[0] = sum(1 for i in items if i.get("requester_id") == user_id)
            if not legacy[0]:
                return current
            for i in items:
                if i.get("requester_id") == user_id:
                    i["requester_id"] = ""
            return {"items": items}

        self._update_item((pk, GUILD_HISTORY_SK), change)
        return dropped + legacy[0]


#: What a history slot keeps of a track: what /history shows and what queueing it again needs
#: (``Track.from_dict``); the title and artist capped in bytes, so that a slot stays within one
#: write unit (1 KB) for any link up to about 300 bytes.
SLOT_TRACK_FIELDS = ("source", "source_id", "title", "url", "duration_s", "artist", "thumbnail", "isrc")
SLOT_TITLE_BYTES = 200
SLOT_ARTIST_BYTES = 100
WRITE_UNIT_BYTES = 1024


def history_slot(key: Key, entry: QueueEntry, *, now: float, seq: int) -> dict[str, Any]:
    """The data of one history slot: small (the thumbnail goes when the slot would pass 1 KB)."""
    stored = entry.track.to_dict()
    track = {name: stored[name] for name in SLOT_TRACK_FIELDS if stored.get(name) is not None}
    for name, limit in (("title", SLOT_TITLE_BYTES), ("artist", SLOT_ARTIST_BYTES)):
        if isinstance(track.get(name), str):
            track[name] = cap_bytes(track[name], limit)
    data: dict[str, Any] = {
        "entry_id": entry.entry_id,
        "track": track,
        "requester_id": entry.requester_id,
        "played_at": round(now, 3),
        "seq": seq,
    }
    if item_size(key, data) > WRITE_UNIT_BYTES:
        track.pop("thumbnail", None)
    return data


def cap_bytes(value: str, limit: int) -> str:
    """``value`` in at most ``limit`` UTF-8 bytes, cut at a character with an ellipsis."""
    if len(value.encode("utf-8", "surrogatepass")) <= limit:
        return value
    ellipsis = "…"
    budget = limit - len(ellipsis.encode())
    out = value.encode("utf-8", "surrogatepass")[:budget].decode("utf-8", "ignore")
    return out + ellipsis


def _newest_first(ring: list[dict[str, Any]], legacy: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Two histories, each newest first, merged by ``played_at`` (the ring's play first on a tie)."""
    i = j = 0
    while i < len(ring) or j < len(legacy):
        take_ring = j >= len(legacy) or (
            i < len(ring) and float(ring[i].get("played_at") or 0.0) >= float(legacy[j].get("played_at") or 0.0)
        )
        if take_ring:
            yield ring[i]
            i += 1
        else:
            yield legacy[j]
            j += 1
