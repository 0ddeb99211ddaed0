"""The suite's moto serializer speed-up (tests/support/moto_alias_cache.py) changes no response."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import serialize

from tests.support import moto_alias_cache

ITEM: dict[str, Any] = {
    "pk": {"S": "G#1"},
    "sk": {"S": "QUEUE#000001"},
    "n": {"N": "42"},
    "blob": {"B": b"\x00\xffsealed"},
    "tags": {"SS": ["a", "b"]},
    "nums": {"NS": ["1", "2.5"]},
    "gone": {"NULL": True},
    "flag": {"BOOL": False},
    "track": {
        "M": {
            "title": {"S": "Tone"},
            "length": {"N": "4000"},
            "artists": {"L": [{"S": "one"}, {"M": {"name": {"S": "two"}}}]},
        }
    },
}


def _responses() -> list[Any]:
    """What a client gets back for a put, a get, a query and a batch get of ``ITEM``."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        key = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
        answers = [
            client.put_item(TableName="t", Item=ITEM, ReturnValues="ALL_OLD"),
            client.get_item(TableName="t", Key=key),
            client.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": ITEM["pk"]}),
            client.batch_get_item(RequestItems={"t": {"Keys": [key]}}),
            client.describe_table(TableName="t")["Table"]["KeySchema"],
        ]
    for answer in answers:
        if isinstance(answer, dict):
            answer.pop("ResponseMetadata", None)
    return answers


def test_every_answer_is_the_one_moto_computes_without_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_alias_cache.install()
    cached = [_responses(), _responses()]  # the second run is served from the cache
    monkeypatch.setattr(serialize.XFormedAttributePicker, "get_possible_keys", moto_alias_cache.COMPUTED)
    computed = _responses()

    assert cached[0] == computed and cached[1] == computed
    assert computed[1]["Item"] == ITEM  # and the item came back whole, binary and nesting included
    assert json.dumps(computed[4]) == json.dumps(cached[1][4])
