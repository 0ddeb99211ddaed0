"""The Store port.

One single-table layout serves every access pattern of BRIEF §4, so the adapters only differ in a
handful of item primitives (get, conditional put, batch put/get/delete, the sparse "active"
index). Everything with meaning — the queue model, the lease with generations, the desired/actual
split, dedupe — is written once, in terms of those primitives, so SQLite, DynamoDB and memory
cannot drift apart. (The same shape as Powertools' idempotency persistence layer.)

The port is assembled from groups of operations, one module each: ``core`` (the primitives and the
guild record's compare-and-set), ``queue``, ``lease``, ``history`` and ``records``; this module adds
the typed changes of the desired state and the settings.

Keys: ``timmybot.store.keys`` is the table's map (the guild record, queue entries, the guild's
history, interaction dedupe, the track cache, and the small records of the other modules).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from timmybot.filters import Filters
from timmybot.models import Actual, Desired, GuildRecord, GuildSettings, LoopMode, QueuePage
from timmybot.store.core import ENTRY_TTL_S, Clock, Key, StoredItem, _require_generation, chunked
from timmybot.store.history import GUILD_HISTORY_MAX, HistoryOps, history_slot
from timmybot.store.keys import DEDUPE_SK, GUILD_SK, TRACK_SK, entry_sk, guild_pk, track_pk
from timmybot.store.lease import LeaseOps
from timmybot.store.queue import MAX_PAGE, QueueOps
from timmybot.store.records import TRACK_CACHE_TTL_S, RecordOps


class Unset(enum.Enum):
    """The default of a setting a call leaves as it is."""

    UNSET = "unset"


UNSET = Unset.UNSET


class Store(QueueOps, LeaseOps, HistoryOps, RecordOps):
    """Guild records, queues, voice-task leases and interaction dedupe (BRIEF §4: 1, 2, 3, 8)."""

    # ------------------------------------------------------------------ desired state (what the control plane wants)
    def skip(self, guild_id: str) -> GuildRecord:
        """Skip the current track: the skip counter grows, the voice task applies it once."""
        return self._change_desired(guild_id, lambda d: replace(d, skip_seq=d.skip_seq + 1))

    def stop(self, guild_id: str) -> GuildRecord:
        """Stop playback and leave: the stop counter grows, and the next session starts unpaused."""
        return self._change_desired(guild_id, lambda d: replace(d, stop_seq=d.stop_seq + 1, paused=False))

    def seek(self, guild_id: str, position_ms: int) -> GuildRecord:
        """Play the current track from ``position_ms`` (applied once, like a skip)."""
        if position_ms < 0:
            raise ValueError("position_ms must not be negative")
        return self._change_desired(guild_id, lambda d: replace(d, seek_ms=position_ms, seek_seq=d.seek_seq + 1))

    def pause(self, guild_id: str) -> GuildRecord:
        return self.set_paused(guild_id, True)

    def resume(self, guild_id: str) -> GuildRecord:
        return self.set_paused(guild_id, False)

    def set_paused(self, guild_id: str, paused: bool) -> GuildRecord:
        return self._change_desired(guild_id, lambda d: replace(d, paused=paused))

    def set_volume(self, guild_id: str, volume: int) -> GuildRecord:
        return self._change_desired(guild_id, lambda d: replace(d, volume=volume))

    def set_loop(self, guild_id: str, mode: LoopMode) -> GuildRecord:
        return self._change_desired(guild_id, lambda d: replace(d, loop=LoopMode(mode)))

    def set_autoplay(self, guild_id: str, on: bool) -> GuildRecord:
        return self._change_desired(guild_id, lambda d: replace(d, autoplay=on))

    def set_filters(self, guild_id: str, filters: Filters) -> GuildRecord:
        """/filter, /speed and /pitch: the sound the voice task plays with (desired state, like volume)."""
        return self._change_desired(
            guild_id, lambda d: replace(d, filter=filters.preset, speed=filters.speed, pitch=filters.pitch)
        )

    def _change_desired(self, guild_id: str, change: Callable[[Desired], Desired]) -> GuildRecord:
        return self.update_guild(guild_id, lambda r: r.evolve(desired=change(r.desired), last_active=self._clock()))

    # ------------------------------------------------------------------ settings and channels
    def update_settings(
        self,
        guild_id: str,
        *,
        dj_role_id: str | Unset | None = UNSET,
        twenty_four_seven: bool | Unset = UNSET,
        idle_timeout_s: int | Unset | None = UNSET,
        vote_skip: bool | Unset = UNSET,
        vote_skip_percent: int | Unset = UNSET,
        dj_only: bool | Unset = UNSET,
        dj_only_adding: bool | Unset = UNSET,
        lyrics_in_card: bool | Unset = UNSET,
    ) -> GuildRecord:
        """Change the named settings (the others stay as they are), atomically."""
        named: dict[str, Any] = {  # typed field by field in the signature above
            "dj_role_id": dj_role_id,
            "twenty_four_seven": twenty_four_seven,
            "idle_timeout_s": idle_timeout_s,
            "vote_skip": vote_skip,
            "vote_skip_percent": vote_skip_percent,
            "dj_only": dj_only,
            "dj_only_adding": dj_only_adding,
            "lyrics_in_card": lyrics_in_card,
        }
        changes = {name: value for name, value in named.items() if not isinstance(value, Unset)}
        return self.update_guild(guild_id, lambda r: r.evolve(settings=replace(r.settings, **changes)))

    def set_channels(self, guild_id: str, *, voice_channel_id: str, text_channel_id: str | None) -> GuildRecord:
        return self.update_guild(
            guild_id,
            lambda r: r.evolve(voice_channel_id=voice_channel_id, text_channel_id=text_channel_id),
        )

    def write_actual(self, guild_id: str, generation: int, actual: Actual) -> GuildRecord:
        """The voice task reports its state; refused (StaleGenerationError) with a superseded generation."""

        def change(record: GuildRecord) -> GuildRecord:
            _require_generation(record, generation)
            return record.evolve(actual=replace(actual, updated_at=self._clock()))

        return self.update_guild(guild_id, change)


__all__ = [
    "DEDUPE_SK",
    "ENTRY_TTL_S",
    "GUILD_HISTORY_MAX",
    "GUILD_SK",
    "MAX_PAGE",
    "TRACK_CACHE_TTL_S",
    "TRACK_SK",
    "UNSET",
    "Clock",
    "GuildSettings",
    "Key",
    "QueuePage",
    "Store",
    "StoredItem",
    "Unset",
    "chunked",
    "entry_sk",
    "guild_pk",
    "history_slot",
    "track_pk",
]
