"""The KMS vault's token table: one description for CreateTable, tests and the infra template.

``infra/token-table.json`` is the contract; ``tests/infra/test_infra_stack.py`` compares the
template's ``TokenTable`` with both that file and ``token_table_definition``.

Items: ``user_id`` (S, the Discord user id, hash key), ``ciphertext`` (B, the token document
AES-GCM-encrypted with a data key), ``wrapped_key`` (B, that data key encrypted by the tokens KMS
key under the encryption context ``{"user_id": <id>}``), ``updated_at`` (N, epoch seconds; also the
optimistic-concurrency revision).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_log = logging.getLogger(__name__)

HASH_KEY = "user_id"


def token_table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable keyword arguments for the token table (no range key, no index, no TTL)."""
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": HASH_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": HASH_KEY, "AttributeType": "S"}],
        "GlobalSecondaryIndexes": [],
        "BillingMode": "PAY_PER_REQUEST",
    }


def create_token_table(client: DynamoDBClient | Any, table_name: str) -> None:
    """Create the token table (tests, local DynamoDB); the stack creates it in AWS."""
    definition = token_table_definition(table_name)
    definition.pop("GlobalSecondaryIndexes")  # DynamoDB refuses an empty list
    client.create_table(**definition)
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    _log.info("created the token table %s", table_name)
