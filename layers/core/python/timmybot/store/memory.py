"""The Store in one process's memory: for handler tests, with DynamoDB's item limit.

It holds what the DynamoDB table would hold and refuses what DynamoDB refuses, so a handler test
on it cannot pass where the deployed bot would fail:
  - an item over 400 KB (``ItemTooLargeError``, as every adapter raises);
  - expired items are kept until purged and read back as absent by the Store's readers, because
    DynamoDB's TTL deletes lazily.
It passes the whole Store contract suite (tests/contract/test_store_contract.py).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from timmybot.store.base import Clock, Key, Store, StoredItem
from timmybot.store.limits import check_item_size


@dataclass
class _Row:
    data: dict[str, Any]
    version: int
    expires_at: float | None
    active: bool


class MemoryStore(Store):
    def __init__(self, *, clock: Clock = time.time) -> None:
        super().__init__(clock=clock)
        self._rows: dict[Key, _Row] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Nothing to release (the SQLite adapter's ``close`` has the same name)."""

    # ------------------------------------------------------------------ primitives
    def _get_item(self, key: Key, *, consistent: bool = True) -> StoredItem | None:
        with self._lock:
            row = self._rows.get(key)
            return _stored(row) if row is not None else None

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
        check_item_size(key, data)
        with self._lock:
            row = self._rows.get(key)
            if expected_version is None:
                if row is not None and not (row.expires_at is not None and row.expires_at < now):
                    return False
            elif row is None or row.version != expected_version:
                return False
            version = (expected_version or 0) + 1
            self._rows[key] = _Row(copy.deepcopy(data), version, expires_at, active)
            return True

    def _put_items(self, items: Sequence[tuple[Key, dict[str, Any], float | None]]) -> None:
        for key, data, _expires_at in items:
            check_item_size(key, data)
        with self._lock:
            for key, data, expires_at in items:
                self._rows[key] = _Row(copy.deepcopy(data), 1, expires_at, active=False)

    def _get_items(self, keys: Sequence[Key]) -> dict[Key, StoredItem]:
        with self._lock:
            return {key: _stored(self._rows[key]) for key in dict.fromkeys(keys) if key in self._rows}

    def _delete_items(self, keys: Sequence[Key]) -> None:
        with self._lock:
            for key in keys:
                self._rows.pop(key, None)

    def _purge_expired(self, now: float) -> int:
        with self._lock:
            gone = [key for key, row in self._rows.items() if row.expires_at is not None and row.expires_at < now]
            for key in gone:
                del self._rows[key]
        return len(gone)

    def _active_keys(self) -> list[Key]:
        with self._lock:
            return [key for key, row in self._rows.items() if row.active]


def _stored(row: _Row) -> StoredItem:
    return StoredItem(data=copy.deepcopy(row.data), version=row.version, expires_at=row.expires_at)
