"""The voice task's lease (BRIEF §4.3): one holder per guild, with generations, and the active index."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from timmybot.errors import StaleGenerationError
from timmybot.models import Actual, Desired, GuildRecord, Lease, LeaseState
from timmybot.store.core import StoreCore, _require_generation
from timmybot.store.keys import GUILD_SK, entry_sk, guild_id_of, guild_pk


class LeaseOps(StoreCore):
    # ------------------------------------------------------------------ lease (BRIEF §4.3)
    def acquire_lease(self, guild_id: str, *, holder: str, state: LeaseState, ttl_s: float,
                      wake: str | None = None) -> Lease | None:  # fmt: skip
        """Take the lease if it is free, released or expired; bumps the generation.

        A new holder adopts the desired counters as applied, so a stale skip never skips the
        first track of a new session. Returns None if someone else holds a live lease.
        """

        def change(record: GuildRecord) -> GuildRecord:
            now = self._clock()
            if record.lease.is_live(now):
                raise _LeaseHeld()
            lease = Lease(
                state=state,
                generation=record.lease.generation + 1,
                holder=holder,
                expires_at=now + ttl_s,
                resume=record.lease.resume,
                wake=wake,
                voice_gave_up_at=record.lease.voice_gave_up_at,
            )
            return record.evolve(lease=lease, actual=_adopt_counters(record.actual, record.desired))

        try:
            return self.update_guild(guild_id, change).lease
        except _LeaseHeld:
            return None

    def claim_lease(self, guild_id: str, *, generation: int, holder: str, ttl_s: float,
                    wake: str | None = None) -> Lease | None:  # fmt: skip
        """A launched task turns its ``launching`` lease (same generation) into ``running``."""

        def change(record: GuildRecord) -> GuildRecord:
            now = self._clock()
            lease = record.lease
            if lease.generation != generation or lease.state != LeaseState.LAUNCHING or lease.expires_at <= now:
                raise _LeaseHeld()
            return record.evolve(
                lease=replace(lease, state=LeaseState.RUNNING, holder=holder, expires_at=now + ttl_s, wake=wake),
                actual=_adopt_counters(record.actual, record.desired),
            )

        try:
            return self.update_guild(guild_id, change).lease
        except _LeaseHeld:
            return None

    def renew_lease(self, guild_id: str, *, generation: int, ttl_s: float, wake: str | None = None) -> bool:
        """Extend the lease. ``wake`` (the task's wake address) is written again each time: a
        control plane of an older release rewrites records without it during a rolling deploy."""

        def change(record: GuildRecord) -> GuildRecord:
            _require_generation(record, generation)
            lease = replace(record.lease, expires_at=self._clock() + ttl_s)
            if wake is not None:
                lease = replace(lease, wake=wake)
            return record.evolve(lease=lease)

        try:
            self.update_guild(guild_id, change)
        except StaleGenerationError:
            return False
        return True

    def release_lease(self, guild_id: str, *, generation: int, resume_position_ms: int | None = None,
                      voice_gave_up: bool = False) -> bool:  # fmt: skip
        """Give the lease up (``released``).

        With ``resume_position_ms`` (SIGTERM, a deploy, a voice connection given up) the current
        entry goes back to the head of the queue and the lease remembers where to continue;
        otherwise the current entry is done. ``voice_gave_up`` keeps the reaper from relaunching
        for a while (each relaunch costs an identify); a release without it clears an earlier mark.
        """
        finished: list[str] = []

        def change(record: GuildRecord) -> GuildRecord:
            _require_generation(record, generation)
            current = record.actual.now_playing
            queue = record.queue
            resume: dict[str, Any] | None = None
            finished[:] = []
            if current is not None and resume_position_ms is not None:
                queue = (current.entry_id, *queue)
                resume = {"entry_id": current.entry_id, "position_ms": int(resume_position_ms)}
            elif current is not None:
                finished[:] = [current.entry_id]
            # A task that ends on its own terms (not giving up on voice) proves voice works again: the
            # reaper may relaunch the guild at once, whatever an earlier generation gave up on
            gave_up = self._clock() if voice_gave_up else None
            lease = replace(record.lease, state=LeaseState.RELEASED, expires_at=0.0, resume=resume, wake=None,
                            voice_gave_up_at=gave_up)  # fmt: skip
            actual = replace(record.actual, now_playing=None, started_at=None, position_ms=0, listener_ids=())
            return record.evolve(lease=lease, actual=actual, queue=queue)

        try:
            self.update_guild(guild_id, change)
        except StaleGenerationError:
            return False
        if finished:
            self._delete_items([(guild_pk(guild_id), entry_sk(i)) for i in finished])
        return True

    def purge_expired(self) -> int:
        """Remove expired items (SQLite); DynamoDB's TTL does this by itself. Returns how many."""
        return self._purge_expired(self._clock())

    def active_guild_ids(self) -> list[str]:
        """Guilds with a lease or queued music, read from the sparse index."""
        return sorted(g for pk, sk in self._active_keys() if sk == GUILD_SK and (g := guild_id_of(pk)) is not None)


class _LeaseHeld(Exception):
    """Internal: aborts a lease change without writing."""


def _adopt_counters(actual: Actual, desired: Desired) -> Actual:
    return replace(
        actual,
        applied_skip_seq=desired.skip_seq,
        applied_stop_seq=desired.stop_seq,
        applied_seek_seq=desired.seek_seq,
    )
