"""The ``store`` fixture: every contract test runs once per adapter (SQLite file, DynamoDB on moto, memory)."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from tests.support.clock import FakeClock
from timmybot.store import DynamoDBStore, SQLiteStore, Store
from timmybot.store.memory import MemoryStore
from timmybot.store.schema import create_dynamodb_table

TABLE = "timmybot-contract"
REGION = "us-east-1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's conditional writes atomic, as DynamoDB's are.

    moto (5.2.5) evaluates a ConditionExpression and then stores the item with no lock between
    the two, so two threads can both pass ``version = :v``: a lost update DynamoDB never allows.
    One lock around each write restores the guarantee our optimistic concurrency relies on;
    reads stay unlocked.
    """
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item"):
        original: Callable[..., Any] = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, functools.wraps(original)(locked))


STORE_ADAPTERS = ("sqlite", "dynamodb", "memory")


@contextlib.contextmanager
def open_store(
    kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, clock: FakeClock
) -> Iterator[Store]:
    """The Store adapter ``kind`` (one of ``STORE_ADAPTERS``) on ``clock``, closed afterwards."""
    if kind == "memory":
        yield MemoryStore(clock=clock)
        return
    if kind == "sqlite":
        sqlite_store = SQLiteStore(tmp_path_factory.mktemp("store") / "timmybot.sqlite3", clock=clock)
        yield sqlite_store
        sqlite_store.close()
        return
    request.getfixturevalue("atomic_moto_writes")
    with mock_aws():
        # One client for every thread of a test: boto3 clients are thread-safe.
        client = boto3.client("dynamodb", region_name=REGION)
        create_dynamodb_table(client, TABLE)
        yield DynamoDBStore(TABLE, client=client, clock=clock)


@pytest.fixture(params=STORE_ADAPTERS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, clock: FakeClock
) -> Iterator[Store]:
    with open_store(request.param, request, tmp_path_factory, clock) as opened:
        yield opened
