"""Spotify Web API metadata client (spotipy), for the worker only: Spotify gives metadata, never audio.

Every Spotify track becomes an *unresolved* ``Track`` with ``source="spotify"``: its title, first
artist, duration and ISRC. The voice task mirrors it to a playable source at play time
(``timmybot.sources.chain``), so resolving a 100-track playlist here costs a few page requests and
never one search per track.

Two kinds of token:

- the app's own (client-credentials grant, ``spotify_client_id`` + ``spotify_client_secret``) for
  public links pasted into /play; fetched once and kept until shortly before it expires;
- a user's (``LinkedAccounts.access_token(user, "spotify")``) for their playlists, saved tracks and
  recently played.

The API base (``spotify_api_url``) and the token URL are settings, so tests point both at loopback
fakes. spotipy logs request headers (bearer tokens) at DEBUG level: ``timmybot.redaction`` keeps those
records out of every handler. Tokens never appear in our own log lines or error messages.

Playlists: Spotify's 2026 development mode moved ``/playlists/{id}/tracks`` to ``/items`` and
renamed each item's ``track`` to ``item``; both shapes are read, and ``/tracks`` is tried when
``/items`` answers 404.

Links pasted into /play (``resolve_link``, and ``spotify.link`` share links) are read by
``timmybot.library.spotify_links`` through this client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from timmybot import redaction
from timmybot.errors import SourceError, TrackNotFoundError
from timmybot.library.paging import ListWalk
from timmybot.models import RemotePlaylist

if TYPE_CHECKING:
    from timmybot.models import Track
    from timmybot.sources.models import SourceSettings

_log = logging.getLogger(__name__)

PAGE_LIMIT = 50  # the largest page every endpoint we use accepts
TOKEN_MARGIN_S = 60.0  # an app token is renewed this long before it expires
TRACK_URL = "https://open.spotify.com/track/{id}"
PLAYLIST_URL = "https://open.spotify.com/playlist/{id}"
# Spotify-owned editorial playlists ("Today's Top Hits", "Discover Weekly"...) have ids starting so;
# since November 2024 the Web API answers 404 for them to apps created after the change.
EDITORIAL_PREFIX = "37i9"
EDITORIAL_REFUSED = (
    "That is one of Spotify's own editorial playlists, and Spotify doesn't let apps created since "
    "November 2024 read those. Copy its tracks into a playlist of your own, then share that one."
)


class SpotifyError(SourceError):
    """Spotify refused or failed; the sentence says what the user can do."""

    user_message = "Spotify didn't answer properly. Please try again in a moment."


class SpotifyNotConfiguredError(SpotifyError):
    user_message = "Spotify links aren't set up on this bot (its operator has not configured a Spotify app)."


class SpotifyRateLimitedError(SpotifyError):
    user_message = "Spotify is asking me to slow down. Please try again in a minute."


class SpotifyAuthError(SpotifyError):
    user_message = "Spotify did not accept my sign-in. If you linked Spotify, run `/link spotify` again."


# ---------------------------------------------------------------------- log hygiene
# ---------------------------------------------------------------------- app token (client credentials)
@dataclass
class _AppToken:
    value: str
    expires_at: float


_app_tokens: dict[tuple[str, str], _AppToken] = {}
_app_lock = threading.Lock()


def app_token(settings: SourceSettings, *, clock: Callable[[], float] = time.time) -> str:
    """The app's client-credentials token, fetched on first use and reused until near expiry."""
    if not settings.spotify_client_id or not settings.spotify_client_secret:
        raise SpotifyNotConfiguredError()
    key = (settings.spotify_token_url, settings.spotify_client_id)
    with _app_lock:
        cached = _app_tokens.get(key)
        if cached is not None and cached.expires_at - TOKEN_MARGIN_S > clock():
            return cached.value
        import requests  # noqa: PLC0415 - worker only

        from timmybot import netguard  # noqa: PLC0415

        try:
            response = netguard.guard_session().post(
                settings.spotify_token_url,
                data={"grant_type": "client_credentials"},
                auth=(settings.spotify_client_id, settings.spotify_client_secret),
                timeout=settings.socket_timeout_s,
            )
        except requests.RequestException as exc:
            _log.warning("Spotify token endpoint unreachable: %s", type(exc).__name__)
            raise SpotifyError() from None
        if response.status_code in (400, 401):
            _log.error("Spotify refused the app's client credentials (HTTP %s)", response.status_code)
            raise SpotifyNotConfiguredError(
                "Spotify refused this bot's app credentials, so Spotify links can't play right now."
            )
        if response.status_code != 200:
            _log.warning("Spotify token endpoint answered HTTP %s", response.status_code)
            raise SpotifyError()
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise SpotifyError()
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        _app_tokens[key] = _AppToken(token, clock() + lifetime)
        _log.info("fetched a Spotify app token (valid %.0f s)", lifetime)
        return token


def forget_app_tokens() -> None:
    """Drop cached app tokens (tests; a rotated client secret)."""
    with _app_lock:
        _app_tokens.clear()


# ---------------------------------------------------------------------- the client
class SpotifyClient:
    """Metadata calls over spotipy with one bearer token. ``session`` (a ``requests.Session``) is optional."""

    def __init__(self, token: str, *, api_url: str, timeout_s: float = 10.0, session: Any | None = None) -> None:
        import spotipy  # noqa: PLC0415 - never on the interactions fast path

        from timmybot import netguard  # noqa: PLC0415

        redaction.install()
        self._api_url = api_url.rstrip("/") + "/"
        self._sp: Any = spotipy.Spotify(
            auth=token,
            requests_session=netguard.guard_session(session),
            requests_timeout=timeout_s,
            retries=1,
            status_retries=1,
            backoff_factor=0.2,
        )
        self._sp.prefix = self._api_url

    @classmethod
    def for_app(cls, settings: SourceSettings) -> SpotifyClient:
        return cls(app_token(settings), api_url=settings.spotify_api_url, timeout_s=settings.socket_timeout_s)

    # -- public links ------------------------------------------------------------------------------
    def track(self, track_id: str) -> Track:
        data = self._call(lambda: self._sp.track(track_id), what="That Spotify track")
        track = track_from_spotify(data)
        if track is None:
            raise TrackNotFoundError("That Spotify track can't be played (it is a local file or unavailable).")
        return track

    # Every list below is walked within a ``ListWalk`` (``timmybot.library.paging``): without one, ``cap``
    # items and the default page cap.
    def album_tracks(self, album_id: str, cap: int, walk: ListWalk | None = None) -> list[Track]:
        walk = _walk(walk, cap)
        if not walk.may_fetch(f"albums/{album_id}"):
            return []
        album = self._call(lambda: self._sp.album(album_id), what="That Spotify album")
        images = album.get("images") if isinstance(album, dict) else None
        thumbnail = _image(images)
        page = album.get("tracks") if isinstance(album, dict) else None
        tracks: list[Track] = []
        for items in self._pages(page, what="That Spotify album", walk=walk):
            batch = [t for t in (track_from_spotify(raw, thumbnail=thumbnail) for raw in items) if t is not None]
            walk.keep(len(batch))
            tracks.extend(batch)
        return _nonempty(tracks, _no_playable("That Spotify album", walk))

    def playlist_pages(self, playlist_id: str, cap: int, walk: ListWalk | None = None) -> Iterator[list[Track]]:
        """A playlist's tracks page by page (for progress), within ``walk``."""
        walk = _walk(walk, cap)
        first = self._first_playlist_page(playlist_id, walk)
        for items in self._pages(first, what="That Spotify playlist", walk=walk):
            batch = [t for t in (track_from_spotify(_item_track(i)) for i in items) if t is not None]
            walk.keep(len(batch))
            if batch:
                yield batch

    def playlist_tracks(self, playlist_id: str, cap: int, walk: ListWalk | None = None) -> list[Track]:
        walk = _walk(walk, cap)
        tracks = [t for batch in self.playlist_pages(playlist_id, cap, walk) for t in batch]
        return _nonempty(tracks, _no_playable("That Spotify playlist", walk))

    # -- a user's library (user token) -------------------------------------------------------------
    def saved_tracks(self, cap: int, walk: ListWalk | None = None) -> list[Track]:
        walk = _walk(walk, cap)
        if not walk.may_fetch("me/tracks"):
            return []
        limit = max(1, min(PAGE_LIMIT, walk.item_cap))
        page = self._call(lambda: self._sp.current_user_saved_tracks(limit=limit), what="Your library")
        return self._collect(page, what="Your library", walk=walk)

    def recently_played(self, cap: int) -> list[Track]:
        page = self._call(
            lambda: self._sp.current_user_recently_played(limit=min(PAGE_LIMIT, cap)), what="Your listening history"
        )
        items = page.get("items") if isinstance(page, dict) else None
        tracks = [t for t in (track_from_spotify(_item_track(i)) for i in items or ()) if t is not None]
        return tracks[:cap]

    def playlists(self, cap: int, walk: ListWalk | None = None) -> list[RemotePlaylist]:
        walk = _walk(walk, cap)
        if not walk.may_fetch("me/playlists"):
            return []
        limit = max(1, min(PAGE_LIMIT, walk.item_cap))
        page = self._call(lambda: self._sp.current_user_playlists(limit=limit), what="Your playlists")
        found: list[RemotePlaylist] = []
        for items in self._pages(page, what="Your playlists", walk=walk):
            before = len(found)
            for raw in items:
                if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                    continue
                counts = raw.get("items") or raw.get("tracks")
                total = counts.get("total") if isinstance(counts, dict) else None
                found.append(
                    RemotePlaylist(
                        id=raw["id"],
                        name=str(raw.get("name") or "Untitled"),
                        total=total if isinstance(total, int) else None,
                    )
                )
            walk.keep(len(found) - before)
        return found

    # -- internals ---------------------------------------------------------------------------------
    def _first_playlist_page(self, playlist_id: str, walk: ListWalk) -> Any:
        from spotipy.exceptions import SpotifyException  # noqa: PLC0415

        if not walk.may_fetch(f"playlists/{playlist_id}/items"):
            return None
        try:
            return self._call(
                lambda: self._sp.playlist_items(playlist_id, limit=PAGE_LIMIT, additional_types=("track",)),
                what="That Spotify playlist",
                reraise=(SpotifyException,),
            )
        except SpotifyException as exc:
            if exc.http_status != 404:
                raise _mapped(exc, "That Spotify playlist") from None
        _log.info("playlist %s: /items answered 404, trying /tracks", playlist_id)
        if not walk.may_fetch(f"playlists/{playlist_id}/tracks"):
            return None
        try:
            return self._call(
                lambda: self._sp._get(f"playlists/{playlist_id}/tracks", limit=PAGE_LIMIT),  # the pre-2026 path
                what="That Spotify playlist",
                reraise=(SpotifyException,),
            )
        except SpotifyException as exc:
            if exc.http_status == 404 and playlist_id.startswith(EDITORIAL_PREFIX):
                _log.info("playlist %s: an editorial playlist, refused to this app", playlist_id)
                raise TrackNotFoundError(EDITORIAL_REFUSED) from None
            raise _mapped(exc, "That Spotify playlist") from None

    def _collect(self, page: Any, *, what: str, walk: ListWalk) -> list[Track]:
        tracks: list[Track] = []
        for items in self._pages(page, what=what, walk=walk):
            batch = [t for t in (track_from_spotify(_item_track(i)) for i in items) if t is not None]
            walk.keep(len(batch))
            tracks.extend(batch)
        return tracks

    def _pages(self, page: Any, *, what: str, walk: ListWalk) -> Iterator[list[Any]]:
        """The items of ``page`` and of each following page (``next``), only on the configured API host,
        as far as ``walk`` lets the walk go (its item cap, its page cap, no page twice)."""
        while isinstance(page, dict):
            walk.note_total(page.get("total"))
            walk.mark(page.get("href"))  # the page's own address: a next link back to it is a loop
            items = page.get("items")
            yield walk.admit(items if isinstance(items, list) else [])
            following = page.get("next")
            if not isinstance(following, str) or not following.startswith(self._api_url):
                return
            if not walk.may_fetch(following):
                _log.info("stopped paging %s: %s", what.lower(), walk.stopped)
                return
            page = self._call(_getter(self._sp, following), what=what)

    def _call(self, call: Callable[[], Any], *, what: str, reraise: tuple[type[Exception], ...] = ()) -> Any:
        import requests  # noqa: PLC0415
        from spotipy.exceptions import SpotifyException  # noqa: PLC0415

        try:
            return call()
        except reraise:
            raise
        except SpotifyException as exc:
            raise _mapped(exc, what) from None
        except requests.RequestException as exc:
            _log.warning("Spotify API unreachable: %s", type(exc).__name__)
            raise SpotifyError("I can't reach Spotify right now. Please try again in a moment.") from None


def _mapped(exc: Any, what: str) -> SourceError:
    status = getattr(exc, "http_status", None)
    _log.info("Spotify API answered HTTP %s for %s", status, what.lower())
    if status in {400, 404}:
        return TrackNotFoundError(f"{what} doesn't exist or isn't public.")
    if status == 401:
        return SpotifyAuthError()
    if status == 403:
        return SpotifyError(f"Spotify refused access: {what.lower()} may be private, or this app can't read it.")
    if status == 429:
        return SpotifyRateLimitedError()
    return SpotifyError()


def _getter(sp: Any, url: str) -> Callable[[], Any]:
    return lambda: sp._get(url)


def _walk(walk: ListWalk | None, cap: int) -> ListWalk:
    return walk if walk is not None else ListWalk(item_cap=cap)


def _no_playable(what: str, walk: ListWalk) -> str:
    if walk.stopped is not None and walk.seen:
        return f"{what} has no tracks I can play among the first {walk.seen:,} I read."
    return f"{what} has no playable tracks."


def _item_track(item: Any) -> Any:
    """A playlist/library/history item's track: ``item`` (2026 shape) or ``track`` (before)."""
    if isinstance(item, dict):
        inner = item.get("item", item.get("track"))
        if isinstance(inner, dict):
            return inner
    return None


def _image(images: Any) -> str | None:
    if isinstance(images, list):
        for image in images:
            if isinstance(image, dict) and isinstance(image.get("url"), str) and image["url"].startswith("https://"):
                return str(image["url"])
    return None


def _nonempty(tracks: list[Track], sentence: str) -> list[Track]:
    if not tracks:
        raise TrackNotFoundError(sentence)
    return tracks


def track_from_spotify(data: Any, *, thumbnail: str | None = None) -> Track | None:
    """An unresolved ``Track`` (source "spotify") from a Spotify track object; None for local files,
    episodes and anything without an id."""
    from timmybot.models import Track  # noqa: PLC0415 - plain data

    if not isinstance(data, Mapping):
        return None
    track_id = data.get("id")
    if not isinstance(track_id, str) or not track_id or data.get("is_local") or data.get("type") == "episode":
        return None
    artists = data.get("artists")
    artist = None
    if isinstance(artists, list) and artists and isinstance(artists[0], dict):
        artist = artists[0].get("name") if isinstance(artists[0].get("name"), str) else None
    duration_ms = data.get("duration_ms")
    external = data.get("external_ids")
    isrc = external.get("isrc") if isinstance(external, dict) and isinstance(external.get("isrc"), str) else None
    album = data.get("album")
    return Track(
        source="spotify",
        source_id=track_id,
        title=str(data.get("name") or f"Spotify track {track_id}"),
        url=TRACK_URL.format(id=track_id),
        duration_s=round(duration_ms / 1000) if isinstance(duration_ms, int) else None,
        thumbnail=_image(album.get("images")) if isinstance(album, dict) else thumbnail,
        artist=artist,
        isrc=isrc,
        # Spotify's metadata is the song's own: the name is the song, and lyrics look-ups use the album.
        song=str(data["name"]) if isinstance(data.get("name"), str) and data["name"] else None,
        album=str(album["name"]) if isinstance(album, dict) and isinstance(album.get("name"), str) else None,
    )
