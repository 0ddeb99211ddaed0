"""The voice task's lease: claiming it (``claim``), and the heartbeat, on a thread of its own.

It renews the lease every ``heartbeat_s`` whatever the task is doing: a hung resolve, a slow REST
call or a long tick can never starve it, so the reaper never relaunches a guild under a task that
is still playing. It only ever calls ``Store.renew_lease``; a renewal refused because another task
took the lease (a newer generation) is reported once through ``on_lost``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from timmybot.models import GuildRecord, Lease, LeaseState, QueueEntry
from timmybot.store.base import Store
from voice_task.reconcile import Applied

_log = logging.getLogger(__name__)

#: After a failed renewal (a store error), try again this soon rather than a whole beat later.
RETRY_S = 2.0


class LeaseKeeper:
    def __init__(
        self,
        store: Store,
        guild_id: str,
        generation: int,
        *,
        ttl_s: float,
        every_s: float,
        on_lost: Callable[[], None],
        wake: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._guild_id = guild_id
        self._generation = generation
        self._ttl_s = ttl_s
        self._every_s = every_s
        self._on_lost = on_lost
        self._wake = wake  # put back on each renewal: a writer of an older release drops it
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{guild_id}", daemon=True)
        self.renewals = 0
        self.last_renewed_at = clock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        wait = self._every_s
        while not self._stop.wait(wait):
            try:
                renewed = self._store.renew_lease(self._guild_id, generation=self._generation, ttl_s=self._ttl_s,
                                                  wake=self._wake)  # fmt: skip
            except Exception as exc:  # the store is down for a moment: the lease has ttl_s of slack
                _log.warning("lease renewal failed (%s): retrying in %.0f s", type(exc).__name__, RETRY_S)
                wait = RETRY_S
                continue
            if not renewed:
                _log.warning("lease generation %s is no longer ours", self._generation)
                self._on_lost()
                return
            self.renewals += 1
            self.last_renewed_at = self._clock()
            wait = self._every_s


@dataclass(frozen=True)
class Claimed:
    """What a task starts from once the lease is its own."""

    lease: Lease
    record: GuildRecord
    applied: Applied  # the controls the previous task had applied (none is applied twice)
    resume_position_ms: int | None  # where a SIGTERM'd (or given-up) predecessor stopped the head entry
    left_behind: tuple[QueueEntry, int] | None  # what a predecessor that died mid-track left playing, and where


def claim(store: Store, guild_id: str, *, holder: str, launched_generation: int | None, ttl_s: float,
          wake: str | None) -> Claimed | None:  # fmt: skip
    """Take the guild's lease (the one a launcher made for us, or a free one) and read where the
    last task left off; None when another task holds it. Blocking: run it off the event loop."""
    if launched_generation is not None:
        lease = store.claim_lease(guild_id, generation=launched_generation, holder=holder, ttl_s=ttl_s, wake=wake)
    else:
        lease = store.acquire_lease(guild_id, holder=holder, state=LeaseState.RUNNING, ttl_s=ttl_s, wake=wake)
    if lease is None:
        return None
    record = store.get_guild(guild_id)
    actual = record.actual
    applied = Applied(skip_seq=actual.applied_skip_seq, stop_seq=actual.applied_stop_seq,
                      seek_seq=actual.applied_seek_seq, paused=False, volume=record.desired.volume,
                      filters=record.desired.filters)  # fmt: skip
    resume = None
    if lease.resume and record.queue and record.queue[0] == lease.resume.get("entry_id"):
        resume = int(lease.resume.get("position_ms", 0))
    left_behind = None
    if actual.now_playing is not None:  # a previous task died mid-track (no clean release): it plays again
        position = 0
        if actual.started_at is not None and actual.updated_at:
            position = max(0, int((actual.updated_at - actual.started_at) * 1000 * actual.rate))
        left_behind = (actual.now_playing, position)
    return Claimed(lease, record, applied, resume, left_behind)
