"""Real yt-dlp, our options, loopback only: what it refuses before any network, and what it returns.

Every URL here is on 127.0.0.1 (or names a site we never contact), and the media server's request
log proves whether yt-dlp opened a connection at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yt_dlp
from yt_dlp.utils import DownloadError

from tests.support.media import MediaServer, tone_file
from timmybot.errors import UnsupportedUrlError
from timmybot.models import Track
from timmybot.sources import Query, QueryKind, SourceSettings, YtDlpSource, build_ytdl_options


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.add("tone.webm", tone_file(440, 2, "webm"))
        yield server


@pytest.mark.parametrize("purpose", ["metadata", "stream"])
def test_our_options_refuse_a_direct_media_url_without_opening_a_connection(media: MediaServer, purpose: str) -> None:
    # GIVEN real yt-dlp configured with our options, and a loopback media URL
    options = build_ytdl_options(SourceSettings(), purpose=purpose)  # type: ignore[arg-type]
    url = media.url_for("tone.webm")
    # WHEN asked to extract it
    with yt_dlp.YoutubeDL(options) as ydl, pytest.raises(DownloadError, match="No suitable extractor"):
        ydl.extract_info(url, download=False)
    # THEN it refused before any request reached the server
    assert media.requests() == []


@pytest.mark.parametrize(
    "target",
    ["https://example.com/watch?v=dQw4w9WgXcQ", "hello world", "http://169.254.169.254/latest/meta-data/"],
    ids=["other-site", "bare-words", "imds"],
)
def test_our_options_refuse_other_sites_and_bare_words_immediately(target: str) -> None:
    options = build_ytdl_options(SourceSettings(), purpose="metadata")
    started = time.monotonic()
    with yt_dlp.YoutubeDL(options) as ydl, pytest.raises(DownloadError, match="No suitable extractor"):
        ydl.extract_info(target, download=False)
    # No DNS lookup, no connect timeout: refusal is local and instant.
    assert time.monotonic() - started < 1.0


def test_adapter_maps_the_refusal_to_unsupported_url(media: MediaServer) -> None:
    # GIVEN a query that slipped past the policy (constructed directly)
    query = Query(QueryKind.YOUTUBE, media.url_for("tone.webm"))
    # WHEN the real adapter resolves it THEN the user reads "unsupported", and nothing was fetched
    with pytest.raises(UnsupportedUrlError):
        YtDlpSource(SourceSettings()).resolve(query)
    assert media.requests() == []


def test_stream_reads_what_real_ytdlp_returns_for_a_direct_file(media: MediaServer) -> None:
    # GIVEN real yt-dlp where (in this test only) the generic extractor stands in for a site, so the
    # adapter's reading of a real, format-selected info dict can be checked on loopback
    def generic_only(options: dict[str, Any]) -> yt_dlp.YoutubeDL:
        return yt_dlp.YoutubeDL({**options, "allowed_extractors": ["generic"]})

    settings = SourceSettings(allow_local_media=True)
    url = media.url_for("tone.webm")
    track = Track("youtube", "tone", "Tone", url, 2, None, None)
    # WHEN the stream is resolved with our stream options ("bestaudio" finds nothing: codecs unknown)
    info = YtDlpSource(settings, ydl_factory=generic_only).stream(track)
    # THEN the "/best" fallback picked the file itself
    assert info.stream_url == url
    assert info.container == "webm"
    assert info.expires_at is None
    assert "User-Agent" in info.http_headers
