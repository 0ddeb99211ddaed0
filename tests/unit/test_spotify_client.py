"""The Spotify metadata client against the loopback fake API: links, pages, caps, libraries, errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.support.fake_spotify_api import APP_TOKEN, FakeSpotifyApi, spotify_id, spotify_track
from tests.support.sources import timmybot_logs  # noqa: F401 - fixture
from timmybot.errors import TrackNotFoundError
from timmybot.library.spotify import (
    SpotifyAuthError,
    SpotifyClient,
    SpotifyNotConfiguredError,
    app_token,
    forget_app_tokens,
)
from timmybot.library.spotify_links import resolve_link
from timmybot.sources import SourceSettings

TRACKS = [spotify_track(spotify_id(n), f"Song {n}", "Artist", 180 + n, isrc=f"QZTST26{n:05d}") for n in range(1, 6)]
USER_TOKEN = "user-token-abcdefghijklmnop"


@pytest.fixture
def spotify() -> Iterator[FakeSpotifyApi]:
    forget_app_tokens()
    with FakeSpotifyApi(page_size=2) as fake:
        fake.add_playlist(spotify_id(100), "Five", TRACKS)
        yield fake
    forget_app_tokens()


def _settings(fake: FakeSpotifyApi, **overrides: object) -> SourceSettings:
    values: dict[str, object] = {
        "spotify_api_url": fake.api_url,
        "spotify_token_url": fake.token_url,
        "spotify_client_id": fake.client_id,
        "spotify_client_secret": fake.client_secret,
        "socket_timeout_s": 5.0,
    }
    values.update(overrides)
    return SourceSettings(**values)  # type: ignore[arg-type]


def test_a_playlist_link_gives_unresolved_spotify_tracks_with_isrc_over_pages(spotify: FakeSpotifyApi) -> None:
    tracks = resolve_link("playlist", spotify_id(100), _settings(spotify))
    assert [t.title for t in tracks] == [f"Song {n}" for n in range(1, 6)]
    first = tracks[0]
    assert (first.source, first.source_id, first.artist, first.duration_s, first.isrc) == (
        "spotify", spotify_id(1), "Artist", 181, "QZTST2600001",
    )  # fmt: skip
    assert first.url == f"https://open.spotify.com/track/{spotify_id(1)}"
    pages = [r for r in spotify.requests if r[1].startswith(f"/v1/playlists/{spotify_id(100)}")]
    assert len(pages) == 3 and all(kind == "app" for _, _, kind in pages)


def test_playlists_are_capped_by_playlist_cap(spotify: FakeSpotifyApi) -> None:
    assert len(resolve_link("playlist", spotify_id(100), _settings(spotify, playlist_cap=3))) == 3


def test_the_old_tracks_endpoint_serves_when_items_answers_404(spotify: FakeSpotifyApi) -> None:
    spotify.items_endpoint = False
    tracks = resolve_link("playlist", spotify_id(100), _settings(spotify))
    assert len(tracks) == 5
    assert any(path.endswith("/tracks") for _, path, _ in spotify.requests)


def test_local_files_and_episodes_are_left_out(spotify: FakeSpotifyApi) -> None:
    local = dict(spotify_track(spotify_id(7), "Local", "Me", 100), is_local=True)
    episode = dict(spotify_track(spotify_id(8), "Pod", "Host", 100), type="episode")
    spotify.add_playlist(spotify_id(101), "Mixed", [local, episode, TRACKS[0]])
    assert [t.title for t in resolve_link("playlist", spotify_id(101), _settings(spotify))] == ["Song 1"]


def test_an_album_link_lists_its_tracks(spotify: FakeSpotifyApi) -> None:
    spotify.add_album(spotify_id(200), "Album", TRACKS[:3])
    assert [t.title for t in resolve_link("album", spotify_id(200), _settings(spotify))] == [
        "Song 1", "Song 2", "Song 3",
    ]  # fmt: skip


def test_unknown_links_and_missing_credentials_have_sentences(spotify: FakeSpotifyApi) -> None:
    with pytest.raises(TrackNotFoundError, match="doesn't exist or isn't public"):
        resolve_link("track", spotify_id(999), _settings(spotify))
    with pytest.raises(SpotifyNotConfiguredError):
        resolve_link("track", spotify_id(1), _settings(spotify, spotify_client_secret=""))


def test_the_app_token_is_fetched_once(spotify: FakeSpotifyApi) -> None:
    settings = _settings(spotify)
    assert app_token(settings) == app_token(settings) == APP_TOKEN
    assert [r for r in spotify.requests if r[1] == "/api/token"] == [("POST", "/api/token", "basic")]


def test_a_users_library_needs_their_token(spotify: FakeSpotifyApi) -> None:
    spotify.add_user(USER_TOKEN, saved=TRACKS[:3], recent=TRACKS[3:], playlists=[spotify_id(100)])
    client = SpotifyClient(USER_TOKEN, api_url=spotify.api_url)
    assert [t.title for t in client.saved_tracks(50)] == ["Song 1", "Song 2", "Song 3"]
    assert [t.title for t in client.recently_played(50)] == ["Song 4", "Song 5"]
    [playlist] = client.playlists(50)
    assert (playlist.id, playlist.name, playlist.total) == (spotify_id(100), "Five", 5)
    with pytest.raises(SpotifyAuthError, match="/link spotify"):
        SpotifyClient("revoked-token", api_url=spotify.api_url).saved_tracks(50)


def test_no_token_reaches_the_logs(spotify: FakeSpotifyApi, caplog: pytest.LogCaptureFixture) -> None:
    spotify.add_user(USER_TOKEN, saved=TRACKS)
    with caplog.at_level(logging.DEBUG):
        resolve_link("playlist", spotify_id(100), _settings(spotify))
        SpotifyClient(USER_TOKEN, api_url=spotify.api_url).saved_tracks(50)
    assert caplog.records, "expected some log records"
    for secret in (USER_TOKEN, APP_TOKEN, spotify.client_secret):
        assert secret not in caplog.text
