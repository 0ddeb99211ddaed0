"""A circuit breaker per source, its state shared through the Store so every Lambda and task sees it.

CLOSED: calls go through; consecutive failures of ONE reason are counted (a different reason
restarts the count, a success resets it). At ``threshold`` the breaker OPENS: the source is skipped,
without being called, until ``cooldown_s`` has passed. Then the first caller claims a HALF_OPEN
trial (atomically, so exactly one process tries); its success closes the breaker, its failure
opens it for another cool-down. A trial whose caller died is given up after ``trial_timeout_s``.

Only failures that may be the source's fault count, in one of two ways (``failures.Scope``):

- a source-wide failure (bot check, HTTP 429, 5xx, timeout, unreachable) counts as above
  (``record_failure``);
- a per-track failure (an unknown extractor error, a sign-in wall, a 403 on one stream) is kept as
  evidence: (reason, track, guild, time) (``record_track_failure``). It opens the breaker only when
  one reason has hit ``SpreadRule.tracks`` distinct tracks from ``SpreadRule.guilds`` distinct
  guilds within ``SpreadRule.window_s``, so one guild's bad links never switch a source off for
  everyone. Per-track failures neither add to nor restart the consecutive count.

"Not found" or "too long" say nothing about the source's health and never count. A failing canary
(``scripts/canary.py``) opens the breaker at once (``trip``).

The evidence lives in the same record, bounded (``MAX_EVIDENCE`` entries; at most ``SpreadRule.tracks``
per guild and reason; entries older than the window dropped) and written with the same
compare-and-swap, so every Lambda and task adds to, and reads, one list. Track keys are stored
hashed; guild ids as they are.

The record is ``pk = "S#breaker#<source>"``, ``sk = "breaker"``, written with ``Store.update_record``
(compare-and-swap). ``MemoryRecords`` serves the same two calls inside one process.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from timmybot.store.keys import BREAKER_SK, breaker_pk

from .metrics import emit_breaker_opened

_log = logging.getLogger(__name__)

MAX_EVIDENCE = 48  # per-track failures kept in one breaker record (newest first kept)
Clock = Callable[[], float]
Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]


class RecordStore(Protocol):
    """The two calls of ``timmybot.store.Store`` the breaker needs."""

    def get_record(self, pk: str, sk: str) -> dict[str, Any] | None: ...

    def update_record(
        self, pk: str, sk: str, change: Change, *, ttl_s: float | None = None
    ) -> dict[str, Any] | None: ...


class MemoryRecords:
    """``RecordStore`` for one process (a chain given no Store: unit tests). TTLs are not needed here."""

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


@dataclass(frozen=True, slots=True)
class SpreadRule:
    """When per-track failures of one reason count as the source's: ``tracks`` distinct tracks from
    ``guilds`` distinct guilds within ``window_s`` seconds (docs/SOURCES.md)."""

    tracks: int = 3
    guilds: int = 2
    window_s: float = 300.0

    def __post_init__(self) -> None:
        if self.tracks < 1 or self.guilds < 1 or self.window_s <= 0:
            raise ValueError("the spread rule needs tracks >= 1, guilds >= 1 and window_s > 0")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One per-track failure: its reason, the hashed track key, the guild ("" unknown) and when."""

    reason: str
    track: str
    guild: str
    at: float

    @classmethod
    def from_record(cls, item: Any) -> Evidence | None:
        if not isinstance(item, dict):
            return None
        try:
            return cls(str(item["r"]), str(item["t"]), str(item.get("g") or ""), float(item["at"]))
        except (KeyError, TypeError, ValueError):
            return None

    def to_record(self) -> dict[str, Any]:
        return {"r": self.reason, "t": self.track, "g": self.guild, "at": round(self.at, 3)}


def track_digest(track_key: str) -> str:
    """What the record keeps of a track key (a link, a search, an id): a short hash, never the text."""
    return hashlib.sha256(track_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def kept_evidence(evidence: tuple[Evidence, ...], rule: SpreadRule, now: float) -> tuple[Evidence, ...]:
    """The evidence worth keeping: inside the window, one entry per (reason, guild, track), at most
    ``rule.tracks`` tracks per (reason, guild) (more from one guild could not open anything more)
    and ``MAX_EVIDENCE`` in all; newest first."""
    kept: list[Evidence] = []
    seen: set[tuple[str, str, str]] = set()
    per_guild: dict[tuple[str, str], int] = {}
    for entry in sorted(evidence, key=lambda e: e.at, reverse=True):
        if entry.at <= now - rule.window_s or entry.at > now + rule.window_s:
            continue
        key = (entry.reason, entry.guild, entry.track)
        if key in seen or per_guild.get(key[:2], 0) >= rule.tracks:
            continue
        seen.add(key)
        per_guild[key[:2]] = per_guild.get(key[:2], 0) + 1
        kept.append(entry)
        if len(kept) >= MAX_EVIDENCE:
            break
    return tuple(kept)


def has_spread(evidence: tuple[Evidence, ...], reason: str, rule: SpreadRule) -> bool:
    """Has ``reason`` hit ``rule.tracks`` distinct tracks from ``rule.guilds`` distinct guilds?
    Failures of no known guild count towards the tracks, never towards the guilds."""
    of_reason = [entry for entry in evidence if entry.reason == reason]
    tracks = {entry.track for entry in of_reason}
    guilds = {entry.guild for entry in of_reason if entry.guild}
    return len(tracks) >= rule.tracks and len(guilds) >= rule.guilds


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
    evidence: tuple[Evidence, ...] = ()

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
        raw_evidence = record.get("evidence")
        items = raw_evidence if isinstance(raw_evidence, list) else []
        evidence = tuple(entry for entry in map(Evidence.from_record, items) if entry is not None)
        return cls(
            state=state,
            reason=None if reason is None else str(reason),
            failures=int(record.get("failures") or 0),
            open_until=float(record.get("open_until") or 0),
            trial_until=float(record.get("trial_until") or 0),
            trial_id=None if trial_id is None else str(trial_id),
            evidence=evidence,
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
            "evidence": [entry.to_record() for entry in self.evidence],
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
        spread: SpreadRule | None = None,
        clock: Clock = time.time,
    ) -> None:
        if threshold < 1 or cooldown_s <= 0 or trial_timeout_s <= 0:
            raise ValueError("threshold >= 1, cooldown_s > 0 and trial_timeout_s > 0 are required")
        self._records = records
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._trial_timeout_s = trial_timeout_s
        self._spread = spread or SpreadRule()
        self._clock = clock
        # Keep a record long after its cool-down so a flapping source is still remembered.
        self._ttl_s = max(cooldown_s * 4, 3600.0)

    @property
    def threshold(self) -> int:
        return self._threshold

    @property
    def spread(self) -> SpreadRule:
        return self._spread

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
                BreakerState.HALF_OPEN,
                snap.reason,
                snap.failures,
                snap.open_until,
                now + self._trial_timeout_s,
                token,
                snap.evidence,
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
        """A call went through: the consecutive count restarts and a half-open breaker closes.
        Per-track evidence stays (it ages out of its window): one good track says nothing of others."""
        now = self._clock()
        closed_now = False

        def close(record: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal closed_now
            snap = BreakerSnapshot.from_record(record)
            closed_now = False
            if record is None or (snap.state is BreakerState.CLOSED and snap.failures == 0):
                return record  # nothing to write: the common case costs one read
            closed_now = snap.state is not BreakerState.CLOSED
            evidence = () if closed_now else kept_evidence(snap.evidence, self._spread, now)
            return BreakerSnapshot(BreakerState.CLOSED, evidence=evidence).to_record()

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
            evidence = kept_evidence(snap.evidence, self._spread, now)
            return BreakerSnapshot(BreakerState.CLOSED, reason, failures, evidence=evidence).to_record()

        self._update(source, count)
        if opened_now:
            self._opened(source, reason, "source-wide failures")
        return opened_now

    def record_track_failure(self, source: str, reason: str, *, track: str, guild: str | None) -> bool:
        """Keep a per-track failure as evidence; True when it opened the breaker (the reason has
        spread: ``SpreadRule``). ``track`` is what was asked for (a link, a search, a track id),
        stored hashed; ``guild`` is the guild that asked (None: unknown, never counted as a guild).

        A half-open trial that fails this way proves nothing either way: the trial is handed on."""
        now = self._clock()
        entry = Evidence(reason, track_digest(track), guild or "", now)
        opened_now = False

        def add(record: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal opened_now
            snap = BreakerSnapshot.from_record(record)
            opened_now = False
            if snap.state is BreakerState.OPEN:
                return record  # a call that started before the breaker opened
            evidence = kept_evidence((entry, *snap.evidence), self._spread, now)
            if has_spread(evidence, reason, self._spread):
                opened_now = True
                kept = tuple(e for e in evidence if e.reason != reason)
                return BreakerSnapshot(
                    BreakerState.OPEN, reason, snap.failures, now + self._cooldown_s, evidence=kept
                ).to_record()
            trial_until = min(snap.trial_until, now) if snap.state is BreakerState.HALF_OPEN else snap.trial_until
            return BreakerSnapshot(
                snap.state, snap.reason, snap.failures, snap.open_until, trial_until, snap.trial_id, evidence
            ).to_record()

        self._update(source, add)
        if opened_now:
            self._opened(source, reason, "failures spread across tracks and guilds")
        return opened_now

    def trip(self, source: str, reason: str) -> bool:
        """Open the breaker now for a cool-down, whatever its state (the canary failed: the source
        cannot serve even a known-good track). True when it was not already open."""
        now = self._clock()
        opened_now = False

        def open_now(record: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal opened_now
            snap = BreakerSnapshot.from_record(record)
            opened_now = not (snap.state is BreakerState.OPEN and now < snap.open_until)
            open_until = max(snap.open_until, now + self._cooldown_s)
            if snap.state is BreakerState.OPEN and open_until == snap.open_until:
                return record
            return BreakerSnapshot(
                BreakerState.OPEN, reason, snap.failures, open_until, evidence=snap.evidence
            ).to_record()

        self._update(source, open_now)
        if opened_now:
            self._opened(source, reason, "the canary failed")
        return opened_now

    def _opened(self, source: str, reason: str, why: str) -> None:
        _log.warning(
            "breaker of %s OPEN (reason %s, %s): skipped for %.0f s",
            source,
            reason,
            why,
            self._cooldown_s,
        )
        emit_breaker_opened(source, reason)

    def _update(self, source: str, change: Change) -> dict[str, Any] | None:
        try:
            return self._records.update_record(breaker_pk(source), BREAKER_SK, change, ttl_s=self._ttl_s)
        except Exception:
            _log.warning("breaker state of %s could not be written", source, exc_info=True)
            return None
