"""A requester's quality (/preferences) picks the stream format: "high" the best Opus format a source
offers, "data-saver" the best at or under the cap. Real yt-dlp sorts and selects the formats."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yt_dlp

from timmybot.models import QueueEntry, Track
from timmybot.preferences import Preferences, Quality, stamp
from timmybot.sources import SourceSettings, build_ytdl_options
from timmybot.sources.chain import SourceChain
from timmybot.sources.ytdlp import YouTubeSource
from timmybot.sources.ytdlp.options import DATA_SAVER_ABR_KBPS
from timmybot.store.memory import MemoryStore

# What YouTube offers for one video, as yt-dlp's extractor lists them (audio-only formats).
FORMATS = [
    {"format_id": "251", "acodec": "opus", "abr": 160, "ext": "webm"},
    {"format_id": "249", "acodec": "opus", "abr": 50, "ext": "webm"},
    {"format_id": "250", "acodec": "opus", "abr": 70, "ext": "webm"},
    {"format_id": "140", "acodec": "mp4a.40.2", "abr": 129, "ext": "m4a"},
]
TRACK = Track("youtube", "dQw4w9WgXcQ", "Song", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", 212, None, "Artist")


def _info() -> dict[str, Any]:
    formats = [
        {**f, "vcodec": "none", "url": f"https://rr1.googlevideo.com/videoplayback?itag={f['format_id']}"}
        for f in FORMATS
    ]
    return {
        "id": TRACK.source_id,
        "title": TRACK.title,
        "formats": formats,
        "extractor": "youtube",
        "extractor_key": "Youtube",
        "webpage_url": TRACK.url,
    }


@pytest.mark.parametrize(("quality", "itag"), [("high", "251"), ("data-saver", "249")])
def test_the_quality_picks_the_format_real_ytdlp_selects(quality: str, itag: str) -> None:
    options = build_ytdl_options(SourceSettings(), purpose="stream", quality=quality)
    options.pop("proxy")  # nothing is fetched: yt-dlp only sorts and selects the listed formats

    with yt_dlp.YoutubeDL(options) as ydl:
        chosen = ydl.process_ie_result(_info(), download=False)

    assert chosen["format_id"] == itag
    if quality == "data-saver":
        assert chosen["abr"] <= DATA_SAVER_ABR_KBPS


class _SelectingYoutubeDL:
    """yt-dlp's own format selection over one recorded info dict (the network is what it replaces)."""

    def __init__(self) -> None:
        self.formats: list[str] = []

    def factory(self, options: dict[str, Any]) -> _SelectingYoutubeDL:
        self._options = {k: v for k, v in options.items() if k != "proxy"}
        return self

    def __enter__(self) -> _SelectingYoutubeDL:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def extract_info(self, url: str, download: bool = True) -> dict[str, Any]:
        self.formats.append(self._options["format"])
        with yt_dlp.YoutubeDL(self._options) as ydl:
            return dict(ydl.process_ie_result(_info(), download=False))


def test_the_chain_streams_each_track_at_its_requesters_quality() -> None:
    # GIVEN the YouTube source behind the chain
    ydl = _SelectingYoutubeDL()
    source = YouTubeSource(SourceSettings(), ydl_factory=ydl.factory)
    chain = SourceChain.over_store(SourceSettings(), MemoryStore(), sources=[source])

    # WHEN a track is streamed for a data-saver requester, then for a default one
    saver = chain.stream(TRACK, quality="data-saver")
    high = chain.stream(TRACK)

    # THEN each got its own format
    assert saver.stream_url.endswith("itag=249") and high.stream_url.endswith("itag=251")
    assert len(set(ydl.formats)) == 2


def test_the_requesters_preferences_are_stamped_on_their_entries() -> None:
    entry = QueueEntry("e1", TRACK, "42", 0.0)

    [saver] = stamp([entry], Preferences(quality=Quality.DATA_SAVER, notify=True))
    [plain] = stamp([entry], None)

    assert (saver.quality, saver.notify) == ("data-saver", True)
    assert QueueEntry.from_dict(saver.to_dict()) == saver
    # AND an entry without preferences carries no field older releases did not store
    stored = plain.to_dict()
    assert set(stored) <= {"entry_id", "track", "requester_id", "added_at", "start_ms"}
    assert set(stored["track"]) <= set(TRACK.to_dict()) and QueueEntry.from_dict(stored) == plain


def test_the_voice_task_resolves_each_entry_at_the_quality_stamped_on_it() -> None:
    # GIVEN the voice task's player over the YouTube source, and two entries of one track
    from voice_task.player import Player  # noqa: PLC0415 - discord.py only for this test
    from voice_task.states import PLAYBACK_MOVES, Machine, PlaybackState  # noqa: PLC0415

    ydl = _SelectingYoutubeDL()
    chain = SourceChain.over_store(
        SourceSettings(), MemoryStore(), sources=[YouTubeSource(SourceSettings(), ydl_factory=ydl.factory)]
    )
    player = Player(
        sources=chain,
        ffmpeg="ffmpeg",
        machine=Machine("playback", PlaybackState.IDLE, PLAYBACK_MOVES, strict=True),
        voice=lambda: None,
        on_event=lambda _event: None,
        on_player_end=lambda _token, _error: None,
    )
    saver = QueueEntry("e1", TRACK, "42", 0.0, quality="data-saver")
    plain = QueueEntry("e2", TRACK, "43", 0.0)

    # WHEN it resolves each before playing it
    async def resolve_both() -> tuple[str, str]:
        first = await player.resolve(saver, timeout_s=10)
        second = await player.resolve(plain, timeout_s=10)
        return first.stream_url, second.stream_url

    try:
        urls = asyncio.run(resolve_both())
    finally:
        player.stop()

    # THEN the data-saver requester's entry streams the capped format, the other the best
    assert urls[0].endswith("itag=249") and urls[1].endswith("itag=251")
