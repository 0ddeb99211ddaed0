"""A circuit breaker per source, its state shared through the Store so every Lambda and task sees it.

CLOSED: calls go through; consecutive failures of ONE reason are counted (a different reason
restarts the count, a success resets it). At ``threshold`` the breaker OPENS: the source is skipped,
without being called, until ``cooldown_s`` has passed. Then the first caller claims a HALF_OPEN
trial (atomically, so exactly one process tries); its success closes the breaker, its failure
opens it for another cool-down. A trial whose caller died is given up after ``trial_timeout_s``.

Only failures that are the source's fault count (``failures.Failure.source_fault``): "not found"
or "too long" say nothing about the source's health.

The record is ``pk = "S#breaker#<source>"``, ``sk = "breaker"``, written with ``Store.update_record``
(compare-and-swap). ``MemoryRecords`` serves the same two calls inside one process.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .metrics import emit_breaker_opened

_log = logging.getLogger(__name__)

BREAKER_SK = "breaker"
Clock = Callable[[], float]
Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]


def breaker_pk(source: str) -> str:
    return f"S#breaker#{source}"


class RecordStore(Protocol):
    """The two calls of ``timmybot.store.Store`` the breaker needs."""

    def get_record(self, pk: str, sk: str) -> dict[str, Any] | None: ...

    def update_record(
        self, pk: str, sk: str, change: Change, *, ttl_s: float | None = None
    ) -> dict[str, Any] | None: ...


class MemoryRecords:
    """``RecordStore`` for one process (default settings, unit tests). TTLs are not needed here."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get_record(self, pk: str, sk: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records.get((pk, sk))
            return dict(record) if record is not None else None

    def update_record(self, pk: str, sk: str, change: Change, *, ttl_s: float | None = None) -> dict[str, Any] | None:
        with self._lock:
            stored = self._records.get((pk, sk))
            current = dict(stored) if stored is not None else None
            updated = change(current)
            if updated is current or updated is None:
                return current
            self._records[(pk, sk)] = dict(updated)
            return updated


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One source's breaker as stored."""

    state: BreakerState
    reason: str | None = None
    failures: int = 0
    open_until: float = 0.0
    trial_until: float = 0.0
    trial_id: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> BreakerSnapshot:
        if not record:
            return cls(BreakerState.CLOSED)
        try:
            state = BreakerState(str(record.get("state", "closed")))
        except ValueError:
            state = BreakerState.CLOSED
        reason = record.get("reason")
        trial_id = record.get("trial_id")
        return cls(
            state=state,
            reason=None if reason is None else str(reason),
            failures=int(record.get("failures") or 0),
            open_until=float(record.get("open_until") or 0),
            trial_until=float(record.get("trial_until") or 0),
            trial_id=None if trial_id is None else str(trial_id),
        )

    def to_record(self) -> dict[str, Any]:
        # DynamoDB stores numbers as Decimal: whole milliseconds keep them exact and comparable.
        return {
            "state": self.state.value,
            "reason": self.reason,
            "failures": self.failures,
            "open_until": round(self.open_until, 3),
            "trial_until": round(self.trial_until, 3),
            "trial_id": self.trial_id,
        }


class CircuitBreaker:
    """Per-source breakers over one ``RecordStore``. Store trouble never blocks playback: it is
    logged and the source is allowed."""

    def __init__(
        self,
        records: RecordStore,
        *,
        threshold: int = 5,
        cooldown_s: float = 300.0,
        trial_timeout_s: float = 60.0,
        clock: Clock = time.time,
    ) -> None:
        if threshold < 1 or cooldown_s <= 0 or trial_timeout_s <= 0:
            raise ValueError("threshold >= 1, cooldown_s > 0 and trial_timeout_s > 0 are required")
        self._records = records
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._trial_timeout_s = trial_timeout_s
        self._clock = clock
        # Keep a record long after its cool-down so a flapping source is still remembered.
        self._ttl_s = max(cooldown_s * 4, 3600.0)

    @property
    def threshold(self) -> int:
        return self._threshold

    def snapshot(self, source: str) -> BreakerSnapshot:
        return BreakerSnapshot.from_record(self._records.get_record(breaker_pk(source), BREAKER_SK))

    def allow(self, source: str) -> bool:
        """May ``source`` be called now? Claims the half-open trial when the cool-down is over."""
        now = self._clock()
        try:
            current = self.snapshot(source)
        except Exception:
            _log.warning("breaker state of %s unreadable; allowing the call", source, exc_info=True)
            return True
        if current.state is BreakerState.CLOSED:
            return True
        if current.state is BreakerState.OPEN and now < current.open_until:
            return False
        if current.state is BreakerState.HALF_OPEN and now < current.trial_until:
            return False
        token = uuid.uuid4().hex

        def claim(record: dict[str, Any] | None) -> dict[str, Any] | None:
            snap = BreakerSnapshot.from_record(record)
            due = (snap.state is BreakerState.OPEN and now >= snap.open_until) or (
                snap.state is BreakerState.HALF_OPEN and now >= snap.trial_until
            )
            if not due:
                return record
            return BreakerSnapshot(
                BreakerState.HALF_OPEN, snap.reason, snap.failures, snap.open_until, now + self._trial_timeout_s, token
            ).to_record()

        stored = self._update(source, claim)
        if stored is None:
            return True
        claimed = BreakerSnapshot.from_record(stored)
        if claimed.state is BreakerState.CLOSED:
            return True
        if claimed.trial_id == token:
            _log.info("breaker of %s half-open: one trial call", source)
            return True
        return False

    def record_success(self, source: str) -> None:
        closed_now = False

        def close(record: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal closed_now
            snap = BreakerSnapshot.from_record(record)
            closed_now = False
            if record is None or (snap.state is BreakerState.CLOSED and snap.failures == 0):
                return record  # nothing to write: the common case costs one read
            closed_now = snap.state is not BreakerState.CLOSED
            return BreakerSnapshot(BreakerState.CLOSED).to_record()

        self._update(source, close)
        if closed_now:
            _log.warning("breaker of %s CLOSED: the trial call succeeded", source)

    def record_failure(self, source: str, reason: str) -> bool:
        """Count a source-fault failure; True when this failure opened the breaker."""
        now = self._clock()
        opened_now = False

        def count(record: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal opened_now
            snap = BreakerSnapshot.from_record(record)
            opened_now = False
            if snap.state is BreakerState.OPEN:
                return record  # a call that started before the breaker opened
            failures = snap.failures + 1 if snap.reason == reason else 1
            if snap.state is BreakerState.HALF_OPEN or failures >= self._threshold:
                opened_now = True
                return BreakerSnapshot(BreakerState.OPEN, reason, failures, now + self._cooldown_s).to_record()
            return BreakerSnapshot(BreakerState.CLOSED, reason, failures).to_record()

        self._update(source, count)
        if opened_now:
            _log.warning(
                "breaker of %s OPEN (reason %s): skipped for %.0f s",
                source,
                reason,
                self._cooldown_s,
            )
            emit_breaker_opened(source, reason)
        return opened_now

    def _update(self, source: str, change: Change) -> dict[str, Any] | None:
        try:
            return self._records.update_record(breaker_pk(source), BREAKER_SK, change, ttl_s=self._ttl_s)
        except Exception:
            _log.warning("breaker state of %s could not be written", source, exc_info=True)
            return None
