"""The Store's shared machinery: the adapter primitives, the guild record's compare-and-set loop
(with the queue's totals settled in the same write), and the helpers every group of operations uses.

``timmybot.store.base.Store`` is the port; its operations live in ``queue``, ``lease``,
``history`` and ``records`` next to this module, each written once over these primitives.
"""

from __future__ import annotations

import abc
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from timmybot.errors import ConflictError, InvalidInputError, QueueEmptyError, StaleGenerationError
from timmybot.models import GuildRecord, LeaseState, QueueEntry, QueueTotals, queue_digest
from timmybot.store.keys import GUILD_SK, entry_sk, guild_pk

_log = logging.getLogger(__name__)

ENTRY_TTL_S = 30 * 24 * 3600  # an entry never listed (crashed append) disappears after this
MAX_CAS_ATTEMPTS = 200

Key = tuple[str, str]
Clock = Callable[[], float]


@dataclass(frozen=True)
class StoredItem:
    data: dict[str, Any]
    version: int
    expires_at: float | None


class StoreCore(abc.ABC):
    """What every group of Store operations builds on (the adapters implement the primitives)."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        #: Called with each guild record this store wrote (the control plane sends a wake hint to
        #: the guild's voice task from here); None in the voice task itself.
        self.on_guild_write: Callable[[GuildRecord], None] | None = None

    # ------------------------------------------------------------------ adapter primitives
    @abc.abstractmethod
    def _get_item(self, key: Key, *, consistent: bool = True) -> StoredItem | None:
        """The item, or None. May return an expired item: the caller filters.

        ``consistent=False`` allows an eventually consistent read (DynamoDB: half a read unit),
        which may return an older version than the last write; a backend with only one copy
        (SQLite) may ignore it. Conditional writes always start from a consistent read.
        """

    @abc.abstractmethod
    def _put_item(
        self,
        key: Key,
        data: dict[str, Any],
        *,
        expected_version: int | None,
        now: float,
        expires_at: float | None = None,
        active: bool = False,
    ) -> bool:
        """Conditional put storing ``version = (expected_version or 0) + 1``.

        ``expected_version=None``: only if no item exists or the existing one has expired
        (``expires_at < now``). Otherwise only if the stored version equals ``expected_version``.
        ``active`` puts the item in the sparse active index. Returns False if the condition failed.
        """

    def _put_item_or_current(
        self,
        key: Key,
        data: dict[str, Any],
        *,
        expected_version: int | None,
        now: float,
        expires_at: float | None = None,
        active: bool = False,
    ) -> tuple[bool, StoredItem | None]:
        """``_put_item``, and when its condition failed, the item that failed it (None if there is
        none) for the compare-and-set loops' next attempt. This default reads it again; a backend
        whose failed write can return the item (DynamoDB's ReturnValuesOnConditionCheckFailure)
        saves that read."""
        ok = self._put_item(key, data, expected_version=expected_version, now=now, expires_at=expires_at, active=active)
        return ok, None if ok else self._get_item(key)

    def _get_item_fields(self, key: Key, names: Sequence[str]) -> StoredItem | None:
        """The item with only the named top-level fields of its data, for an item without a TTL
        (``expires_at`` comes back None): a backend that can project a read (DynamoDB) leaves the
        other fields on the server; this default reads the whole item."""
        item = self._get_item(key)
        if item is None:
            return None
        return StoredItem({name: item.data[name] for name in names if name in item.data}, item.version, None)

    @abc.abstractmethod
    def _put_items(self, items: Sequence[tuple[Key, dict[str, Any], float | None]]) -> None:
        """Unconditional batch put of (key, data, expires_at), version 1."""

    @abc.abstractmethod
    def _get_items(self, keys: Sequence[Key]) -> dict[Key, StoredItem]:
        """Batch get; missing keys are simply absent from the result."""

    @abc.abstractmethod
    def _delete_items(self, keys: Sequence[Key]) -> None:
        """Unconditional batch delete."""

    @abc.abstractmethod
    def _purge_expired(self, now: float) -> int:
        """Delete items whose ``expires_at`` has passed, where the backend has no TTL of its own."""

    @abc.abstractmethod
    def _active_keys(self) -> list[Key]:
        """Keys of every item currently in the sparse active index (never a table scan)."""

    # ------------------------------------------------------------------ guild record
    def get_guild(self, guild_id: str, *, consistent: bool = True) -> GuildRecord:
        """The guild record. ``consistent=False`` may return an older version than the newest
        write (an eventually consistent read, half the price on DynamoDB): a caller that takes it
        must compare ``version`` with the newest it has seen and ignore an older record."""
        record, _ = self._load_guild(guild_id, consistent=consistent)
        return record

    def update_guild(
        self,
        guild_id: str,
        change: Callable[[GuildRecord], GuildRecord],
        *,
        entries: Sequence[QueueEntry] = (),
    ) -> GuildRecord:
        """Apply ``change`` atomically (optimistic concurrency, retried on conflict).

        ``change`` must be a pure function of the record: it may run several times. It may raise a
        domain error to abort without writing. Returns the record as written.

        The queue's totals (``GuildRecord.queue_totals``) are settled here, in the same conditional
        write as the queue: from the durations of the ids that ``change`` added or removed (found in
        ``entries``, "now playing", or read in one batch), or counted again from every entry when the
        record's totals do not describe its queue (a record written before totals, or by a release
        that does not keep them).
        """
        key = (guild_pk(guild_id), GUILD_SK)
        item = self._get_item(key)
        for attempt in range(MAX_CAS_ATTEMPTS):
            current, exists = _guild_from(guild_id, item)
            updated = change(current)
            if updated is current:
                return current
            now = self._clock()
            settled = self._settle_totals(guild_id, current, updated, entries)
            version = current.version + 1
            totals = settled.queue_totals.stamped(settled.queue, version) if settled.queue_totals else None
            written = replace(settled, version=version, queue_totals=totals)
            ok, item = self._put_item_or_current(
                key,
                written.to_dict(),
                expected_version=current.version if exists else None,
                now=now,
                active=written.is_active(now),
            )
            if ok:
                if self.on_guild_write is not None:
                    self._notify(written)
                return written
            _backoff(attempt)
        raise ConflictError()

    def _notify(self, record: GuildRecord) -> None:
        assert self.on_guild_write is not None
        try:
            self.on_guild_write(record)
        except Exception:  # a hint is only a hint: the write stands, the task will poll it
            _log.warning("guild-write hook failed for guild %s", record.guild_id, exc_info=True)

    def _settle_totals(
        self, guild_id: str, before: GuildRecord, after: GuildRecord, entries: Sequence[QueueEntry]
    ) -> GuildRecord:
        queue = after.queue
        if not queue:
            return replace(after, queue_totals=QueueTotals(digest=queue_digest(())))
        totals = before.queue_totals
        if totals is not None and totals.describes(before.queue):
            if queue == before.queue or Counter(queue) == Counter(before.queue):
                return replace(after, queue_totals=totals)  # reordered (or untouched): same totals
            added = Counter(queue) - Counter(before.queue)
            removed = Counter(before.queue) - Counter(queue)
            known = self._durations(guild_id, [*added, *removed], entries, before, after)
            if known is not None:
                changed = [(i, n, 1) for i, n in added.items()] + [(i, n, -1) for i, n in removed.items()]
                duration = totals.duration_s + sum(sign * n * (known[i] or 0) for i, n, sign in changed)
                unknown = totals.unknown + sum(sign * n for i, n, sign in changed if known[i] is None)
                counted = QueueTotals(
                    count=len(queue), duration_s=duration, unknown=unknown, digest=queue_digest(queue)
                )
                return replace(after, queue_totals=counted)
        return replace(after, queue_totals=self.count_totals(guild_id, queue))

    def _durations(
        self,
        guild_id: str,
        ids: Sequence[str],
        entries: Sequence[QueueEntry],
        before: GuildRecord,
        after: GuildRecord,
    ) -> dict[str, int | None] | None:
        """The duration of each id, or None when one's entry is gone (then the totals are counted again)."""
        at_hand = {e.entry_id: e for e in entries}
        for playing in (before.actual.now_playing, after.actual.now_playing):
            if playing is not None:
                at_hand.setdefault(playing.entry_id, playing)
        missing = [i for i in ids if i not in at_hand]
        if missing:
            for entry in self.get_entries(guild_id, missing):
                at_hand[entry.entry_id] = entry
        if any(i not in at_hand for i in ids):
            return None
        return {i: at_hand[i].duration_s for i in ids}

    def count_totals(self, guild_id: str, queue: Sequence[str]) -> QueueTotals:
        """The totals of ``queue`` counted from its entries (batch gets of 100): the slow way, once
        per record written without totals. An id whose entry is missing counts as unknown."""
        durations = [e.duration_s for e in self.get_entries(guild_id, queue)]
        known = [d for d in durations if d is not None]
        return QueueTotals(
            count=len(queue), duration_s=sum(known), unknown=len(queue) - len(known), digest=queue_digest(queue)
        )

    def get_entries(self, guild_id: str, entry_ids: Sequence[str]) -> list[QueueEntry]:
        """Entries in the given order; ids whose item is missing or expired are left out."""
        pk = guild_pk(guild_id)
        found = self._get_items([(pk, entry_sk(i)) for i in entry_ids])
        fresh = [self._fresh(found.get((pk, entry_sk(i)))) for i in entry_ids]
        return [QueueEntry.from_dict(item.data) for item in fresh if item is not None]

    def _update_item(
        self,
        key: Key,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        *,
        ttl_s: float | None = None,
    ) -> dict[str, Any] | None:
        item = self._get_item(key)
        for attempt in range(MAX_CAS_ATTEMPTS):
            fresh = self._fresh(item)
            current = dict(fresh.data) if fresh is not None else None
            updated = change(current)
            if updated is current or updated is None:
                return current
            now = self._clock()
            ok, item = self._put_item_or_current(
                key,
                updated,
                expected_version=fresh.version if fresh is not None else None,
                now=now,
                expires_at=now + ttl_s if ttl_s is not None else None,
            )
            if ok:
                return updated
            _backoff(attempt)
        raise ConflictError()

    # ------------------------------------------------------------------ helpers
    def _fresh(self, item: StoredItem | None) -> StoredItem | None:
        if item is None or (item.expires_at is not None and item.expires_at < self._clock()):
            return None
        return item

    def _load_guild(self, guild_id: str, *, consistent: bool = True) -> tuple[GuildRecord, bool]:
        return _guild_from(guild_id, self._get_item((guild_pk(guild_id), GUILD_SK), consistent=consistent))


def _guild_from(guild_id: str, item: StoredItem | None) -> tuple[GuildRecord, bool]:
    """The guild record an item holds (a new one if there is no item), and whether it was stored."""
    if item is None:
        return GuildRecord(guild_id=guild_id), False
    data = dict(item.data)
    data["version"] = item.version
    return GuildRecord.from_dict(data), True


def _require_generation(record: GuildRecord, generation: int) -> None:
    if record.lease.generation != generation or record.lease.state not in (
        LeaseState.LAUNCHING,
        LeaseState.RUNNING,
    ):
        raise StaleGenerationError("This voice task's lease was superseded.")


def _check_position(record: GuildRecord, position: int, name: str) -> None:
    if not record.queue:
        raise QueueEmptyError()
    if not 1 <= position <= len(record.queue):
        raise InvalidInputError(
            f"`{name}` must be between 1 and {len(record.queue)} (the queue has {len(record.queue)} tracks)."
        )


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))  # noqa: S311 - jitter, not crypto


def chunked(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
