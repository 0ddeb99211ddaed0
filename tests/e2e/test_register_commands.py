"""GIVEN the command schema WHEN scripts/register_commands.py runs THEN Discord gets one bulk PUT of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib import commands
from tests.support.emulator import discord_rules
from tests.support.loopback import serve_in_thread
from timmybot.discord.rest import DiscordHTTPError, DiscordRest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "register_commands.py"
APP_ID = "444444444444444444"
GUILD_ID = "123456789012345678"
TOKEN = "test-bot-token"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeDiscord:
    """A loopback HTTP server that records requests and answers from a script of (status, body)."""

    server: ThreadingHTTPServer
    requests: list[Recorded] = field(default_factory=list)
    answers: list[tuple[int, Any]] = field(default_factory=list)

    @property
    def api_base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/api/v10"


@pytest.fixture
def fake_discord() -> Iterator[FakeDiscord]:
    state: dict[str, FakeDiscord] = {}

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            fake = state["fake"]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            status, answer = fake.answers.pop(0) if fake.answers else (200, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_PUT = do_GET = do_PATCH = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake = FakeDiscord(server)
    state["fake"] = fake
    serve_in_thread(server, "fake-discord")
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIMMYBOT_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=clean, timeout=60, check=False
    )


def test_dry_run_prints_valid_json_of_every_command_within_discords_limits() -> None:
    result = _run("--dry-run")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert [c["name"] for c in printed] == [c.name for c in commands.COMMANDS]
    for entry in printed:
        assert entry["name"] == entry["name"].lower()
        assert len(entry["name"]) <= 32
        assert len(entry["description"]) <= 100
        assert len(entry.get("options", [])) <= 25
        assert entry["contexts"] == [0]
    # AND the whole set, subcommands and groups included, is what Discord's bulk PUT takes
    problems = discord_rules.request_problems("PUT", "/applications/{application_id}/commands", printed)
    assert [str(p) for p in problems] == []


def test_guild_registration_is_one_bulk_put_with_the_bot_token(fake_discord: FakeDiscord) -> None:
    env = {
        "TIMMYBOT_DISCORD_APPLICATION_ID": APP_ID,
        "TIMMYBOT_DISCORD_BOT_TOKEN": TOKEN,
        "TIMMYBOT_DISCORD_API_BASE": fake_discord.api_base,
    }
    result = _run("--guild", GUILD_ID, env=env)
    assert result.returncode == 0, result.stderr
    assert f"Registered {len(commands.COMMANDS)} commands to guild {GUILD_ID}" in result.stdout
    (request,) = fake_discord.requests
    assert request.method == "PUT"
    assert request.path == f"/api/v10/applications/{APP_ID}/guilds/{GUILD_ID}/commands"
    assert request.headers["Authorization"] == f"Bot {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("DiscordBot (")
    assert request.body == json.loads(json.dumps(commands.schema()))
    guild_route = "/applications/{application_id}/guilds/{guild_id}/commands"
    assert [str(p) for p in discord_rules.request_problems("PUT", guild_route, request.body)] == []
    assert TOKEN not in result.stdout + result.stderr


def test_global_registration_uses_the_application_route_and_waits_out_a_429(fake_discord: FakeDiscord) -> None:
    fake_discord.answers.append((429, {"message": "You are being rate limited.", "retry_after": 0.05, "global": False}))
    env = {
        "TIMMYBOT_DISCORD_APPLICATION_ID": APP_ID,
        "TIMMYBOT_DISCORD_BOT_TOKEN": TOKEN,
        "TIMMYBOT_DISCORD_API_BASE": fake_discord.api_base,
    }
    result = _run(env=env)
    assert result.returncode == 0, result.stderr
    assert [r.path for r in fake_discord.requests] == [f"/api/v10/applications/{APP_ID}/commands"] * 2
    assert "globally" in result.stdout


def test_discord_refusal_exits_1_with_status_and_code(fake_discord: FakeDiscord) -> None:
    fake_discord.answers.append((400, {"message": "Invalid Form Body", "code": 50035}))
    env = {
        "TIMMYBOT_DISCORD_APPLICATION_ID": APP_ID,
        "TIMMYBOT_DISCORD_BOT_TOKEN": TOKEN,
        "TIMMYBOT_DISCORD_API_BASE": fake_discord.api_base,
    }
    result = _run("--guild", GUILD_ID, env=env)
    assert result.returncode == 1
    assert "HTTP 400 code 50035" in result.stderr
    assert TOKEN not in result.stderr


def test_missing_credentials_or_a_bad_guild_id_exit_2_without_calling_discord() -> None:
    missing = _run("--guild", GUILD_ID)
    assert missing.returncode == 2
    assert "TIMMYBOT_DISCORD_APPLICATION_ID" in missing.stderr
    bad_guild = _run("--guild", "my-server")
    assert bad_guild.returncode == 2
    assert "not a Discord guild id" in bad_guild.stderr


# ---------------------------------------------------------------------------------- the REST client itself
def test_voice_state_404_unknown_voice_state_means_not_in_voice(fake_discord: FakeDiscord) -> None:
    fake_discord.answers.append((404, {"message": "Unknown Voice State", "code": 10065}))
    fake_discord.answers.append((200, {"channel_id": "777777777777777777", "user_id": "1"}))
    rest = DiscordRest(token=TOKEN, api_base=fake_discord.api_base)
    assert rest.get_voice_state(GUILD_ID, "1") is None
    assert rest.get_voice_state(GUILD_ID, "1") == {"channel_id": "777777777777777777", "user_id": "1"}
    assert fake_discord.requests[0].path == f"/api/v10/guilds/{GUILD_ID}/voice-states/1"


def test_edit_original_uses_the_webhook_route_without_the_bot_token(fake_discord: FakeDiscord) -> None:
    rest = DiscordRest(token=TOKEN, api_base=fake_discord.api_base)
    rest.edit_original(APP_ID, "tok/en", {"content": "done"})
    (request,) = fake_discord.requests
    assert request.method == "PATCH"
    assert request.path == f"/api/v10/webhooks/{APP_ID}/tok%2Fen/messages/@original"
    assert "Authorization" not in request.headers
    assert request.body == {"content": "done", "allowed_mentions": {"parse": []}}  # a message can ping nobody


def test_rate_limit_retries_are_bounded_and_the_error_is_typed(fake_discord: FakeDiscord) -> None:
    for _ in range(5):
        fake_discord.answers.append((429, {"message": "slow down", "retry_after": 0.0}))
    waits: list[float] = []
    rest = DiscordRest(token=TOKEN, api_base=fake_discord.api_base, max_attempts=3, sleep=waits.append)
    with pytest.raises(DiscordHTTPError) as caught:
        rest.create_message("555555555555555555", {"content": "hi"})
    assert caught.value.status == 429
    assert len(fake_discord.requests) == 3
    assert waits == [0.0, 0.0]
    assert TOKEN not in str(caught.value)


def test_a_wait_longer_than_allowed_is_not_slept(fake_discord: FakeDiscord) -> None:
    fake_discord.answers.append((429, {"message": "slow down", "retry_after": 3600}))
    waits: list[float] = []
    rest = DiscordRest(token=TOKEN, api_base=fake_discord.api_base, sleep=waits.append)
    with pytest.raises(DiscordHTTPError):
        rest.edit_message("555555555555555555", "666666666666666666", {"content": "x"})
    assert waits == []
