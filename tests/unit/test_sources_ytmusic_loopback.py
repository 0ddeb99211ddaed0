"""YouTube Music end to end through real yt-dlp: its innertube requests (search, next, player) go over
TLS to a loopback fake answering in YouTube Music's JSON shape (``tests/support/fake_ytmusic.py``),
and ``YouTubeMusicSource`` with the chain's ISRC check runs on top. Only the host is moved.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulator.tls import make_tls
from tests.support.fake_ytmusic import PLAYER_CLIENT, FakeYouTubeMusic, Song, stream_url
from timmybot import netguard
from timmybot.errors import SourceError, TrackNotFoundError
from timmybot.models import Track
from timmybot.sources import SourceSettings
from timmybot.sources.chain import SourceChain
from timmybot.sources.ytdlp import YouTubeMusicSource
from timmybot.store.memory import MemoryStore

SETTINGS = SourceSettings()
ISRC = "GBARL9300135"
#: The ``params`` of YouTube Music's songs section (what ``#songs`` asks for).
SONGS_SECTION = "EgWKAQIIAWoKEAoQAxAEEAkQBQ=="

RIGHT = Song("dQw4w9WgXcQ", "Never Gonna Give You Up", "Rick Astley", 213)
LONG = Song("lOnGvErSiOn", "Never Gonna Give You Up (Extended Mix)", "Rick Astley", 340)
WRONG = Song("wR0ngS0ng01", "Together Forever", "Rick Astley", 214)


@pytest.fixture
def music(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeYouTubeMusic]:
    tls = make_tls(tmp_path / "tls")
    # yt-dlp verifies the fake's certificate against the loopback CA (no nocheckcertificate).
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    with FakeYouTubeMusic(tls, {}) as fake:
        yield fake


def _chain(music: FakeYouTubeMusic) -> SourceChain:
    source = YouTubeMusicSource(SETTINGS, ydl_factory=music.ydl_factory)
    return SourceChain.over_store(SETTINGS, MemoryStore(), sources=[source])


def _spotify(song: Song = RIGHT) -> Track:
    return Track("spotify", "4uLU6hMCjMI75M1A2tKUQC", song.title, "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC",
                 song.duration_s, None, song.artist, isrc=ISRC)  # fmt: skip


def test_search_goes_to_the_songs_section_and_names_its_tracks_youtube_music(music: FakeYouTubeMusic) -> None:
    music.listings["rick astley never gonna"] = [RIGHT, LONG]
    source = YouTubeMusicSource(SETTINGS, ydl_factory=music.ydl_factory)

    tracks = source.search("rick astley never gonna", limit=2)

    # yt-dlp asked YouTube Music's API as its web client, for the songs section, once (flat listing)
    [call] = music.calls
    assert (call.endpoint, call.client, call.asked, call.params) == (
        "search", "WEB_REMIX", "rick astley never gonna", SONGS_SECTION)  # fmt: skip
    assert [(t.source, t.source_id, t.title, t.url) for t in tracks] == [
        ("ytmusic", RIGHT.video_id, RIGHT.title, f"https://music.youtube.com/watch?v={RIGHT.video_id}"),
        ("ytmusic", LONG.video_id, LONG.title, f"https://music.youtube.com/watch?v={LONG.video_id}"),
    ]


def test_a_search_that_lists_nothing_is_track_not_found(music: FakeYouTubeMusic) -> None:
    source = YouTubeMusicSource(SETTINGS, ydl_factory=music.ydl_factory)

    with pytest.raises(TrackNotFoundError):
        source.search("nothing by that name", limit=3)
    assert music.asked("search") == ["nothing by that name"]


def test_the_fake_is_reached_through_the_network_guard_with_its_certificate_verified(
    music: FakeYouTubeMusic, monkeypatch: pytest.MonkeyPatch
) -> None:
    music.listings["rick astley"] = [RIGHT]
    source = YouTubeMusicSource(SETTINGS, ydl_factory=music.ydl_factory)

    # WHEN the loopback CA is not trusted: the TLS handshake fails, no request reaches the API
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(SourceError) as untrusted:
        source.search("rick astley", limit=1)
    assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.value.__cause__)
    assert music.calls == []

    # WHEN the guard no longer allows the fake's port: yt-dlp's tunnel is refused
    monkeypatch.setenv("SSL_CERT_FILE", str(music.ca_file))
    netguard.revoke(f"127.0.0.1:{music.port}")
    with pytest.raises(SourceError) as refused:
        source.search("rick astley", limit=1)
    assert "Tunnel connection failed: 403" in str(refused.value.__cause__)
    assert music.calls == []


def test_an_isrc_hit_is_read_in_full_from_the_player_and_mirrors_the_spotify_track(music: FakeYouTubeMusic) -> None:
    music.listings[ISRC] = [RIGHT]

    match = _chain(music).mirror(RIGHT.title, RIGHT.artist, RIGHT.duration_s, ISRC)

    # THEN the player answer gave the duration, and its auto-generated description the artist and album
    assert (match.source, match.source_id, match.duration_s, match.artist, match.album) == (
        "ytmusic", RIGHT.video_id, RIGHT.duration_s, RIGHT.artist, RIGHT.album)  # fmt: skip
    assert music.asked("search") == [ISRC]
    assert music.asked("player") == [RIGHT.video_id]
    assert {call.client for call in music.calls if call.endpoint == "player"} == {PLAYER_CLIENT.upper()}
    assert not [call for call in music.calls if call.endpoint.startswith("GET ")]


@pytest.mark.parametrize("wrong", [LONG, WRONG], ids=["duration-off", "another-song"])
def test_an_isrc_hit_that_is_not_the_recording_is_refused_and_the_next_candidate_used(
    music: FakeYouTubeMusic, wrong: Song
) -> None:
    # GIVEN an ISRC search whose first hit is too long (340 s for 213 s) or another song
    music.listings[ISRC] = [wrong, RIGHT]

    match = _chain(music).mirror(RIGHT.title, RIGHT.artist, RIGHT.duration_s, ISRC)

    # THEN both hits were read in full, the first refused, the second used
    assert match.source_id == RIGHT.video_id
    assert music.asked("player") == [wrong.video_id, RIGHT.video_id]


def test_an_isrc_search_of_wrong_songs_only_is_no_match(music: FakeYouTubeMusic) -> None:
    music.listings[ISRC] = [WRONG, LONG]

    with pytest.raises(TrackNotFoundError):
        _chain(music).mirror(RIGHT.title, RIGHT.artist, RIGHT.duration_s, ISRC)
    # AND after the ISRC hits were refused, the text search was asked too (it lists nothing)
    assert music.asked("search") == [ISRC, "Rick Astley Never Gonna Give You Up"]


def test_a_spotify_track_streams_the_opus_format_of_its_youtube_music_mirror(music: FakeYouTubeMusic) -> None:
    # GIVEN an ISRC search whose first hit is the too-long version
    music.listings[ISRC] = [LONG, RIGHT]

    stream = _chain(music).stream(_spotify())

    # THEN the voice task gets the right song's Opus format, read from the player answer
    assert (stream.source, stream.stream_url, stream.codec) == ("ytmusic", stream_url(RIGHT), "opus")
    assert music.asked("player").count(LONG.video_id) == 1


@pytest.mark.parametrize(("quality", "itag"), [("high", 251), ("data-saver", 249)])
def test_the_requesters_quality_picks_among_the_formats_the_player_lists(
    music: FakeYouTubeMusic, quality: str, itag: int
) -> None:
    # GIVEN a YouTube Music track whose player lists Opus at 140, 70 and 50 kbps
    music.listings["rick astley"] = [RIGHT]
    [track] = YouTubeMusicSource(SETTINGS, ydl_factory=music.ydl_factory).search("rick astley", limit=1)

    stream = _chain(music).stream(track, quality=quality)

    # THEN yt-dlp's own format selection took the best Opus, or the best at or under 64 kbps
    assert stream.stream_url == stream_url(RIGHT, itag)
    assert stream.codec == "opus"
