"""The one description of the store's table, for DynamoDB and SQLite alike.

``table_definition`` is the single source of truth: ``create_dynamodb_table`` passes it to
CreateTable, and the CloudFormation template in ``infra/`` is checked against it. The SQLite
schema mirrors it column for column (the JSON ``data`` column stands in for the ``data`` map).

Attributes:
    pk, sk        string keys (see ``timmybot.store.base`` for the key layout)
    data          the item's payload (a map in DynamoDB, JSON text in SQLite)
    version       optimistic-concurrency counter
    expires_at    epoch seconds; DynamoDB's TTL attribute. Readers treat expired items as absent,
                  because TTL deletion is lazy (and moto never deletes at all)
    active        "1" only while the item belongs in the sparse ``active-index``
    view          DynamoDB only, on the kinds in ``VIEWS``: a JSON copy of a few ``data`` fields and
                  the version, written in the same put, so a frequent read of those fields fetches
                  one short string. A release without views rewrites the whole item and so drops
                  it: a view present is always the item's current one
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from timmybot.store.keys import GUILD_SK

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_log = logging.getLogger(__name__)

ACTIVE_INDEX = "active-index"
ACTIVE_ATTRIBUTE = "active"
ACTIVE_VALUE = "1"
TTL_ATTRIBUTE = "expires_at"
VIEW_ATTRIBUTE = "view"

#: The kinds kept with a view, by sort key, and the ``data`` fields each view copies: the guild
#: record's are what /queue reads (what plays, and the totals with the queue's head).
VIEWS: dict[str, tuple[str, ...]] = {GUILD_SK: ("actual", "queue_totals")}

TABLE_WAIT_DELAY_S = 2
TABLE_WAIT_ATTEMPTS = 60


def table_definition(table_name: str) -> dict[str, Any]:
    """The CreateTable keyword arguments for the store's single table."""
    return {
        "TableName": table_name,
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": ACTIVE_ATTRIBUTE, "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": ACTIVE_INDEX,
                "KeySchema": [
                    {"AttributeName": ACTIVE_ATTRIBUTE, "KeyType": "HASH"},
                    {"AttributeName": "pk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def ttl_attribute() -> str:
    """The attribute DynamoDB's TTL reads (epoch seconds)."""
    return TTL_ATTRIBUTE


def create_dynamodb_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the table, wait until it is active and enable TTL. Safe to call when it exists."""
    try:
        client.create_table(**table_definition(table_name))
        _log.info("Created DynamoDB table %s", table_name)
    except client.exceptions.ResourceInUseException:
        _log.info("DynamoDB table %s already exists", table_name)
    client.get_waiter("table_exists").wait(
        TableName=table_name,
        WaiterConfig={"Delay": TABLE_WAIT_DELAY_S, "MaxAttempts": TABLE_WAIT_ATTEMPTS},
    )
    ttl = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName") == TTL_ATTRIBUTE:
        return
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    _log.info("Enabled TTL on %s.%s", table_name, TTL_ATTRIBUTE)


_SQLITE_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        data TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at REAL,
        active INTEGER,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID
    """,
    # The sparse index: only rows whose ``active`` is set are in it, as in DynamoDB's GSI.
    "CREATE INDEX IF NOT EXISTS items_active ON items (active, pk) WHERE active IS NOT NULL",
)


def create_sqlite_schema(connection: sqlite3.Connection) -> None:
    """Create the ``items`` table and its sparse index if they are missing (idempotent)."""
    with connection:
        for statement in _SQLITE_SCHEMA:
            connection.execute(statement)
