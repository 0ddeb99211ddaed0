"""The source chain with loopback sites that fail the way YouTube does: fallbacks and breakers."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.bootstrap import bootstrap
from tests.support.clock import FakeClock
from tests.support.sources import CatalogEntry, LoopbackSite, timmybot_logs  # noqa: F401 - fixture
from timmybot.config import Settings
from timmybot.errors import BlockedSourceError, SourceError, SourceRestingError, TrackNotFoundError
from timmybot.library.spotify import SpotifyNotConfiguredError
from timmybot.models import Track
from timmybot.sources import (
    BreakerState,
    CircuitBreaker,
    MemoryRecords,
    Query,
    QueryKind,
    SourceChain,
    SourceSettings,
    SpreadRule,
    resolve_query,
)
from timmybot.sources.breaker import breaker_pk
from timmybot.store.keys import BREAKER_SK
from timmybot.store.memory import MemoryStore

pytestmark = pytest.mark.usefixtures("timmybot_logs")

SETTINGS = SourceSettings(allow_local_media=True, breaker_threshold=5, breaker_cooldown_s=300)
SONG = CatalogEntry("song.webm", "Never Gonna Give You Up", "Rick Astley", 213, "GBARL9300135")


def site(name: str, port: int, *entries: CatalogEntry, **kwargs: object) -> LoopbackSite:
    return LoopbackSite(name, f"http://127.0.0.1:{port}", list(entries), **kwargs)  # type: ignore[arg-type]


def chain(
    *sources: LoopbackSite, clock: FakeClock | None = None, cache: dict[tuple[str, str], Track] | None = None
) -> SourceChain:
    known = cache or {}
    return SourceChain(
        SETTINGS,
        sources=sources,
        records=MemoryRecords(),
        clock=clock or FakeClock(),
        track_cache=lambda source, source_id: known.get((source, source_id)),
    )


# -- fallbacks ---------------------------------------------------------------------------------------


def test_search_survives_a_bot_check_through_the_next_source(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN YouTube answering every request with a bot check, and SoundCloud having the song
    youtube = site("ytfake", 1001, SONG, fault="bot_check")
    soundcloud = site("scfake", 1002, SONG)
    # WHEN the user searches
    with caplog.at_level("INFO"):
        [track] = chain(youtube, soundcloud).resolve(Query(QueryKind.SEARCH, "rick astley never gonna"))
    # THEN SoundCloud's track plays, and it says it stood in for YouTube
    assert (track.source, track.fallback_from) == ("scfake", "ytfake")
    # AND the operator got the hint and the metric
    assert "YouTube is asking for a sign-in" in caplog.text
    assert "metric=SourceFailures value=1 source=ytfake reason=bot_check" in caplog.text


def test_a_track_from_the_first_source_carries_no_fallback() -> None:
    [track] = chain(site("ytfake", 1001, SONG), site("scfake", 1002, SONG)).resolve(
        Query(QueryKind.SEARCH, "never gonna")
    )
    assert (track.source, track.fallback_from) == ("ytfake", None)


def test_stream_mirrors_a_refused_track_by_title_artist_and_duration() -> None:
    # GIVEN a queued YouTube track whose stream is refused (bot check at play time), and SoundCloud
    # holding a 3-minute edit and the 213-second original
    youtube = site("ytfake", 1001, SONG, fault="bot_check", fail_on=frozenset({"stream"}))
    edit = CatalogEntry("edit.webm", "Never Gonna Give You Up", "Rick Astley", 180)
    original = CatalogEntry("orig.webm", "Never Gonna Give You Up", "Rick Astley", 215)
    soundcloud = site("scfake", 1002, edit, original)
    the_chain = chain(youtube, soundcloud)
    [queued] = the_chain.resolve(Query(QueryKind.LOCAL, "http://127.0.0.1:1001/song.webm"))
    # WHEN the voice task asks for its stream
    info = the_chain.stream(queued)
    # THEN the stand-in within ± 3 s plays, and the stream says which source played for which
    assert info.stream_url == "http://127.0.0.1:1002/orig.webm"
    assert (info.source, info.fallback_from) == ("scfake", "ytfake")


def test_stream_without_any_stand_in_keeps_the_blocked_sentence() -> None:
    youtube = site("ytfake", 1001, SONG, fault="bot_check", fail_on=frozenset({"stream"}))
    [queued] = chain(youtube).resolve(Query(QueryKind.LOCAL, "http://127.0.0.1:1001/song.webm"))
    with pytest.raises(BlockedSourceError):
        chain(youtube, site("scfake", 1002)).stream(queued)


def test_a_blocked_link_without_known_metadata_gives_the_blocked_sentence() -> None:
    youtube = site("ytfake", 1001, SONG, fault="bot_check")
    soundcloud = site("scfake", 1002, SONG)
    with pytest.raises(BlockedSourceError) as caught:
        chain(youtube, soundcloud).resolve(Query(QueryKind.LOCAL, "http://127.0.0.1:1001/song.webm", "song.webm"))
    assert "sign in" in caught.value.user_message
    assert soundcloud.calls == []


def test_a_blocked_link_with_cached_metadata_is_mirrored() -> None:
    # GIVEN the track cache knows the link's title, artist and duration
    known = Track("ytfake", "song.webm", SONG.title, "http://127.0.0.1:1001/song.webm", 213, None, SONG.artist)
    youtube = site("ytfake", 1001, SONG, fault="bot_check")
    soundcloud = site("scfake", 1002, SONG)
    # WHEN the link is resolved while YouTube refuses
    [track] = chain(youtube, soundcloud, cache={("ytfake", "song.webm"): known}).resolve(
        Query(QueryKind.LOCAL, "http://127.0.0.1:1001/song.webm", "song.webm")
    )
    # THEN SoundCloud's copy comes back, marked as a stand-in
    assert (track.source, track.fallback_from) == ("scfake", "ytfake")


def test_mirror_asks_for_the_isrc_first_where_a_source_can() -> None:
    # GIVEN a music site that finds recordings by ISRC (the title there differs)
    music = site(
        "ytmfake",
        1003,
        CatalogEntry("m.webm", "Never Gonna Give You Up (Remastered 2022)", "R. Astley", 214, SONG.isrc),
        isrc_lookup=True,
    )
    # WHEN mirroring a Spotify-like track
    track = chain(music).mirror(SONG.title, SONG.artist, 213, SONG.isrc)
    # THEN the ISRC match wins without a text search
    assert track.source_id == "m.webm"
    assert music.calls == ["isrc"]


def test_mirror_refuses_candidates_outside_the_duration_tolerance() -> None:
    soundcloud = site("scfake", 1002, CatalogEntry("live.webm", SONG.title, SONG.artist, 260))
    with pytest.raises(TrackNotFoundError):
        chain(soundcloud).mirror(SONG.title, SONG.artist, 213)


# -- breakers ----------------------------------------------------------------------------------------


def test_five_failures_open_the_breaker_then_the_source_is_skipped_uncalled_until_a_trial_closes_it() -> None:
    # GIVEN YouTube failing five times in a row with a bot check, SoundCloud healthy
    clock = FakeClock()
    youtube = site("ytfake", 1001, SONG, fault="bot_check", fail_times=5)
    soundcloud = site("scfake", 1002, SONG)
    the_chain = chain(youtube, soundcloud, clock=clock)
    search = Query(QueryKind.SEARCH, "never gonna")
    for _ in range(5):
        the_chain.resolve(search)
    assert the_chain.breaker.snapshot("ytfake").state is BreakerState.OPEN
    assert len(youtube.calls) == 5
    # WHEN more searches come during the cool-down
    for _ in range(3):
        [track] = the_chain.resolve(search)
        assert track.source == "scfake"
    # THEN YouTube was not called at all
    assert len(youtube.calls) == 5
    # WHEN the cool-down is over (YouTube has recovered)
    clock.advance(301)
    [track] = the_chain.resolve(search)
    # THEN one half-open trial went to YouTube, succeeded, and closed the breaker
    assert track.source == "ytfake" and len(youtube.calls) == 6
    assert the_chain.breaker.snapshot("ytfake").state is BreakerState.CLOSED


def test_a_failed_trial_reopens_the_breaker_for_another_cool_down() -> None:
    clock = FakeClock()
    youtube = site("ytfake", 1001, SONG, fault="timeout")
    the_chain = chain(youtube, site("scfake", 1002, SONG), clock=clock)
    search = Query(QueryKind.SEARCH, "never gonna")
    for _ in range(5):
        the_chain.resolve(search)
    clock.advance(301)
    the_chain.resolve(search)  # the trial: fails again
    assert len(youtube.calls) == 6
    assert the_chain.breaker.snapshot("ytfake").state is BreakerState.OPEN
    clock.advance(200)
    the_chain.resolve(search)
    assert len(youtube.calls) == 6


def test_failures_of_different_reasons_do_not_add_up() -> None:
    youtube = site("ytfake", 1001, SONG, fault="bot_check")
    the_chain = chain(youtube, site("scfake", 1002, SONG))
    search = Query(QueryKind.SEARCH, "never gonna")
    for _ in range(4):
        the_chain.resolve(search)
    youtube.fault = "timeout"
    the_chain.resolve(search)
    snapshot = the_chain.breaker.snapshot("ytfake")
    assert snapshot.state is BreakerState.CLOSED and (snapshot.reason, snapshot.failures) == ("timeout", 1)


def test_not_found_never_opens_the_breaker() -> None:
    youtube = site("ytfake", 1001)  # empty catalog: every search is "not found"
    the_chain = chain(youtube, site("scfake", 1002, SONG))
    for _ in range(10):
        the_chain.resolve(Query(QueryKind.SEARCH, "never gonna"))
    assert len(youtube.calls) == 10
    assert the_chain.breaker.snapshot("ytfake").state is BreakerState.CLOSED


def test_a_link_whose_source_rests_says_so() -> None:
    youtube = site("ytfake", 1001, SONG, fault="bot_check")
    the_chain = chain(youtube)
    link = Query(QueryKind.LOCAL, "http://127.0.0.1:1001/song.webm")
    for _ in range(5):
        with pytest.raises(BlockedSourceError):
            the_chain.resolve(link)
    with pytest.raises(SourceRestingError, match="rest"):
        the_chain.resolve(link)
    assert len(youtube.calls) == 5


# -- fair breakers (issue 15) -----------------------------------------------------------------------


def test_twenty_failing_links_from_one_guild_leave_youtube_open_to_every_guild() -> None:
    # GIVEN YouTube failing every link with an unknown extractor error (yt-dlp's own exception)
    youtube = site("ytfake", 1001, SONG, fault="broken", fail_times=20)
    the_chain = chain(youtube)
    # WHEN one guild sends twenty different failing links
    for n in range(20):
        with pytest.raises(SourceError):
            the_chain.resolve(Query(QueryKind.LOCAL, f"http://127.0.0.1:1001/upload{n}.webm"), guild_id="111")
    # THEN the breaker is still closed, and another guild's link still reaches YouTube and plays
    assert the_chain.breaker.snapshot("ytfake").state is BreakerState.CLOSED
    [track] = the_chain.resolve(Query(QueryKind.LOCAL, "http://127.0.0.1:1001/song.webm"), guild_id="222")
    assert track.source == "ytfake" and len(youtube.calls) == 21


def test_the_same_error_on_tracks_from_three_guilds_rests_youtube() -> None:
    # GIVEN YouTube's stream failing with one unknown error for every track, SoundCloud healthy
    clock = FakeClock()
    youtube = site("ytfake", 1001, SONG, fault="broken", fail_on=frozenset({"stream"}))
    the_chain = chain(youtube, site("scfake", 1002, SONG), clock=clock)
    queued = [
        Track("ytfake", f"t{n}", SONG.title, f"http://127.0.0.1:1001/t{n}.webm", 213, None, SONG.artist)
        for n in range(3)
    ]
    # WHEN three guilds' voice tasks each ask for a different track's stream, a minute apart
    for guild, track in zip(("111", "222", "333"), queued, strict=True):
        info = the_chain.stream(track, guild_id=guild)
        assert (info.source, info.fallback_from) == ("scfake", "ytfake")  # each one still plays
        clock.advance(60)
    # THEN the breaker is open, and the next stream skips YouTube without calling it
    assert the_chain.breaker.snapshot("ytfake").state is BreakerState.OPEN
    calls = len(youtube.calls)
    assert the_chain.stream(queued[0], guild_id="444").source == "scfake"
    assert len(youtube.calls) == calls


def test_the_same_error_spread_over_more_than_the_window_leaves_youtube_open() -> None:
    clock = FakeClock()
    youtube = site("ytfake", 1001, SONG, fault="broken")
    the_chain = chain(youtube, clock=clock)
    for n, guild in enumerate(("111", "222", "333")):
        with pytest.raises(SourceError):
            the_chain.resolve(Query(QueryKind.LOCAL, f"http://127.0.0.1:1001/t{n}.webm"), guild_id=guild)
        clock.advance(200)  # the first failure is out of the 300 s window before the third comes
    assert the_chain.breaker.snapshot("ytfake").state is BreakerState.CLOSED


def test_bot_checks_from_one_guild_still_rest_youtube_as_before() -> None:
    youtube = site("ytfake", 1001, SONG, fault="bot_check")
    the_chain = chain(youtube, site("scfake", 1002, SONG))
    for n in range(5):
        with pytest.raises(BlockedSourceError):
            the_chain.resolve(Query(QueryKind.LOCAL, f"http://127.0.0.1:1001/t{n}.webm"), guild_id="111")
    snapshot = the_chain.breaker.snapshot("ytfake")
    assert (snapshot.state, snapshot.reason) == (BreakerState.OPEN, "bot_check")


def test_the_spread_rule_comes_from_the_settings() -> None:
    settings = SourceSettings(
        allow_local_media=True, breaker_spread_tracks=2, breaker_spread_guilds=1, breaker_spread_window_s=60
    )
    the_chain = SourceChain(settings, sources=[site("ytfake", 1001, fault="broken")], records=MemoryRecords())
    assert the_chain.breaker.spread == SpreadRule(tracks=2, guilds=1, window_s=60)
    for n in range(2):
        with pytest.raises(SourceError):
            the_chain.resolve(Query(QueryKind.LOCAL, f"http://127.0.0.1:1001/t{n}.webm"), guild_id="111")
    assert the_chain.breaker.snapshot("ytfake").state is BreakerState.OPEN


# -- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tests.support.sources:loopback_youtube", "local"])
def test_default_settings_refuse_test_only_sources(name: str) -> None:
    with pytest.raises(ValueError, match="allow_local_media"):
        SourceSettings(source_chain=("youtube", name))


def test_unknown_source_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        SourceSettings(source_chain=("youtube", "vimeo"))


def test_default_chain_is_youtube_then_youtube_music_then_soundcloud() -> None:
    names = [source.name for source in SourceChain(SourceSettings(), MemoryRecords()).sources]
    assert names == ["youtube", "ytmusic", "soundcloud"]


def test_spotify_links_without_an_operator_app_say_so_through_the_entry_point() -> None:
    with pytest.raises(SpotifyNotConfiguredError):
        resolve_query(
            "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC", SourceChain(SourceSettings(), MemoryRecords())
        )


# -- /search's results ---------------------------------------------------------------------------------


def test_search_results_come_from_the_first_source_that_finds_any_with_its_fallback_named() -> None:
    other = CatalogEntry("live.webm", "Never Gonna Give You Up (Live)", "Rick Astley", 260)
    youtube = site("ytfake", 1001, SONG, other, fault="bot_check")
    soundcloud = site("scfake", 1002, SONG, other)
    found = chain(youtube, soundcloud).search_results("never gonna", limit=10)
    assert [(t.source_id, t.source, t.fallback_from) for t in found] == [
        ("song.webm", "scfake", "ytfake"),
        ("live.webm", "scfake", "ytfake"),
    ]
    assert chain(site("ytfake", 1001, SONG, other)).search_results("never gonna", limit=1)[0].source_id == "song.webm"


def test_search_results_from_one_named_source_or_a_sentence() -> None:
    youtube, soundcloud = site("ytfake", 1001, SONG), site("scfake", 1002, SONG)
    [track] = chain(youtube, soundcloud).search_results("never gonna", only="scfake")
    assert (track.source, track.fallback_from) == ("scfake", None)
    assert youtube.calls == []
    with pytest.raises(TrackNotFoundError, match="isn't one of the sources I search here"):
        chain(youtube).search_results("never gonna", only="soundcloud")
    with pytest.raises(TrackNotFoundError):
        chain(youtube, soundcloud).search_results("nothing like it")


# -- wiring: the chain over the process's one store ---------------------------------------------------


def test_a_chain_over_the_store_keeps_its_breakers_there_and_mirrors_from_its_track_cache() -> None:
    # GIVEN the process's store, whose track cache knows a link's title, artist and duration
    store = MemoryStore(clock=FakeClock())
    store.put_cached_track(
        Track("ytfake", "song.webm", SONG.title, "http://127.0.0.1:1001/song.webm", 213, None, SONG.artist)
    )
    youtube = site("ytfake", 1001, SONG, fault="bot_check")
    the_chain = SourceChain.over_store(SETTINGS, store, sources=[youtube, site("scfake", 1002, SONG)])
    # WHEN the link is resolved while YouTube answers with a bot check
    [track] = the_chain.resolve(Query(QueryKind.LOCAL, "http://127.0.0.1:1001/song.webm", "song.webm"))
    # THEN the store's cached metadata found SoundCloud's copy, marked as a stand-in
    assert (track.source, track.fallback_from) == ("scfake", "ytfake")
    # AND the bot check was counted in the store every process reads, not in a store of the chain's own
    assert store.get_record(breaker_pk("ytfake"), BREAKER_SK) is not None
    assert CircuitBreaker(store).snapshot("ytfake").failures == 1


def test_the_api_process_builds_one_chain_over_its_one_store_on_first_use(tmp_path: Path) -> None:
    # GIVEN the api's services over a store
    store = MemoryStore(clock=FakeClock())
    services = bootstrap(Settings(data_dir=str(tmp_path)), store=store, in_lambda=False)
    # WHEN the worker's chain is asked for twice and its breaker counts a failure
    chain_of_the_worker = services.sources
    assert services.sources is chain_of_the_worker
    chain_of_the_worker.breaker.record_failure("youtube", "bot_check")
    # THEN the failure is in the api's store
    assert CircuitBreaker(store).snapshot("youtube").failures == 1
