"""The interactions client signs like Discord: a loopback verifier and the real api app accept it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest

from tests.support.emulator import DiscordEmulator
from tests.support.interactions_client import Actor, InteractionsClient, InteractionType, wait_for_webhook
from tests.support.loopback import serve_in_thread

# The real api app (chalice_app/app.py) is written by another part of the project; skip until it imports.
_APP_IMPORT_ERROR: str | None
try:
    from app import app as api_app
    from chalice.config import Config
    from chalice.local import LocalDevServer

    from chalicelib.bootstrap import app_services, bootstrap
    from tests.support.signing import Signer, make_settings

    _APP_IMPORT_ERROR = None
except ImportError as exc:
    _APP_IMPORT_ERROR = str(exc)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]


class _VerifyingHandler(BaseHTTPRequestHandler):
    """Answers like a Discord interactions endpoint: 401 on a bad signature, PONG to PING."""

    server: _VerifyingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        signature = self.headers.get("X-Signature-Ed25519", "")
        timestamp = self.headers.get("X-Signature-Timestamp", "")
        try:
            self.server.verify_key.verify(timestamp.encode() + body, bytes.fromhex(signature))
        except (nacl.exceptions.BadSignatureError, ValueError):
            self._answer(401, {"error": "invalid request signature"})
            return
        payload = json.loads(body)
        self.server.received.append(payload)
        if payload["type"] == InteractionType.PING:
            self._answer(200, {"type": 1})
        elif payload["type"] == InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE:
            self._answer(200, {"type": 8, "data": {"choices": []}})
        else:
            content = f"got {payload['data'].get('name')}"
            self._answer(200, {"type": 4, "data": {"content": content, "allowed_mentions": {"parse": []}}})

    def _answer(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class _VerifyingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, verify_key: nacl.signing.VerifyKey) -> None:
        super().__init__(("127.0.0.1", 0), _VerifyingHandler)
        self.verify_key = verify_key
        self.received: list[dict[str, Any]] = []


@pytest.fixture
def verifier() -> Iterator[tuple[_VerifyingServer, nacl.signing.SigningKey]]:
    key = nacl.signing.SigningKey.generate()
    server = _VerifyingServer(key.verify_key)
    serve_in_thread(server, "verifying-server")
    yield server, key
    server.shutdown()
    server.server_close()


def _url(server: _VerifyingServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/interactions"


def test_signed_ping_gets_pong_from_an_endpoint_that_verifies_ed25519(
    verifier: tuple[_VerifyingServer, nacl.signing.SigningKey],
) -> None:
    # GIVEN an endpoint that trusts the client's key
    server, key = verifier
    client = InteractionsClient(_url(server), signing_key=key)

    # WHEN the client sends a signed PING
    status, body = client.send(client.ping())

    # THEN the endpoint verified it and answered PONG
    assert (status, body) == (200, {"type": 1})
    assert client.public_key_hex == key.verify_key.encode().hex()


def test_ping_signed_with_another_key_is_rejected_with_401(
    verifier: tuple[_VerifyingServer, nacl.signing.SigningKey],
) -> None:
    # GIVEN a client holding a key the endpoint does not trust
    server, _ = verifier
    client = InteractionsClient(_url(server))

    # WHEN it sends a PING
    status, _ = client.send(client.ping())

    # THEN the endpoint refuses it
    assert status == 401


@pytest.mark.parametrize("corruption", ["signature", "timestamp", "body", "missing_headers"])
def test_each_corruption_breaks_the_signature(
    verifier: tuple[_VerifyingServer, nacl.signing.SigningKey], corruption: Any
) -> None:
    # GIVEN a trusted client
    server, key = verifier
    client = InteractionsClient(_url(server), signing_key=key)

    # WHEN it sends a command with one part corrupted
    actor = Actor(guild_id=1, channel_id=2)
    status, _ = client.send(client.command("play", {"query": "x"}, actor=actor), corrupt=corruption)

    # THEN verification fails
    assert status == 401
    assert server.received == []


def test_builders_make_discord_shaped_payloads(verifier: tuple[_VerifyingServer, nacl.signing.SigningKey]) -> None:
    # GIVEN a trusted client and an actor in a guild
    server, key = verifier
    client = InteractionsClient(_url(server), signing_key=key, application_id=42)
    actor = Actor(guild_id=10, channel_id=20, user_id=30, roles=[40])

    # WHEN it sends one of each interaction type
    payloads = [
        client.command("play", {"query": "tone", "count": 2, "now": True}, actor=actor),
        client.component("v1:np:skip", actor=actor),
        client.autocomplete("play", "query", "ton", actor=actor),
        client.modal_submit("v1:modal", {"field": "value"}, actor=actor),
    ]
    for payload in payloads:
        assert client.send(payload)[0] == 200

    # THEN the endpoint received them intact, with the fields a handler reads
    command, button, auto, modal = server.received
    assert [p["type"] for p in server.received] == [2, 3, 4, 5]
    assert command["data"]["options"] == [
        {"name": "query", "type": 3, "value": "tone"},
        {"name": "count", "type": 4, "value": 2},
        {"name": "now", "type": 5, "value": True},
    ]
    assert command["member"]["user"]["id"] == "30" and command["member"]["roles"] == ["40"]
    assert command["guild_id"] == "10" and command["channel_id"] == "20" and command["application_id"] == "42"
    assert {"app_permissions", "locale", "token", "id"} <= command.keys()
    assert button["data"] == {"custom_id": "v1:np:skip", "component_type": 2} and "message" in button
    assert auto["data"]["options"][-1] == {"name": "query", "type": 3, "value": "ton", "focused": True}
    assert modal["data"]["components"][0]["components"][0]["value"] == "value"
    assert len({p["token"] for p in server.received}) == 4


def test_webhook_edits_for_an_interaction_token_are_readable(emulator: DiscordEmulator) -> None:
    # GIVEN an interaction token the bot answers on the emulator's webhook routes
    client = InteractionsClient("http://127.0.0.1:9/unused", application_id=emulator.application_id)
    token = client.command("play", actor=Actor(guild_id=1, channel_id=2))["token"]
    base = f"{emulator.api_base}/webhooks/{emulator.application_id}/{token}"
    ctx = emulator.ssl_context()

    # WHEN the bot edits @original and posts a follow-up
    for method, url, body in (
        ("PATCH", f"{base}/messages/@original", {"content": "Queued tone", "allowed_mentions": {"parse": []}}),
        ("POST", base, {"content": "Now playing", "embeds": [{"title": "tone"}], "allowed_mentions": {"parse": []}}),
    ):
        request = urllib.request.Request(
            url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method=method
        )
        with urllib.request.urlopen(request, context=ctx) as response:
            assert response.status == 200

    # THEN both are recorded for that token, in order
    calls = wait_for_webhook(emulator, token, count=2)
    assert [(c.action, c.content) for c in calls] == [("edit_original", "Queued tone"), ("followup", "Now playing")]
    assert calls[1].embeds == [{"title": "tone"}]
    assert emulator.original_message(token)["content"] == "Queued tone"


@pytest.mark.skipif(_APP_IMPORT_ERROR is not None, reason=f"the api app is not importable yet: {_APP_IMPORT_ERROR}")
def test_signed_ping_to_the_real_api_app_gets_pong(tmp_path: Path) -> None:
    # GIVEN the real Chalice app served on loopback, trusting the client's public key
    client_key = nacl.signing.SigningKey.generate()
    services = bootstrap(make_settings(tmp_path, Signer(client_key)), in_lambda=False)
    local = LocalDevServer(api_app, Config(), "127.0.0.1", 0)
    with app_services.override(services):
        serve_in_thread(local.server, "chalice-local")
        try:
            url = f"http://127.0.0.1:{local.server.server_address[1]}/interactions"
            # WHEN a trusted and an untrusted client send a PING
            trusted = InteractionsClient(url, signing_key=client_key).send(InteractionsClient(url).ping())
            untrusted = InteractionsClient(url).send(InteractionsClient(url).ping())
        finally:
            local.shutdown()
            local.server.server_close()
    # THEN only the trusted one gets PONG
    assert trusted == (200, {"type": 1})
    assert untrusted[0] == 401
