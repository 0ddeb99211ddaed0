"""A generated tone served on loopback, resolved and streamed through the public entry points."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.media import MediaServer, ffmpeg_exe, tone_file
from timmybot.errors import TrackNotFoundError, UnsupportedUrlError
from timmybot.sources import MemoryRecords, SourceChain, SourceSettings, resolve_query, stream_for


@pytest.fixture
def local() -> SourceChain:
    """A chain with local media allowed (tests and the offline demo only), its breakers in memory."""
    return SourceChain(SourceSettings(allow_local_media=True), MemoryRecords())


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.add("tone 440.webm", tone_file(440, 2, "webm"))
        server.add("tone.mp3", tone_file(330, 3, "mp3"))
        yield server


def test_loopback_tone_resolves_to_one_track_with_title_and_duration(media: MediaServer, local: SourceChain) -> None:
    # GIVEN local media enabled and a 2-second opus tone on the loopback server
    url = media.url_for("tone 440.webm")
    # WHEN the worker resolves the /play argument
    tracks = resolve_query(url, local)
    # THEN one local track comes back, titled from the file name, with the probed duration
    assert len(tracks) == 1
    track = tracks[0]
    assert (track.source, track.title, track.url, track.duration_s) == ("local", "tone 440", url, 2)


def test_loopback_tone_streams_as_opus_and_ffmpeg_can_decode_it(media: MediaServer, local: SourceChain) -> None:
    # GIVEN a resolved local track
    [track] = resolve_query(media.url_for("tone 440.webm"), local)
    # WHEN the voice task asks for its stream
    info = stream_for(track, local)
    # THEN it is the file itself, opus, and ffmpeg decodes it with our input options
    assert info.stream_url == track.url
    assert info.is_opus and info.container == "webm"
    command = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        *shlex.split(info.ffmpeg_before_options()),
        "-i",
        info.stream_url,
        "-f",
        "s16le",
        "-ac",
        "2",
        "-ar",
        "48000",
        "-",
    ]
    decoded = subprocess.run(command, capture_output=True, timeout=30, check=True)
    seconds = len(decoded.stdout) / (48000 * 2 * 2)
    assert 1.9 <= seconds <= 2.1


def test_mp3_tone_is_not_marked_opus(media: MediaServer, local: SourceChain) -> None:
    [track] = resolve_query(media.url_for("tone.mp3"), local)
    info = stream_for(track, local)
    assert track.duration_s == 3
    assert not info.is_opus and info.codec == "mp3"


def test_missing_file_is_track_not_found(media: MediaServer, local: SourceChain) -> None:
    with pytest.raises(TrackNotFoundError):
        resolve_query(media.url_for("nope.webm"), local)


def test_default_settings_refuse_the_fixture_without_touching_the_server(media: MediaServer) -> None:
    # GIVEN default (deployed) settings WHEN the fixture URL is played THEN it is refused, nothing fetched
    with pytest.raises(UnsupportedUrlError):
        resolve_query(media.url_for("tone 440.webm"), SourceChain(SourceSettings(), MemoryRecords()))
    assert media.requests() == []
