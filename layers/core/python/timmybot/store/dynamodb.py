"""The Store on DynamoDB (production; moto in the contract suite).

Items follow ``schema``: ``pk``/``sk`` strings, the payload as a nested map in ``data``, a numeric
``version`` and ``expires_at`` (the TTL attribute), and ``active = "1"`` only while the item belongs
in the sparse ``active-index`` (a put without it removes the item from the index). The kinds in
``schema.VIEWS`` (the guild record) also carry ``view``, a JSON copy of the fields /queue reads.

The boto3 client is injected; if none is given it is built on first use, never at import time.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from timmybot.store.base import Clock, Key, Store, StoredItem, chunked
from timmybot.store.limits import ITEM_SIZE_LIMIT, check_item_size, item_size, value_size
from timmybot.store.schema import (
    ACTIVE_ATTRIBUTE,
    ACTIVE_INDEX,
    ACTIVE_VALUE,
    TTL_ATTRIBUTE,
    VIEW_ATTRIBUTE,
    VIEWS,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesTypeDef,
        QueryInputTypeDef,
        WriteRequestTypeDef,
    )

_log = logging.getLogger(__name__)

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
MAX_BATCH_ATTEMPTS = 8

_NAMES = {"#d": "data", "#v": "version", "#e": TTL_ATTRIBUTE}


class BatchIncompleteError(RuntimeError):
    """DynamoDB kept returning unprocessed keys/items after every retry (sustained throttling)."""


def _with_exception_classes(client: DynamoDBClient) -> DynamoDBClient:
    """``client``, its exception classes built now, before any thread uses it. botocore builds them
    on first use, with no lock: two threads whose first conditional writes failed together could
    each build their own, and the one a thread raised would not be the class its ``except`` names."""
    client.exceptions  # noqa: B018 - the property builds them
    return client


class DynamoDBStore(Store):
    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        clock: Clock = time.time,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._table = table_name
        self._client_instance = _with_exception_classes(client) if client is not None else None
        self._region_name = region_name
        self._endpoint_url = endpoint_url or None
        self._client_lock = threading.Lock()

    @property
    def table_name(self) -> str:
        return self._table

    @property
    def client(self) -> DynamoDBClient:
        """The injected client, or one built (once, thread-safely) from the constructor's settings."""
        if self._client_instance is None:
            with self._client_lock:
                if self._client_instance is None:
                    import boto3  # noqa: PLC0415 - heavy; only when no client was injected

                    session = boto3.session.Session()
                    self._client_instance = _with_exception_classes(
                        session.client("dynamodb", region_name=self._region_name, endpoint_url=self._endpoint_url)
                    )
        return self._client_instance

    # ------------------------------------------------------------------ primitives
    def _get_item(self, key: Key, *, consistent: bool = True) -> StoredItem | None:
        response = self.client.get_item(TableName=self._table, Key=_key(key), ConsistentRead=consistent)
        item = response.get("Item")
        return _stored(item) if item else None

    def _get_item_fields(self, key: Key, names: Sequence[str]) -> StoredItem | None:
        # The item's view, if the fields are in it: one short string, whatever else the item holds.
        if set(names) <= set(VIEWS.get(key[1], ())):
            response = self.client.get_item(
                TableName=self._table,
                Key=_key(key),
                ConsistentRead=True,
                ProjectionExpression="#w",
                ExpressionAttributeNames={"#w": VIEW_ATTRIBUTE},
            )
            view = _view(response.get("Item", {}).get(VIEW_ATTRIBUTE))
            if view is not None:
                return StoredItem({name: view.data[name] for name in names if name in view.data}, view.version, None)
        # No view (no item, or a release without views wrote it last): a projection of the fields,
        # which leaves the rest of the item (a long list of ids) on the server. Read units are
        # counted on the whole item either way.
        aliases = {f"#f{index}": name for index, name in enumerate(names)}
        projection = ", ".join([*(f"#d.{alias}" for alias in aliases), "#v"])
        response = self.client.get_item(
            TableName=self._table,
            Key=_key(key),
            ConsistentRead=True,
            ProjectionExpression=projection,
            ExpressionAttributeNames={**aliases, "#d": "data", "#v": "version"},
        )
        item = response.get("Item")
        return _stored(item) if item else None

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
        ok, _ = self._put_item_or_current(
            key, data, expected_version=expected_version, now=now, expires_at=expires_at, active=active
        )
        return ok

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
        # A failed condition returns the item that failed it (ReturnValuesOnConditionCheckFailure,
        # read consistently, at no read cost), so the compare-and-set loop's next try reads nothing.
        check_item_size(key, data)
        item = _item(key, data, version=(expected_version or 0) + 1, expires_at=expires_at, active=active)
        if expected_version is None:
            condition = "attribute_not_exists(pk) OR #e < :now"
            names = {"#e": TTL_ATTRIBUTE}
            values: dict[str, AttributeValueTypeDef] = {":now": {"N": _number(now)}}
        else:
            condition = "#v = :v"
            names = {"#v": "version"}
            values = {":v": {"N": str(expected_version)}}
        try:
            self.client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException as failed:
            current = failed.response.get("Item")
            # No item back: there is none (it was deleted), or a DynamoDB look-alike ignored the
            # parameter; a read tells which, so the loop never retries on a guess.
            return False, _stored(current) if current else self._get_item(key)
        return True, None

    def _put_items(self, items: Sequence[tuple[Key, dict[str, Any], float | None]]) -> None:
        # A batch may not name one key twice: the last write of a key wins, as in a loop of puts.
        latest = {key: (data, expires_at) for key, data, expires_at in items}
        for key, (data, _expires_at) in latest.items():
            check_item_size(key, data)
        requests: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": _item(key, data, version=1, expires_at=expires_at, active=False)}}
            for key, (data, expires_at) in latest.items()
        ]
        self._batch_write(requests)

    def _get_items(self, keys: Sequence[Key]) -> dict[Key, StoredItem]:
        found: dict[Key, StoredItem] = {}
        for batch in chunked(dict.fromkeys(keys), BATCH_GET_LIMIT):
            pending: KeysAndAttributesTypeDef | None = {
                "Keys": [_key(key) for key in batch],
                "ConsistentRead": True,
            }
            attempt = 0
            while pending:
                response = self.client.batch_get_item(RequestItems={self._table: pending})
                for raw in response.get("Responses", {}).get(self._table, []):
                    found[(_string(raw["pk"]), _string(raw["sk"]))] = _stored(raw)
                pending = response.get("UnprocessedKeys", {}).get(self._table)  # type: ignore[assignment]
                if pending and pending.get("Keys"):
                    attempt = _wait_before_retry(attempt, "batch_get_item", len(pending["Keys"]))
                else:
                    pending = None
        return found

    def _delete_items(self, keys: Sequence[Key]) -> None:
        self._batch_write([{"DeleteRequest": {"Key": _key(key)}} for key in dict.fromkeys(keys)])

    def _purge_expired(self, now: float) -> int:
        return 0  # the table's TTL attribute deletes expired items (lazily; readers filter them)

    def _active_keys(self) -> list[Key]:
        keys: list[Key] = []
        request: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": ACTIVE_INDEX,
            "KeyConditionExpression": "#a = :one",
            "ExpressionAttributeNames": {"#a": ACTIVE_ATTRIBUTE},
            "ExpressionAttributeValues": {":one": {"S": ACTIVE_VALUE}},
        }
        while True:
            page = self.client.query(**request)
            keys.extend((_string(raw["pk"]), _string(raw["sk"])) for raw in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return keys
            request["ExclusiveStartKey"] = start

    # ------------------------------------------------------------------ helpers
    def _batch_write(self, requests: list[WriteRequestTypeDef]) -> None:
        for batch in chunked(requests, BATCH_WRITE_LIMIT):
            pending: list[WriteRequestTypeDef] = batch
            attempt = 0
            while pending:
                response = self.client.batch_write_item(RequestItems={self._table: pending})
                pending = list(response.get("UnprocessedItems", {}).get(self._table, []))  # type: ignore[arg-type]
                if pending:
                    attempt = _wait_before_retry(attempt, "batch_write_item", len(pending))


def _wait_before_retry(attempt: int, operation: str, left: int) -> int:
    """Exponential backoff with jitter between retries of unprocessed batch work."""
    if attempt + 1 >= MAX_BATCH_ATTEMPTS:
        raise BatchIncompleteError(f"{operation}: {left} requests still unprocessed after {MAX_BATCH_ATTEMPTS} tries")
    _log.warning("%s left %s requests unprocessed; retrying (attempt %s)", operation, left, attempt + 1)
    time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # noqa: S311 - jitter, not crypto
    return attempt + 1


# ---------------------------------------------------------------------- item conversion
def _key(key: Key) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": key[0]}, "sk": {"S": key[1]}}


def _item(
    key: Key, data: dict[str, Any], *, version: int, expires_at: float | None, active: bool
) -> dict[str, AttributeValueTypeDef]:
    item = _key(key)
    item["data"] = {"M": {name: to_attribute(value) for name, value in data.items()}}
    item["version"] = {"N": str(version)}
    if expires_at is not None:
        item[TTL_ATTRIBUTE] = {"N": _number(expires_at)}
    if active:
        item[ACTIVE_ATTRIBUTE] = {"S": ACTIVE_VALUE}
    view = _view_text(key, data, version)
    if view is not None:
        item[VIEW_ATTRIBUTE] = {"S": view}
    return item


def _view_text(key: Key, data: Mapping[str, Any], version: int) -> str | None:
    """The view of an item of a kind in ``VIEWS``: its fields and version as compact JSON. None for
    other kinds, for data JSON cannot carry exactly, or when the copy would take the item past
    DynamoDB's size limit (readers then read the fields themselves)."""
    fields = VIEWS.get(key[1])
    if fields is None:
        return None
    try:
        text = json.dumps(
            {"version": version, "data": {name: data[name] for name in fields if name in data}},
            separators=(",", ":"),
            allow_nan=False,
        )
    except (TypeError, ValueError):
        return None
    if item_size(key, data) + value_size(VIEW_ATTRIBUTE) + value_size(text) > ITEM_SIZE_LIMIT:
        return None
    return text


def _view(raw: Mapping[str, Any] | None) -> StoredItem | None:
    """A view attribute read back; None if absent or not one ``_view_text`` wrote."""
    if raw is None or not isinstance(raw.get("S"), str):
        return None
    try:
        parsed = json.loads(raw["S"])
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), dict):
        return None
    version = parsed.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    return StoredItem(parsed["data"], version, None)


def _stored(raw: Mapping[str, Any]) -> StoredItem:
    data = from_attribute(raw["data"]) if "data" in raw else {}
    expires = raw.get(TTL_ATTRIBUTE)
    return StoredItem(
        data=data if isinstance(data, dict) else {},
        version=int(raw["version"]["N"]),
        expires_at=float(expires["N"]) if expires is not None else None,
    )


def _string(value: Mapping[str, Any]) -> str:
    return str(value["S"])


def _number(value: float | int | Decimal) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"DynamoDB cannot store the number {value!r}")
    return str(value) if not isinstance(value, Decimal) else format(value, "f")


def to_attribute(value: Any) -> AttributeValueTypeDef:
    """A plain JSON-like Python value as a DynamoDB attribute value (floats go through ``str``)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": str(value)}
    if isinstance(value, int | float | Decimal):
        return {"N": _number(value)}
    if isinstance(value, Mapping):
        return {"M": {str(name): to_attribute(item) for name, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(item) for item in value]}
    raise TypeError(f"Cannot store a {type(value).__name__} in DynamoDB")


def from_attribute(value: Mapping[str, Any]) -> Any:
    """The inverse of ``to_attribute``: numbers come back as int when whole, else float."""
    ((kind, inner),) = value.items()
    if kind == "NULL":
        return None
    if kind in ("S", "BOOL"):
        return inner
    if kind == "N":
        return _from_number(str(inner))
    if kind == "M":
        return {name: from_attribute(item) for name, item in inner.items()}
    if kind == "L":
        return [from_attribute(item) for item in inner]
    raise TypeError(f"Unexpected DynamoDB attribute type {kind}")


def _from_number(text: str) -> int | float:
    if any(mark in text for mark in ".eE"):
        return float(text)
    return int(text)
