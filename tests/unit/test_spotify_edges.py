"""Spotify at the edges (issue 15): bounded paging, editorial playlists, spotify.link share links.

Against the loopback Spotify API fake, a loopback route server standing in for spotify.link, and a
canary that must never be contacted; requests are counted at the servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_spotify_api import FakeSpotifyApi, spotify_id, spotify_track
from tests.support.netguard_servers import CanaryServer, RouteServer
from timmybot.errors import TrackNotFoundError, UnsupportedUrlError
from timmybot.library.paging import ListWalk, StopReason
from timmybot.library.spotify import SpotifyClient, forget_app_tokens
from timmybot.library.spotify_links import follow_share_link, resolve_link
from timmybot.sources import (
    MemoryRecords,
    QueryKind,
    SourceChain,
    SourceSettings,
    classify_query,
    resolve_query,
)

TRACKS = [spotify_track(spotify_id(n), f"Song {n}", "Artist", 180 + n) for n in range(1, 6)]
PLAYLIST = spotify_id(100)
EDITORIAL = "37i9dQZF1DXcBWIGoYBM5M"
USER_TOKEN = "user-token-abcdefghijklmnop"


def _episode(n: int) -> dict[str, Any]:
    return dict(spotify_track(spotify_id(10_000 + n), f"Episode {n}", "Host", 1800), type="episode")


@pytest.fixture
def spotify() -> Iterator[FakeSpotifyApi]:
    forget_app_tokens()
    with FakeSpotifyApi(page_size=50) as fake:
        fake.add_playlist(PLAYLIST, "Five", TRACKS)
        yield fake
    forget_app_tokens()


def _settings(fake: FakeSpotifyApi, **overrides: Any) -> SourceSettings:
    values: dict[str, Any] = {
        "spotify_api_url": fake.api_url,
        "spotify_token_url": fake.token_url,
        "spotify_client_id": fake.client_id,
        "spotify_client_secret": fake.client_secret,
        "socket_timeout_s": 5.0,
    }
    values.update(overrides)
    return SourceSettings(**values)


def _page_calls(fake: FakeSpotifyApi, prefix: str) -> int:
    return sum(1 for _, path, _ in fake.requests if path.startswith(prefix))


# ---------------------------------------------------------------------- bounded paging
def test_a_10000_item_playlist_costs_at_most_the_page_cap_in_api_calls(spotify: FakeSpotifyApi) -> None:
    # GIVEN a playlist of one track and 10,000 episodes (skipped: Spotify gives no audio for them)
    spotify.add_playlist(spotify_id(101), "Podcasts", [TRACKS[0], *(_episode(n) for n in range(10_000))])
    settings = _settings(spotify, list_page_cap=10)
    walk = ListWalk(item_cap=settings.playlist_cap, page_cap=settings.list_page_cap)
    # WHEN it is resolved
    tracks = resolve_link("playlist", spotify_id(101), settings, walk)
    # THEN the skipped episodes counted toward the cap: two pages of 50 were read, not 201
    assert [t.title for t in tracks] == ["Song 1"]
    calls = _page_calls(spotify, f"/v1/playlists/{spotify_id(101)}")
    assert 1 <= calls <= settings.list_page_cap
    assert calls == 2
    # AND the reply can say what was left out and why
    assert walk.left_out() == (
        "Added 1 of 10,001: I add at most 100 from one list; 99 can't be played here "
        "(episodes, local files or unavailable)."
    )


def test_the_page_cap_bounds_a_server_that_sends_tiny_pages(spotify: FakeSpotifyApi) -> None:
    # GIVEN pages of 2 items and a cap of 5 pages
    spotify.page_size = 2
    spotify.add_playlist(spotify_id(102), "Long", [spotify_track(spotify_id(n), f"T{n}", "A", 100) for n in range(200)])
    settings = _settings(spotify, list_page_cap=5)
    walk = ListWalk(item_cap=100, page_cap=5)
    # WHEN it is resolved THEN exactly 5 pages were requested and 10 tracks kept
    assert len(resolve_link("playlist", spotify_id(102), settings, walk)) == 10
    assert _page_calls(spotify, f"/v1/playlists/{spotify_id(102)}") == 5
    assert walk.stopped is StopReason.PAGE_CAP
    assert walk.left_out() == "Added 10 of 200: I read at most 5 pages of one list."


def test_the_default_walk_of_a_link_takes_the_page_cap_from_the_settings(spotify: FakeSpotifyApi) -> None:
    spotify.page_size = 2
    spotify.add_playlist(spotify_id(103), "Long", [spotify_track(spotify_id(n), f"T{n}", "A", 100) for n in range(50)])
    assert len(resolve_link("playlist", spotify_id(103), _settings(spotify, list_page_cap=3))) == 6
    assert _page_calls(spotify, f"/v1/playlists/{spotify_id(103)}") == 3


def test_a_self_referencing_next_ends_the_walk(spotify: FakeSpotifyApi) -> None:
    # GIVEN a server whose every page names itself as the next one
    spotify.page_size = 2
    spotify.loop_next = True
    walk = ListWalk(item_cap=100)
    # WHEN the playlist is resolved THEN its page is read once and the walk ends
    assert [t.title for t in resolve_link("playlist", PLAYLIST, _settings(spotify), walk)] == ["Song 1", "Song 2"]
    assert _page_calls(spotify, f"/v1/playlists/{PLAYLIST}") == 1
    assert walk.stopped is StopReason.LOOP


def test_a_self_referencing_next_ends_a_library_walk_too(spotify: FakeSpotifyApi) -> None:
    spotify.page_size = 2
    spotify.loop_next = True
    spotify.add_user(USER_TOKEN, saved=TRACKS, playlists=[PLAYLIST])
    client = SpotifyClient(USER_TOKEN, api_url=spotify.api_url)
    assert len(client.saved_tracks(50)) == 2
    assert len(client.playlists(50)) == 1
    assert _page_calls(spotify, "/v1/me/tracks") == 1
    assert _page_calls(spotify, "/v1/me/playlists") == 1


def test_an_album_walk_stops_when_the_queue_has_no_more_room(spotify: FakeSpotifyApi) -> None:
    # GIVEN an album of 5 and a queue with room for 3
    spotify.page_size = 2
    spotify.add_album(spotify_id(200), "Album", TRACKS)
    walk = ListWalk.for_queue(playlist_cap=100, free=3)
    # WHEN it is resolved THEN 3 are taken, the walk stopped for the queue, and the reply says so
    assert len(resolve_link("album", spotify_id(200), _settings(spotify), walk)) == 3
    assert _page_calls(spotify, f"/v1/albums/{spotify_id(200)}") == 2
    assert walk.left_out() == "Added 3 of 5: the queue is full."


def test_a_playlist_of_only_episodes_says_how_many_were_read(spotify: FakeSpotifyApi) -> None:
    spotify.add_playlist(spotify_id(104), "Talk", [_episode(n) for n in range(300)])
    with pytest.raises(TrackNotFoundError, match="among the first 100 I read"):
        resolve_link("playlist", spotify_id(104), _settings(spotify))
    assert _page_calls(spotify, f"/v1/playlists/{spotify_id(104)}") == 2


# ---------------------------------------------------------------------- editorial playlists
def test_an_editorial_playlist_gets_the_november_2024_sentence(spotify: FakeSpotifyApi) -> None:
    # GIVEN a Spotify-owned playlist id (37i9…), which the API answers 404 for to new apps
    # WHEN it is resolved THEN the user reads why, and what to do instead
    with pytest.raises(TrackNotFoundError) as caught:
        resolve_link("playlist", EDITORIAL, _settings(spotify))
    assert "editorial playlists" in caught.value.user_message
    assert "November 2024" in caught.value.user_message
    assert "Copy its tracks into a playlist of your own" in caught.value.user_message


def test_other_missing_playlists_still_say_they_dont_exist(spotify: FakeSpotifyApi) -> None:
    with pytest.raises(TrackNotFoundError, match="doesn't exist or isn't public"):
        resolve_link("playlist", spotify_id(999), _settings(spotify))


# ---------------------------------------------------------------------- spotify.link share links
@pytest.fixture
def share() -> Iterator[RouteServer]:
    with RouteServer() as server:
        yield server


@pytest.fixture
def canary() -> Iterator[CanaryServer]:
    with CanaryServer() as server:
        yield server


def _share_settings(spotify: FakeSpotifyApi, share: RouteServer) -> SourceSettings:
    return _settings(spotify, spotify_link_url=share.url(""))


def test_a_share_link_is_classified_offline_and_followed_by_the_worker(
    spotify: FakeSpotifyApi, share: RouteServer
) -> None:
    # GIVEN a share code that redirects to a playlist, as spotify.link does
    share.redirect("/AbCd1234", f"https://open.spotify.com/playlist/{PLAYLIST}?si=abc&_branch_match_id=1", 307)
    settings = _share_settings(spotify, share)
    # WHEN the fast path classifies it THEN nothing is requested
    query = classify_query("https://spotify.link/AbCd1234", settings)
    assert (query.kind, query.source_id) == (QueryKind.SPOTIFY_LINK, "AbCd1234")
    assert share.paths == []
    # WHEN the worker resolves it THEN the link is followed once and the playlist's tracks come back
    tracks = resolve_query("https://spotify.link/AbCd1234", SourceChain(settings, MemoryRecords()))
    assert [t.title for t in tracks] == [f"Song {n}" for n in range(1, 6)]
    assert share.paths == ["/AbCd1234"]


def test_a_share_link_may_hop_within_the_share_host_then_to_a_track(
    spotify: FakeSpotifyApi, share: RouteServer
) -> None:
    share.redirect("/Hop1abcd", "/Hop2abcd", 302)
    share.redirect("/Hop2abcd", f"https://open.spotify.com/intl-pt-BR/track/{spotify_id(3)}", 301)
    assert follow_share_link("Hop1abcd", _share_settings(spotify, share)) == ("track", spotify_id(3))
    assert [t.title for t in resolve_link("link", "Hop1abcd", _share_settings(spotify, share))] == ["Song 3"]


def test_a_share_link_that_points_at_a_loopback_canary_is_refused_unrequested(
    spotify: FakeSpotifyApi, share: RouteServer, canary: CanaryServer
) -> None:
    share.redirect("/Evil1234", canary.url("/latest/meta-data/"), 302)
    share.redirect("/Evil5678", canary.url("/latest/meta-data/", scheme="https", host="localhost"), 302)
    for code in ("Evil1234", "Evil5678"):
        with pytest.raises(UnsupportedUrlError):
            follow_share_link(code, _share_settings(spotify, share))
    assert canary.connections == 0


@pytest.mark.parametrize(
    ("location", "match"),
    [
        ("https://www.youtube.com/redirect?q=https%3A%2F%2Fevil.com", "redirect"),
        ("https://open.spotify.com/artist/0gxyHStUsqpMadRV0Di1Qt", "track, album and playlist"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "Spotify track, album or playlist"),
        ("https://evil.com/track/x", "not supported"),
        (f"https://open.spotify.com/track/{spotify_id(1)}%0d%0aX:1", "control characters"),
    ],
)
def test_a_share_link_target_is_policy_checked(
    spotify: FakeSpotifyApi, share: RouteServer, location: str, match: str
) -> None:
    share.redirect("/Bad12345", location, 302)
    with pytest.raises(UnsupportedUrlError, match=match):
        follow_share_link("Bad12345", _share_settings(spotify, share))


def test_a_share_link_that_redirects_forever_stops_after_a_few_hops(
    spotify: FakeSpotifyApi, share: RouteServer
) -> None:
    share.redirect("/Loop1234", "/Loop1234", 302)
    with pytest.raises(UnsupportedUrlError, match="too many times"):
        follow_share_link("Loop1234", _share_settings(spotify, share))
    assert share.paths == ["/Loop1234"] * 4


def test_a_share_page_without_a_redirect_is_read_for_its_link(spotify: FakeSpotifyApi, share: RouteServer) -> None:
    share.text(
        "/Html1234",
        f'<html><head><meta property="og:url" content="https://open.spotify.com/album/{spotify_id(7)}"></head></html>',
        "text/html",
    )
    assert follow_share_link("Html1234", _share_settings(spotify, share)) == ("album", spotify_id(7))


def test_an_unknown_or_empty_share_link_has_a_sentence(spotify: FakeSpotifyApi, share: RouteServer) -> None:
    share.text("/Empty123", "<html>nothing here</html>", "text/html")
    with pytest.raises(TrackNotFoundError, match="doesn't exist"):
        follow_share_link("Gone1234", _share_settings(spotify, share))
    with pytest.raises(TrackNotFoundError, match="leads nowhere"):
        follow_share_link("Empty123", _share_settings(spotify, share))
