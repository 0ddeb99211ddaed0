"""The Store port and its two adapters; ``build_store`` picks one from the settings.

Importing this package imports neither boto3 nor a DynamoDB client: the DynamoDB adapter builds
its client on first use unless one is injected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from timmybot.store.base import QueuePage, Store
from timmybot.store.dynamodb import DynamoDBStore
from timmybot.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    import sqlite3

    from mypy_boto3_dynamodb import DynamoDBClient

    from timmybot.config import Settings
    from timmybot.store.base import Clock


def build_store(
    settings: Settings,
    *,
    client: DynamoDBClient | None = None,
    connection: sqlite3.Connection | None = None,
    clock: Clock | None = None,
) -> Store:
    """The Store named by ``settings.store_backend``.

    ``client`` (a boto3 DynamoDB client) is used by the DynamoDB adapter instead of building one
    from ``aws_region``/``aws_endpoint_url``. ``connection`` (a SQLite connection to a file) makes
    the SQLite adapter use that connection's database file instead of ``sqlite_path``; the store
    still opens its own connection per thread (many threads and processes share the file) and
    leaves the caller's connection open.
    """
    extra = {"clock": clock} if clock is not None else {}
    if settings.store_backend == "dynamodb":
        return DynamoDBStore(
            settings.dynamodb_table,
            client=client,
            region_name=settings.aws_region or None,
            endpoint_url=settings.aws_endpoint_url or None,
            **extra,
        )
    if settings.store_backend == "sqlite":
        path = _database_file(connection) if connection is not None else settings.sqlite_path
        return SQLiteStore(path, **extra)
    raise ValueError(f"Unknown store backend {settings.store_backend!r}")


def _database_file(connection: sqlite3.Connection) -> str:
    for _seq, name, file in connection.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return str(file)
    raise ValueError("The SQLite store needs a connection to a database file, not an in-memory database.")


__all__ = ["DynamoDBStore", "QueuePage", "SQLiteStore", "Store", "build_store"]
