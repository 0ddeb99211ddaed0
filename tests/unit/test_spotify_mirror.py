"""Spotify tracks at play time: mirrored through the chain (ISRC first, then title + artist ± 3 s),
the match cached under the Spotify id, a track with no match named in its error; mixes; custom ids
of the personal commands refuse forgeries."""

from __future__ import annotations

import pytest

from tests.support.clock import FakeClock
from tests.support.fake_youtube_api import mixing
from tests.support.sources import CatalogEntry, LoopbackSite, timmybot_logs  # noqa: F401 - fixture
from timmybot.discord import custom_ids
from timmybot.discord.custom_ids import HistoryReplayId, InvalidCustomIdError, MyPlaylistsPageId, MyPlaylistsPickId
from timmybot.errors import TrackNotFoundError
from timmybot.models import Track
from timmybot.sources import MemoryRecords, SourceChain, SourceSettings
from timmybot.sources.mirroring import MirrorNotFoundError, mirror_pk
from timmybot.store.keys import MIRROR_SK

SETTINGS = SourceSettings(allow_local_media=True)
SONG = Track("spotify", "4uLU6hMCjMI75M1A2tKUQC", "Never Gonna Give You Up", "https://open.spotify.com/track/x",
             213, None, "Rick Astley", isrc="GBARL9300135")  # fmt: skip


def site(name: str, port: int, *entries: CatalogEntry, isrc_lookup: bool = False) -> LoopbackSite:
    return LoopbackSite(name, f"http://127.0.0.1:{port}", list(entries), isrc_lookup=isrc_lookup)


def chain(*sources: LoopbackSite, records: MemoryRecords | None = None) -> SourceChain:
    return SourceChain(SETTINGS, sources=sources, records=records or MemoryRecords(), clock=FakeClock())


def test_a_spotify_track_streams_from_its_isrc_match_and_the_match_is_cached() -> None:
    # GIVEN a site that finds the recording by ISRC under another title
    remaster = CatalogEntry("m.webm", "Never Gonna Give You Up (Remastered 2022)", "R. Astley", 214, SONG.isrc)
    music = site("ytmfake", 1001, remaster, isrc_lookup=True)
    records = MemoryRecords()
    # WHEN the voice task asks for the Spotify track's stream
    info = chain(music, records=records).stream(SONG)
    # THEN the ISRC match plays, and is remembered under the Spotify id
    assert (info.stream_url, info.source, info.fallback_from) == ("http://127.0.0.1:1001/m.webm", "ytmfake", None)
    assert music.calls == ["isrc", "stream"]
    cached = records.get_record(mirror_pk("spotify", SONG.source_id), MIRROR_SK)
    assert cached is not None and cached["source_id"] == "m.webm"
    # AND the next play of that track needs no lookup at all
    music.calls.clear()
    chain(music, records=records).stream(SONG)
    assert music.calls == ["stream"]


def test_without_isrc_the_title_and_artist_must_match_within_three_seconds() -> None:
    far = site("ytfake", 1002, CatalogEntry("far.webm", "Never Gonna Give You Up", "Rick Astley", 230))
    near = site("scfake", 1003, CatalogEntry("near.webm", "Never Gonna Give You Up", "Rick Astley", 215))
    info = chain(far, near).stream(Track(**{**SONG.to_dict(), "isrc": None}))
    assert info.stream_url.endswith("/near.webm")


def test_a_spotify_track_nobody_has_is_named_in_the_error() -> None:
    empty = site("ytfake", 1004, CatalogEntry("other.webm", "Other", "Someone", 100))
    with pytest.raises(MirrorNotFoundError) as caught:
        chain(empty).stream(SONG)
    assert caught.value.user_message == (
        "I couldn't find “Never Gonna Give You Up” by Rick Astley on any source I can play from."
    )
    assert isinstance(caught.value, TrackNotFoundError)


def test_a_mix_lists_the_tracks_after_the_seed_and_mirrors_foreign_seeds_first() -> None:
    entries = [CatalogEntry(f"{n}.webm", f"Song {n}", "Band", 100 + n) for n in range(4)]
    youtube = mixing(site("ytfake", 1005, *entries))
    own = Track("ytfake", "1.webm", "Song 1", "http://127.0.0.1:1005/1.webm", 101, None, "Band")
    assert [t.source_id for t in chain(youtube).mix(own, limit=2)] == ["2.webm", "3.webm"]
    foreign = Track(
        "spotify", "4uLU6hMCjMI75M1A2tKUQC", "Song 2", "https://open.spotify.com/track/x", 102, None, "Band"
    )
    assert [t.source_id for t in chain(youtube).mix(foreign, limit=2)] == ["3.webm", "0.webm"]


def test_without_a_mixing_source_there_is_no_mix() -> None:
    with pytest.raises(TrackNotFoundError):
        chain(site("scfake", 1006, CatalogEntry("a.webm", "A", "B", 100))).mix(SONG)


# ---------------------------------------------------------------------- custom ids
OWNER = "111111111111111111"


def test_personal_custom_ids_round_trip_and_stay_short() -> None:
    for custom_id in (MyPlaylistsPageId(3), MyPlaylistsPickId(), HistoryReplayId(OWNER, 49, "0123abcd")):
        raw = custom_ids.build(custom_id)
        assert raw.startswith("v1:") and len(raw) <= 100
        assert custom_ids.parse(raw) == custom_id
    value = custom_ids.playlist_choice("youtube", "PL" + "x" * 32)
    assert custom_ids.parse_playlist_choice(value) == custom_ids.PlaylistChoice("youtube", "PL" + "x" * 32)
    assert custom_ids.parse_playlist_choice("v1:sp:" + "a" * 22).platform == "spotify"


@pytest.mark.parametrize(
    "forged",
    [
        "v1:mypl:page:0",
        "v1:mypl:page:99999",
        "v1:mypl:page:-1",
        "v1:mypl:pick:extra",
        "v2:mypl:pick",
        f"v1:hist:{OWNER}:50:0123abcd",
        f"v1:hist:{OWNER}:01:0123abcd",
        f"v1:hist:{OWNER}:1:0123ABCD",
        f"v1:hist:{OWNER}:1:0123abc",
        "v1:hist:12345:1:0123abcd",
        f"v1:hist:{OWNER}:1",
        f"v1:hist:{OWNER}:1:0123abcd:x",
        "v1:hist:1111111111111111１1:1:0123abcd",
    ],
)
def test_forged_personal_custom_ids_are_refused(forged: str) -> None:
    with pytest.raises(InvalidCustomIdError):
        custom_ids.parse(forged)


@pytest.mark.parametrize(
    "forged",
    ["v1:sp:short", "v1:sp:" + "a" * 23, "v1:yt:a", "v1:yt:" + "x" * 65, "v1:yt:has space", "v1:xx:abc",
     "sp:" + "a" * 22, "v1:yt:PL/../x", "", None, 7],
)  # fmt: skip
def test_forged_playlist_choices_are_refused(forged: object) -> None:
    with pytest.raises(InvalidCustomIdError):
        custom_ids.parse_playlist_choice(forged)


def test_building_an_out_of_range_id_is_a_bug() -> None:
    with pytest.raises(ValueError):
        custom_ids.build(HistoryReplayId("not-a-user", 1, "0123abcd"))
    with pytest.raises(ValueError):
        custom_ids.playlist_choice("spotify", "../etc")
