"""In AWS the Lambdas hold parameter names; the bot token is read from SSM (moto) on first use."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from moto import mock_aws

from chalicelib.bootstrap import bootstrap
from tests.support.loopback import serve_in_thread
from tests.support.signing import Signer, make_settings
from timmybot.config import Settings
from timmybot.secrets import SecretUnavailableError, load_parameter_secrets

TOKEN = "bot-token-from-ssm-Zq8"
PARAMETER = "/timmybot/dev/discord-bot-token"


@pytest.fixture
def ssm() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        client.put_parameter(Name=PARAMETER, Value=TOKEN, Type="SecureString")
        yield client


def test_the_bot_token_is_read_from_its_securestring_parameter(ssm: object) -> None:
    settings = Settings(discord_bot_token_parameter=PARAMETER)

    loaded = load_parameter_secrets(settings, client=ssm)

    assert loaded.discord_bot_token == TOKEN
    assert TOKEN not in repr(loaded)


def test_a_token_already_in_the_environment_wins_and_nothing_is_fetched() -> None:
    settings = Settings(discord_bot_token="local-token", discord_bot_token_parameter=PARAMETER)

    assert load_parameter_secrets(settings, client=object()) is settings


def test_a_missing_parameter_is_a_clear_error(ssm: object) -> None:
    with pytest.raises(SecretUnavailableError, match="/timmybot/dev/missing"):
        load_parameter_secrets(Settings(discord_bot_token_parameter="/timmybot/dev/missing"), client=ssm)


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Recorder.seen.append(self.headers.get("Authorization", ""))
        body = b'{"id": "1", "username": "bot", "discriminator": "0", "avatar": null}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_the_api_lambda_calls_discord_with_the_token_from_ssm(ssm: object, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    serve_in_thread(server, "recording-discord")
    try:
        settings = make_settings(
            tmp_path,
            Signer(),
            discord_bot_token="",
            discord_bot_token_parameter=PARAMETER,
            discord_api_base=f"http://127.0.0.1:{server.server_address[1]}/api/v10",
        )
        services = bootstrap(settings, in_lambda=False)

        services.discord.request("GET", "/users/@me")
    finally:
        server.shutdown()

    assert _Recorder.seen == [f"Bot {TOKEN}"]


def test_the_secrets_are_read_once_per_process_and_shared_by_every_port(ssm: Any, tmp_path: Path) -> None:
    # GIVEN the api's services, with the bot token named by its parameter
    settings = make_settings(tmp_path, Signer(), discord_bot_token="", discord_bot_token_parameter=PARAMETER)
    services = bootstrap(settings, in_lambda=False)
    assert not services.secrets_loaded  # nothing is read at bootstrap

    # WHEN the first thing that needs them reads them, and the parameter is gone afterwards
    first = services.secret_settings
    ssm.delete_parameter(Name=PARAMETER)

    # THEN every later use gets that same Settings object, read once (a second read would now fail)
    assert first.discord_bot_token == TOKEN
    assert services.secret_settings is first
    assert services.settings.discord_bot_token == ""  # the settings handlers see carry no secret
