"""Tracks and stream descriptions: storage round trips, expiry, ffmpeg input options."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from timmybot.errors import SourceError, UnsupportedUrlError
from timmybot.library.spotify import SpotifyNotConfiguredError
from timmybot.models import Track
from timmybot.sources import LocalMediaSource, MemoryRecords, SourceChain, SourceSettings, StreamInfo
from timmybot.sources.models import expiry_from_url

TRACK = Track(
    source="youtube",
    source_id="dQw4w9WgXcQ",
    title="Never Gonna Give You Up",
    url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    duration_s=212,
    thumbnail="https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg",
    artist="Rick Astley",
    isrc="GBARL9300135",
)


def test_track_survives_a_json_round_trip() -> None:
    assert Track.from_dict(json.loads(json.dumps(TRACK.to_dict()))) == TRACK


def test_track_reads_dynamodb_decimals_back_as_ints() -> None:
    stored = {**TRACK.to_dict(), "duration_s": Decimal("212")}
    assert Track.from_dict(stored).duration_s == 212


def test_track_without_optional_fields_round_trips() -> None:
    bare = Track("soundcloud", "1", "t", "https://soundcloud.com/a/b", None, None, None)
    assert Track.from_dict(bare.to_dict()) == bare
    assert bare.cache_key == ("soundcloud", "1")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://rr1.googlevideo.com/videoplayback?expire=1800000000&ei=x", 1_800_000_000.0),
        (
            "https://manifest.googlevideo.com/api/manifest/hls_playlist/expire/1800000001/ei/x/index.m3u8",
            1_800_000_001.0,
        ),
        ("https://cf-media.sndcdn.com/abc.128.mp3?Policy=x", None),
        ("https://rr1.googlevideo.com/videoplayback?expire=soon", None),
    ],
    ids=["query", "path", "none", "garbage"],
)
def test_expiry_is_read_from_youtube_stream_urls(url: str, expected: float | None) -> None:
    assert expiry_from_url(url) == expected


def test_stream_counts_as_expired_a_minute_before_the_deadline() -> None:
    info = StreamInfo("https://x.googlevideo.com/v?expire=1000", expires_at=1000.0)
    assert not info.is_expired(now=900.0)
    assert info.is_expired(now=950.0)
    assert not StreamInfo("https://x/v").is_expired(now=1e12)


def test_remote_stream_options_reconnect_restrict_protocols_and_quote_headers() -> None:
    # GIVEN a remote stream with a header value that needs quoting
    info = StreamInfo(
        "https://rr1.googlevideo.com/videoplayback?expire=1",
        http_headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)", "Referer": "https://www.youtube.com/"},
        codec="opus",
    )
    # WHEN split the way discord.py splits before_options
    argv = shlex.split(info.ffmpeg_before_options())
    # THEN each option survives as one argument
    assert argv[:6] == ["-reconnect", "1", "-reconnect_streamed", "1", "-reconnect_delay_max", "5"]
    assert argv[argv.index("-protocol_whitelist") + 1] == "https,tls,tcp,crypto"
    assert argv[argv.index("-headers") + 1] == (
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nReferer: https://www.youtube.com/\r\n"
    )


def test_local_stream_options_allow_plain_http_only_for_local_media() -> None:
    argv = shlex.split(StreamInfo("http://127.0.0.1:8080/a.webm", local=True).ffmpeg_before_options())
    assert argv[argv.index("-protocol_whitelist") + 1] == "http,tcp,file"
    assert "-headers" not in argv


def test_header_injection_attempts_are_dropped() -> None:
    info = StreamInfo("https://x/v", http_headers={"X-Evil": "a\r\nHost: evil", "Bad:Name": "v", "Ok": "fine"})
    argv = shlex.split(info.ffmpeg_before_options())
    assert argv[argv.index("-headers") + 1] == "Ok: fine\r\n"


def test_stream_headers_stay_out_of_repr() -> None:
    info = StreamInfo("https://x/v", http_headers={"Cookie": "SID=secret"})
    assert "secret" not in repr(info)


@pytest.mark.parametrize(("codec", "is_opus"), [("opus", True), ("OPUS", True), ("mp4a.40.2", False), (None, False)])
def test_is_opus_follows_the_codec(codec: str | None, is_opus: bool) -> None:
    assert StreamInfo("https://x/v", codec=codec).is_opus is is_opus


@pytest.mark.parametrize(
    "kwargs",
    [{"playlist_cap": 0}, {"max_track_seconds": 0}, {"search_prefix": "ytsearch1"}, {"socket_timeout_s": 0}],
)
def test_nonsense_settings_are_refused_at_start(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SourceSettings(**kwargs)  # type: ignore[arg-type]


# -- router and local-source guard -----------------------------------------------------------------


def test_local_source_refuses_to_exist_under_default_settings() -> None:
    with pytest.raises(ValueError, match="allow_local_media"):
        LocalMediaSource(SourceSettings())


def test_router_refuses_local_tracks_under_default_settings() -> None:
    local_track = Track("local", "/a.webm", "a", "http://127.0.0.1:8080/a.webm", 2, None, None)
    with pytest.raises(UnsupportedUrlError):
        SourceChain(SourceSettings(), MemoryRecords()).stream(local_track)


def test_router_says_spotify_links_need_the_operators_spotify_app() -> None:
    # GIVEN settings without Spotify app credentials WHEN a Spotify link resolves
    router = SourceChain(SourceSettings(), MemoryRecords())
    # THEN the user reads that Spotify is not set up on this bot (no network call was made)
    with pytest.raises(SpotifyNotConfiguredError, match="aren't set up"):
        router.resolve_text("https://open.spotify.com/album/1DFixLWuPkv3KT3TnV35m3")


def test_router_refuses_tracks_of_unknown_sources() -> None:
    with pytest.raises(SourceError):
        SourceChain(SourceSettings(), MemoryRecords()).stream(
            Track("vimeo", "1", "t", "https://vimeo.com/1", None, None, None)
        )


def test_importing_sources_never_imports_ytdlp() -> None:
    # The api Lambda imports the policy; yt-dlp must stay off its fast path.
    code = "import sys, timmybot.sources; print('yt_dlp' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": "layers/core/python"},
        cwd=str(Path(__file__).parents[2]),
    )
    assert result.stdout.strip() == "False"
