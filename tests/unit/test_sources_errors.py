"""yt-dlp failures → domain errors, each with a user sentence, an operator hint and a metric.

The exceptions are yt-dlp's own classes carrying yt-dlp's own wording (extractor/common.py,
extractor/youtube/_video.py, networking/exceptions.py), built the way ``YoutubeDL.extract_info``
wraps them.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from scripts.check_ytdlp_version import parse_pip_index, pinned_version, version_key
from tests.support.sources import FAULTS, timmybot_logs, ytdlp_failure  # noqa: F401 - fixture
from timmybot.errors import (
    AgeRestrictedError,
    BlockedSourceError,
    GeoBlockedError,
    SourceError,
    SourceLoginRequiredError,
    SourceRateLimitedError,
    SourceServerError,
    SourceTimeoutError,
    StreamForbiddenError,
    TrackNotFoundError,
    TrackTooLongError,
    TrackUnavailableError,
)
from timmybot.sources import Reason, Scope, failure_of, map_ytdlp_error
from timmybot.sources.failures import report_failure
from timmybot.sources.metrics import emit_source_failure

pytestmark = pytest.mark.usefixtures("timmybot_logs")

EXPECTED = {
    "bot_check": (BlockedSourceError, Reason.BOT_CHECK),
    "login_required": (SourceLoginRequiredError, Reason.LOGIN_REQUIRED),
    "age_restricted": (AgeRestrictedError, Reason.AGE_RESTRICTED),
    "geo_blocked": (GeoBlockedError, Reason.GEO_BLOCKED),
    "unavailable": (TrackUnavailableError, Reason.UNAVAILABLE),
    "stream_403": (StreamForbiddenError, Reason.STREAM_403),
    "timeout": (SourceTimeoutError, Reason.TIMEOUT),
    "rate_limited": (SourceRateLimitedError, Reason.RATE_LIMITED),
    "server_error": (SourceServerError, Reason.SERVER_ERROR),
    "broken": (SourceError, Reason.ERROR),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_each_real_ytdlp_failure_maps_to_its_domain_error_and_reason(fault: str) -> None:
    # GIVEN the exception yt-dlp raises for this kind of refusal
    exc = ytdlp_failure(fault)
    # WHEN the adapter maps it
    error = map_ytdlp_error(exc, target="https://www.youtube.com/watch?v=xxxxxxxxxxx")
    # THEN the user reads a sentence of its own, and the chain knows the reason
    expected_type, reason = EXPECTED[fault]
    assert type(error) is expected_type
    assert error.user_message and "yt-dlp" not in error.user_message and "--cookies" not in error.user_message
    assert failure_of(error).reason is reason


def test_geo_restriction_is_told_by_its_type_even_without_the_usual_wording() -> None:
    exc = DownloadError("ERROR: blocked here", exc_info=(GeoRestrictedError, GeoRestrictedError("nope"), None))
    assert type(map_ytdlp_error(exc, target="t")) is GeoBlockedError


def test_a_403_cause_is_told_by_its_status_even_when_the_message_hides_it() -> None:
    # GIVEN an ExtractorError whose message shows the cause only as a repr ("<HTTPError 403: Forbidden>")
    cause = HTTPError(Response(io.BytesIO(b""), "https://www.youtube.com/youtubei/v1/player", {}, 403, "Forbidden"))
    exc = DownloadError(
        "ERROR: x", exc_info=(ExtractorError, ExtractorError("Unable to download API JSON", cause=cause), None)
    )
    # THEN it is a stream/API refusal
    assert type(map_ytdlp_error(exc, target="t")) is StreamForbiddenError


def test_rate_limit_and_captcha_count_as_a_bot_check() -> None:
    reason = (
        "This content isn't available, try again later. The current session has been rate-limited by YouTube "
        "for up to an hour."
    )
    exc = DownloadError(f"ERROR: [youtube] xxxxxxxxxxx: {reason}")
    assert isinstance(map_ytdlp_error(exc, target="t"), BlockedSourceError)


@pytest.mark.parametrize("fault", ["bot_check", "login_required", "stream_403", "timeout", "broken"])
def test_source_faults_count_towards_the_breaker_and_fall_back(fault: str) -> None:
    failure = failure_of(map_ytdlp_error(ytdlp_failure(fault), target="t"))
    assert failure.source_fault and failure.fallback and failure.hint


@pytest.mark.parametrize("fault", ["bot_check", "rate_limited", "server_error", "timeout"])
def test_bot_checks_429s_5xx_and_timeouts_are_source_wide(fault: str) -> None:
    # GIVEN a refusal that says the whole site is refusing or down, whatever the track
    failure = failure_of(map_ytdlp_error(ytdlp_failure(fault), target="t"))
    # THEN it counts towards the breaker on its own, as it always did
    assert failure.scope is Scope.SOURCE and failure.source_wide


@pytest.mark.parametrize("fault", ["broken", "login_required", "stream_403"])
def test_unknown_errors_sign_in_walls_and_403s_count_per_track(fault: str) -> None:
    # GIVEN a failure that may be about the one track asked for
    failure = failure_of(map_ytdlp_error(ytdlp_failure(fault), target="t"))
    # THEN it counts only when it spreads across tracks and guilds, never on its own
    assert failure.scope is Scope.TRACK and not failure.source_wide


def test_a_5xx_is_told_by_its_status_apart_from_an_unknown_error() -> None:
    # GIVEN a 502 hidden behind an extractor message that names no status
    response = Response(io.BytesIO(b""), "https://www.youtube.com/youtubei/v1/next", {}, 502, "Bad Gateway")
    exc = DownloadError("ERROR: x", exc_info=(ExtractorError, ExtractorError("x", cause=HTTPError(response)), None))
    # THEN the site is down, not the track broken
    assert failure_of(map_ytdlp_error(exc, target="t")).reason is Reason.SERVER_ERROR


def test_unavailable_age_and_geo_restricted_tracks_never_count() -> None:
    # The site answered, and the answer is about the track: nothing is wrong with the source.
    for fault in ("unavailable", "age_restricted", "geo_blocked"):
        assert failure_of(map_ytdlp_error(ytdlp_failure(fault), target="t")).scope is Scope.NONE


@pytest.mark.parametrize("error", [TrackNotFoundError(), TrackTooLongError(), TrackUnavailableError()])
def test_not_found_too_long_and_unavailable_are_not_the_sources_fault(error: SourceError) -> None:
    failure = failure_of(error)
    assert not failure.source_fault and not failure.fallback


def test_a_failure_logs_the_operator_hint_and_the_metric(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a bot check from YouTube
    error = map_ytdlp_error(ytdlp_failure("bot_check"), target="t")
    # WHEN the chain reports it
    with caplog.at_level("INFO"):
        report_failure("youtube", error, operation="stream")
    text = caplog.text
    # THEN the operator reads what to do, and the metric names source and reason
    assert "YouTube is asking for a sign-in" in text and "docs/SOURCES.md" in text
    assert "metric=SourceFailures value=1 source=youtube reason=bot_check" in text


def test_a_not_found_emits_no_metric(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        report_failure("soundcloud", TrackNotFoundError(), operation="search")
    assert "metric=" not in caplog.text


def test_in_lambda_the_metric_is_an_emf_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the Lambda environment
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "timmybot-worker")
    # WHEN a failure is counted THEN one EMF document goes to stdout with both dimension sets
    emit_source_failure("youtube", "bot_check")
    out = capsys.readouterr().out
    assert '"_aws"' in out and '"SourceFailures"' in out and '"bot_check"' in out and '"youtube"' in out


def test_version_check_reads_the_pin_and_pips_answer(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("boto3==1.0\nyt-dlp==2026.10.26  # pinned\n", encoding="utf-8")
    assert pinned_version(requirements) == "2026.10.26"
    answer = "yt-dlp (2026.11.9)\nAvailable versions: 2026.11.9, 2026.10.26\n  INSTALLED: 2026.10.26\n"
    assert parse_pip_index(answer) == "2026.11.9"
    assert version_key("2026.11.9") > version_key("2026.10.26") > version_key("2026.9.30.1")
