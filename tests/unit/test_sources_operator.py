"""The operator's source secret: it reaches yt-dlp's options and never a log line."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yt_dlp
from moto import mock_aws

from tests.support.sources import timmybot_logs  # noqa: F401 - fixture
from tests.unit.test_sources_ytdlp import BOT_CHECK, RecordedYoutubeDL
from timmybot.errors import BlockedSourceError
from timmybot.sources import Query, QueryKind, SourceSettings, YouTubeSource
from timmybot.sources.operator import (
    OperatorSecretError,
    operator_sources,
    parse_operator_document,
    redact,
    reset_operator_cache,
)

pytestmark = pytest.mark.usefixtures("timmybot_logs")

COOKIE_VALUE = "AKEyXzVeryPrivateSessionCookie0123456789"
PROXY_PASSWORD = "s3cr3t-proxy-pass"
PROXY = f"http://bot:{PROXY_PASSWORD}@proxy.internal:3128"
COOKIES = (
    "# Netscape HTTP Cookie File\n"
    f".youtube.com\tTRUE\t/\tTRUE\t1900000000\t__Secure-3PSID\t{COOKIE_VALUE}\n"
    "#HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t1900000000\tLOGIN_INFO\tAnotherSecretValue987654\n"
)
DOCUMENT = {
    "youtube_cookies": COOKIES,
    "proxy": PROXY,
    "youtube_player_clients": ["tv", "web_safari"],
    "po_token_provider": {"youtubepot-bgutilhttp": {"base_url": "http://127.0.0.1:4416"}},
    "youtube_po_tokens": ["web.gvs+PoTokenValueThatIsSecret"],
}


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    reset_operator_cache()
    yield
    reset_operator_cache()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "sources.json"
    path.write_text(json.dumps(DOCUMENT), encoding="utf-8")
    path.chmod(0o600)
    return path


def test_cookies_proxy_clients_and_po_token_provider_reach_the_options_the_adapter_builds(secret_file: Path) -> None:
    # GIVEN the operator secret in a local file
    settings = SourceSettings(source_secret_file=str(secret_file))
    # WHEN the YouTube adapter builds its stream options
    options = YouTubeSource(settings).options("stream")
    # THEN yt-dlp gets a private cookies file, the proxy, the clients and the provider's arguments
    cookie_file = Path(options["cookiefile"])
    assert cookie_file.read_text(encoding="utf-8").count(COOKIE_VALUE) == 1
    assert stat.S_IMODE(os.stat(cookie_file).st_mode) == 0o600
    assert options["proxy"] == PROXY
    assert options["extractor_args"] == {
        "youtube": {"player_client": ["tv", "web_safari"], "po_token": ["web.gvs+PoTokenValueThatIsSecret"]},
        "youtubepot-bgutilhttp": {"base_url": ["http://127.0.0.1:4416"]},
    }


def test_real_ytdlp_accepts_the_options(secret_file: Path) -> None:
    options = YouTubeSource(SourceSettings(source_secret_file=str(secret_file))).options("metadata")
    with yt_dlp.YoutubeDL(options) as ydl:
        assert ydl.params["proxy"] == PROXY
        assert ydl.cookiejar is not None and any(c.value == COOKIE_VALUE for c in ydl.cookiejar)


def test_the_secret_never_reaches_a_log_line(
    secret_file: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN DEBUG logging everywhere, and a yt-dlp failure whose text even quotes the proxy
    settings = SourceSettings(source_secret_file=str(secret_file))
    recorded = RecordedYoutubeDL(yt_dlp.utils.DownloadError(f"{BOT_CHECK} via {PROXY}"))
    source = YouTubeSource(settings, ydl_factory=recorded.factory)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("timmybot").debug("settings: %r / operator: %r", settings, source.operator)
        # WHEN the resolve path runs (and fails) at DEBUG
        with pytest.raises(BlockedSourceError):
            source.resolve(Query(QueryKind.YOUTUBE, "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"))
    captured = caplog.text + capsys.readouterr().err
    # THEN options went out with the credentials, and no secret value is in any captured output
    assert recorded.calls[0][1]["proxy"] == PROXY
    for secret in (COOKIE_VALUE, "AnotherSecretValue987654", PROXY_PASSWORD, PROXY, "PoTokenValueThatIsSecret"):
        assert secret not in captured
    assert "cookies=True" in captured and "proxy=True" in captured


def test_redact_scrubs_registered_values() -> None:
    parse_operator_document({"proxy": "http://u:another-pass-123@p.example:8080"})
    assert "another-pass-123" not in redact("connect via http://u:another-pass-123@p.example:8080 failed")


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"proxy": "ftp://x:1"}, "proxy must be"),
        ({"proxy": "http://no-port.example"}, "proxy must be"),
        ({"youtube_cookies": 7}, "youtube_cookies"),
        ({"youtube_player_clients": "tv,web"}, None),
        ({"po_token_provider": ["bgutil"]}, "po_token_provider"),
    ],
)
def test_malformed_documents_are_refused_by_key_not_by_value(document: dict[str, Any], problem: str | None) -> None:
    if problem is None:
        assert parse_operator_document(document).player_clients == ("tv,web",)
        return
    with pytest.raises(OperatorSecretError, match=problem):
        parse_operator_document(document)


def test_an_unreadable_secret_is_logged_and_playback_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"proxy": "http://u:leaky-password@h:1", ', encoding="utf-8")
    with caplog.at_level(logging.INFO):
        sources = operator_sources(SourceSettings(source_secret_file=str(bad)))
    assert sources.is_empty and sources.origin == "unavailable"
    assert "not JSON" in caplog.text and "leaky-password" not in caplog.text


def test_the_secret_is_read_once_per_process(secret_file: Path) -> None:
    settings = SourceSettings(source_secret_file=str(secret_file))
    first = operator_sources(settings)
    secret_file.write_text("{}", encoding="utf-8")
    assert operator_sources(settings) is first


def test_secrets_manager_operator_secret_is_read_through_moto(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN the operator secret stored in Secrets Manager
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="timmybot/sources", SecretString=json.dumps(DOCUMENT))["ARN"]
        settings = SourceSettings(source_secret_id=arn, aws_region="us-east-1")
        # WHEN a process reads it (its own client, as the worker and voice task do)
        with caplog.at_level(logging.DEBUG):
            sources = operator_sources(settings)
    # THEN every setting is there, and the log shows only which ones are set
    assert sources.proxy == PROXY and sources.player_clients == ("tv", "web_safari")
    assert sources.cookie_file is not None and COOKIE_VALUE in Path(sources.cookie_file).read_text(encoding="utf-8")
    assert COOKIE_VALUE not in caplog.text and PROXY_PASSWORD not in caplog.text
    assert "operator source settings loaded" in caplog.text


def test_a_missing_secrets_manager_secret_is_named_by_its_error_code(caplog: pytest.LogCaptureFixture) -> None:
    with mock_aws(), caplog.at_level(logging.INFO):
        sources = operator_sources(SourceSettings(source_secret_id="timmybot/absent", aws_region="us-east-1"))
    assert sources.is_empty
    assert "ResourceNotFoundException" in caplog.text
