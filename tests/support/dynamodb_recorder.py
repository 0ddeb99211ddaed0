"""A DynamoDB endpoint on 127.0.0.1 that records what one client really sends.

moto's server answers every call; in front of it a WSGI layer reads each request as it arrives on
the wire (the ``X-Amz-Target`` action, the table or index, every partition key the call names) and
keeps it when it was signed with the watched access key id. The voice task is started with that key
and the test's own harness with another, so the record is exactly the task's traffic: what its IAM
role must allow, and nothing the test did on its behalf.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from tests.support.loopback import serve_in_thread

TASK_ACCESS_KEY = "AKIAVOICETASKRECORD0"
HARNESS_ACCESS_KEY = "AKIATESTHARNESS00000"
SECRET_KEY = "loopback-only-not-a-secret"
REGION = "eu-west-1"

_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")
_EQUALITY = re.compile(r"(#?[A-Za-z_][\w]*)\s*=\s*(:[\w]+)")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Call:
    """One DynamoDB call: ``action`` (GetItem…), the table, the index if any, the partition keys."""

    action: str
    table: str
    index: str | None
    partition_keys: tuple[str, ...]
    consistent: bool = False  # a read's ConsistentRead (DynamoDB's default is an eventually consistent read)


def _consistent(action: str, body: dict[str, Any]) -> bool:
    """Whether a read asked for strong consistency (BatchGetItem: per table; any one counts)."""
    if action == "BatchGetItem":
        return any(bool(request.get("ConsistentRead")) for request in (body.get("RequestItems") or {}).values())
    return bool(body.get("ConsistentRead"))


def partition_keys(action: str, body: dict[str, Any]) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """(table, index, partition keys) for each table a request body touches."""

    def pk(item: dict[str, Any]) -> str:
        return str(item["pk"]["S"])

    if action in ("GetItem", "DeleteItem", "UpdateItem"):
        return [(body["TableName"], None, (pk(body["Key"]),))]
    if action == "PutItem":
        return [(body["TableName"], None, (pk(body["Item"]),))]
    if action == "BatchGetItem":
        return [(table, None, tuple(pk(k) for k in spec["Keys"])) for table, spec in body["RequestItems"].items()]
    if action == "BatchWriteItem":
        out = []
        for table, requests in body["RequestItems"].items():
            keys = [pk(r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"]) for r in requests]
            out.append((table, None, tuple(keys)))
        return out
    if action == "Query":
        names = body.get("ExpressionAttributeNames", {})
        values = body.get("ExpressionAttributeValues", {})
        hash_name = "active" if body.get("IndexName") else "pk"
        keys = tuple(
            str(values[placeholder].get("S"))
            for name, placeholder in _EQUALITY.findall(body.get("KeyConditionExpression", ""))
            if names.get(name, name) == hash_name and placeholder in values
        )
        return [(body["TableName"], body.get("IndexName"), keys)]
    return [(str(body.get("TableName", "")), body.get("IndexName"), ())]  # Scan, table management…


class RecordingDynamoDB:
    """moto's DynamoDB on 127.0.0.1, recording the calls signed with ``watched_key``."""

    def __init__(self, watched_key: str = TASK_ACCESS_KEY) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: PLC0415

        self.watched_key = watched_key
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._moto: WsgiApp = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = serve_in_thread(self._server, "recording-dynamodb")

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def client(self, access_key: str = HARNESS_ACCESS_KEY) -> Any:
        import boto3  # noqa: PLC0415

        return boto3.session.Session().client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=SECRET_KEY,
        )

    def task_env(self, table: str) -> dict[str, str]:
        """What a voice task needs to use this endpoint as its store, signing as the watched key."""
        return {
            "TIMMYBOT_STORE_BACKEND": "dynamodb",
            "TIMMYBOT_DYNAMODB_TABLE": table,
            "TIMMYBOT_AWS_REGION": REGION,
            "TIMMYBOT_AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.watched_key,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ WSGI
    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        credential = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        if target.startswith("DynamoDB_") and credential and credential.group(1) == self.watched_key:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(raw)
            action = target.split(".", 1)[1]
            body = json.loads(raw or b"{}")
            consistent = _consistent(action, body)
            calls = [Call(action, t, i, k, consistent) for t, i, k in partition_keys(action, body)]
            with self._lock:
                self._calls.extend(calls)
        yield from self._moto(environ, start_response)
