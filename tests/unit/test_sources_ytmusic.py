"""YouTube Music as a source: its search, and the ISRC look-up that mirrors Spotify tracks, whose hits
are checked against title, artist and duration (an ISRC search can answer another song).

The answers are in yt-dlp's real shape: built with its YouTube Music search extractor's own helpers
(``playlist_result`` of ``url_result`` entries, as ``_music_reponsive_list_entry`` makes them: an
id, a title and a music.youtube.com link, no duration, no artist) and post-processed by a real
``YoutubeDL`` with our options, as ``extract_info`` would. Only the network is replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yt_dlp
from yt_dlp.extractor.youtube import YoutubeIE, YoutubeMusicSearchURLIE

from timmybot.errors import TrackNotFoundError
from timmybot.models import Track
from timmybot.sources import SourceSettings
from timmybot.sources.chain import SourceChain
from timmybot.sources.ytdlp import YouTubeMusicSource
from timmybot.store.memory import MemoryStore

SETTINGS = SourceSettings()
ISRC = "GBARL9300135"


@dataclass(frozen=True)
class Song:
    video_id: str
    title: str
    artist: str
    duration_s: int


RIGHT = Song("dQw4w9WgXcQ", "Never Gonna Give You Up", "Rick Astley", 213)
LONG = Song("lOnGvErSiOn", "Never Gonna Give You Up (Extended Mix)", "Rick Astley", 340)
WRONG = Song("wR0ngS0ng01", "Together Forever", "Rick Astley", 214)
OTHER = Song("0therArt1st", "Never Gonna Give You Up", "A Cover Band", 212)


@dataclass
class MusicWorld:
    """What YouTube Music would answer: the songs listed for each search, and each song's page."""

    listings: Mapping[str, list[Song]]
    urls: list[str] = field(default_factory=list)

    def factory(self, options: dict[str, Any]) -> _Answering:
        return _Answering(self, {key: value for key, value in options.items() if key != "proxy"})


@dataclass
class _Answering:
    world: MusicWorld
    options: dict[str, Any]

    def __enter__(self) -> _Answering:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def extract_info(self, url: str, download: bool = True) -> dict[str, Any]:
        assert download is False
        self.world.urls.append(url)
        parts = urlsplit(url)
        assert parts.hostname == "music.youtube.com"
        if parts.path == "/search":
            [query] = parse_qs(parts.query)["q"]
            section = parts.fragment
            title = f"{query} - {section}"
            entries = [
                YoutubeMusicSearchURLIE.url_result(
                    f"https://music.youtube.com/watch?v={song.video_id}",
                    ie=YoutubeIE.ie_key(),
                    video_id=song.video_id,
                    title=song.title,
                )
                for song in self.world.listings.get(query, [])
            ]
            raw = YoutubeMusicSearchURLIE.playlist_result(entries, title, title)
            raw.update(extractor="youtube:music:search_url", extractor_key="YoutubeMusicSearchURL", webpage_url=url)
        else:
            [video_id] = parse_qs(parts.query)["v"]
            song = next(s for listed in self.world.listings.values() for s in listed if s.video_id == video_id)
            raw = {
                "id": song.video_id,
                "title": song.title,
                "track": song.title,
                "artists": [song.artist],
                "channel": f"{song.artist} - Topic",
                "duration": song.duration_s,
                "formats": [
                    {
                        "format_id": "251",
                        "acodec": "opus",
                        "vcodec": "none",
                        "abr": 160,
                        "ext": "webm",
                        "url": f"https://rr1.googlevideo.com/videoplayback?id={song.video_id}&itag=251",
                    }
                ],
                "extractor": "youtube",
                "extractor_key": "Youtube",
                "webpage_url": f"https://www.youtube.com/watch?v={song.video_id}",
            }
        with yt_dlp.YoutubeDL(self.options) as ydl:
            return dict(ydl.process_ie_result(raw, download=False))


def _spotify(song: Song = RIGHT) -> Track:
    return Track("spotify", "4uLU6hMCjMI75M1A2tKUQC", song.title, "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC",
                 song.duration_s, None, song.artist, isrc=ISRC)  # fmt: skip


def test_search_lists_songs_named_and_linked_as_youtube_music() -> None:
    world = MusicWorld({"rick astley never gonna": [RIGHT, LONG]})
    source = YouTubeMusicSource(SETTINGS, ydl_factory=world.factory)

    tracks = source.search("rick astley never gonna", limit=2)

    assert world.urls == ["https://music.youtube.com/search?q=rick+astley+never+gonna#songs"]
    assert [(t.source, t.source_id, t.title) for t in tracks] == [
        ("ytmusic", RIGHT.video_id, RIGHT.title),
        ("ytmusic", LONG.video_id, LONG.title),
    ]
    assert tracks[0].url == f"https://music.youtube.com/watch?v={RIGHT.video_id}"


def test_an_isrc_hit_is_read_in_full_and_mirrors_the_spotify_track() -> None:
    # GIVEN YouTube Music listing the recording for its ISRC
    world = MusicWorld({ISRC: [RIGHT]})
    chain = SourceChain.over_store(
        SETTINGS, MemoryStore(), sources=[YouTubeMusicSource(SETTINGS, ydl_factory=world.factory)]
    )

    # WHEN the chain mirrors the Spotify track
    match = chain.mirror(RIGHT.title, RIGHT.artist, RIGHT.duration_s, ISRC)

    # THEN the ISRC search found it, its page gave the duration and artist the check needs
    assert (match.source, match.source_id, match.duration_s, match.artist) == (
        "ytmusic", RIGHT.video_id, RIGHT.duration_s, RIGHT.artist)  # fmt: skip
    assert world.urls == [
        f"https://music.youtube.com/search?q={ISRC}#songs",
        f"https://music.youtube.com/watch?v={RIGHT.video_id}",
    ]


@pytest.mark.parametrize("wrong", [LONG, WRONG, OTHER], ids=["duration-off", "another-song", "another-artist"])
def test_an_isrc_hit_that_is_not_the_recording_is_refused_and_the_next_candidate_used(wrong: Song) -> None:
    # GIVEN an ISRC search whose first hit is not the recording (too long, another title or artist)
    world = MusicWorld({ISRC: [wrong, RIGHT]})
    chain = SourceChain.over_store(
        SETTINGS, MemoryStore(), sources=[YouTubeMusicSource(SETTINGS, ydl_factory=world.factory)]
    )

    match = chain.mirror(RIGHT.title, RIGHT.artist, RIGHT.duration_s, ISRC)

    assert match.source_id == RIGHT.video_id


def test_an_isrc_search_of_wrong_songs_only_is_no_match() -> None:
    world = MusicWorld({ISRC: [WRONG, LONG]})
    chain = SourceChain.over_store(
        SETTINGS, MemoryStore(), sources=[YouTubeMusicSource(SETTINGS, ydl_factory=world.factory)]
    )

    with pytest.raises(TrackNotFoundError):
        chain.mirror(RIGHT.title, RIGHT.artist, RIGHT.duration_s, ISRC)
    # AND after the ISRC hits were refused, the text search was tried too (it lists nothing)
    assert world.urls[-1] == "https://music.youtube.com/search?q=Rick+Astley+Never+Gonna+Give+You+Up#songs"


def test_a_spotify_track_streams_from_its_youtube_music_mirror_at_play_time() -> None:
    # GIVEN an ISRC search whose first hit is another song
    world = MusicWorld({ISRC: [WRONG, RIGHT]})
    chain = SourceChain.over_store(
        SETTINGS, MemoryStore(), sources=[YouTubeMusicSource(SETTINGS, ydl_factory=world.factory)]
    )

    # WHEN the voice task asks for the Spotify track's stream
    stream = chain.stream(_spotify())

    # THEN it plays the right song's audio from YouTube Music; the wrong hit was read once, and refused
    assert stream.source == "ytmusic"
    assert stream.stream_url == f"https://rr1.googlevideo.com/videoplayback?id={RIGHT.video_id}&itag=251"
    assert world.urls.count(f"https://music.youtube.com/watch?v={WRONG.video_id}") == 1
