"""The Store on a SQLite file: local mode, the demo and the contract suite.

One ``items`` table mirrors the DynamoDB table (see ``schema``). The file is shared by many
threads (one connection each) and by several processes (the local api server and the local
voice-task subprocesses), so it runs in WAL mode with a busy timeout, and every conditional write
is a single statement whose row count says whether its condition held.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from timmybot.store.base import Clock, Key, Store, StoredItem, chunked
from timmybot.store.limits import check_item_size
from timmybot.store.schema import create_sqlite_schema

_log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
_KEYS_PER_SELECT = 400  # two bound variables per key, far below SQLite's limit

_INSERT_IF_ABSENT_OR_EXPIRED = """
    INSERT INTO items (pk, sk, data, version, expires_at, active) VALUES (?, ?, ?, 1, ?, ?)
    ON CONFLICT (pk, sk) DO UPDATE SET
        data = excluded.data, version = 1, expires_at = excluded.expires_at, active = excluded.active
    WHERE items.expires_at IS NOT NULL AND items.expires_at < ?
"""
_UPDATE_IF_VERSION = """
    UPDATE items SET data = ?, version = ?, expires_at = ?, active = ?
    WHERE pk = ? AND sk = ? AND version = ?
"""
_UPSERT = """
    INSERT INTO items (pk, sk, data, version, expires_at, active) VALUES (?, ?, ?, 1, ?, NULL)
    ON CONFLICT (pk, sk) DO UPDATE SET
        data = excluded.data, version = 1, expires_at = excluded.expires_at, active = NULL
"""


class _Handle:
    """One thread's connection; closing is tied to the handle's life (threads come and go)."""

    __slots__ = ("__weakref__", "connection", "pid")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.pid = os.getpid()


class SQLiteStore(Store):
    def __init__(self, path: str | Path, *, clock: Clock = time.time) -> None:
        super().__init__(clock=clock)
        self._path = str(path)
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
        self._handles_lock = threading.Lock()
        self._closed = False
        connection = self._connection()
        connection.execute("PRAGMA journal_mode = WAL").fetchall()
        create_sqlite_schema(connection)

    @property
    def path(self) -> str:
        return self._path

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        self._closed = True
        with self._handles_lock:
            handles = list(self._handles)
            self._handles.clear()
        for handle in handles:
            handle.connection.close()

    # ------------------------------------------------------------------ primitives
    def _get_item(self, key: Key, *, consistent: bool = True) -> StoredItem | None:
        # One copy: every read is consistent, so ``consistent`` changes nothing here.
        rows = (
            self._connection()
            .execute("SELECT data, version, expires_at FROM items WHERE pk = ? AND sk = ?", key)
            .fetchall()
        )
        return _stored(rows[0]) if rows else None

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
        payload = _dumps(data)
        flag = 1 if active else None
        connection = self._connection()
        if expected_version is None:
            cursor = connection.execute(_INSERT_IF_ABSENT_OR_EXPIRED, (*key, payload, expires_at, flag, now))
        else:
            cursor = connection.execute(
                _UPDATE_IF_VERSION, (payload, expected_version + 1, expires_at, flag, *key, expected_version)
            )
        return cursor.rowcount == 1

    def _put_items(self, items: Sequence[tuple[Key, dict[str, Any], float | None]]) -> None:
        if not items:
            return
        for key, data, _expires_at in items:
            check_item_size(key, data)
        rows = [(*key, _dumps(data), expires_at) for key, data, expires_at in items]
        with self._transaction() as connection:
            connection.executemany(_UPSERT, rows)

    def _get_items(self, keys: Sequence[Key]) -> dict[Key, StoredItem]:
        found: dict[Key, StoredItem] = {}
        connection = self._connection()
        for batch in chunked(dict.fromkeys(keys), _KEYS_PER_SELECT):
            placeholders = ", ".join("(?, ?)" for _ in batch)
            params = [part for key in batch for part in key]
            rows = connection.execute(
                f"SELECT pk, sk, data, version, expires_at FROM items WHERE (pk, sk) IN (VALUES {placeholders})",  # noqa: S608 - placeholders only
                params,
            ).fetchall()
            for pk, sk, *rest in rows:
                found[(pk, sk)] = _stored(rest)
        return found

    def _delete_items(self, keys: Sequence[Key]) -> None:
        if not keys:
            return
        with self._transaction() as connection:
            connection.executemany("DELETE FROM items WHERE pk = ? AND sk = ?", list(dict.fromkeys(keys)))

    def _purge_expired(self, now: float) -> int:
        cursor = self._connection().execute("DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at < ?", (now,))
        return int(cursor.rowcount)

    def _active_keys(self) -> list[Key]:
        rows = self._connection().execute("SELECT pk, sk FROM items WHERE active IS NOT NULL").fetchall()
        return [(str(pk), str(sk)) for pk, sk in rows]

    # ------------------------------------------------------------------ connections
    def _connection(self) -> sqlite3.Connection:
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is not None and handle.pid == os.getpid():
            return handle.connection
        if self._closed:
            raise RuntimeError("This SQLiteStore is closed.")
        # Autocommit (isolation_level=None): each statement is its own transaction; batches open
        # an explicit one. check_same_thread=False only so close() may close it from any thread:
        # each connection is still used by one thread alone.
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30.0)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA synchronous = NORMAL")
        handle = _Handle(connection)
        weakref.finalize(handle, connection.close)
        with self._handles_lock:
            self._handles.add(handle)
        self._local.handle = handle
        _log.debug("Opened SQLite connection to %s in thread %s", self._path, threading.get_ident())
        return connection

    def _transaction(self) -> _Transaction:
        return _Transaction(self._connection())


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on an error) on an autocommit connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self._connection.execute("BEGIN IMMEDIATE")
        return self._connection

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self._connection.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def _stored(row: Sequence[Any]) -> StoredItem:
    data, version, expires_at = row
    return StoredItem(
        data=json.loads(data),
        version=int(version),
        expires_at=float(expires_at) if expires_at is not None else None,
    )
