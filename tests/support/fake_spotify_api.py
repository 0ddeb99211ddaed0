"""A loopback Spotify Web API (metadata only, like the real one) that honours bearer tokens.

    with FakeSpotifyApi() as spotify:
        spotify.add_playlist("sp...22", "Road trip", [spotify_track(...), ...])
        spotify.add_user("user-token", saved=[...], recent=[...], playlists=[...])
        settings: spotify_api_url=spotify.api_url, spotify_token_url=spotify.token_url,
                  spotify_client_id=spotify.client_id, spotify_client_secret=spotify.client_secret

- ``POST /api/token``: the client-credentials grant (HTTP Basic client auth) → the app token.
- ``GET /v1/tracks/{id}``, ``/v1/albums/{id}``, ``/v1/playlists/{id}/items`` (2026 shape: each item
  has ``item``) and ``/v1/playlists/{id}/tracks`` (older shape: ``track``), with ``offset``/``limit``
  paging and absolute ``next`` links; ``items_endpoint=False`` makes ``/items`` answer 404.
- ``GET /v1/me/tracks``, ``/v1/me/player/recently-played``, ``/v1/me/playlists``: a user token only.

Any call without a known bearer token gets 401, as Spotify answers. ``page_size`` caps every page so
tests see paging with small playlists; ``loop_next`` makes every page's ``next`` link point at that
same page (a broken or hostile server). ``requests`` records (method, path, token kind) — never tokens.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import LoopbackHttp, send_json

APP_TOKEN = "fake-spotify-app-token-0123456789"


def spotify_id(n: int) -> str:
    """A well-formed Spotify id (22 base62 characters)."""
    return f"sp{n:020d}"


def spotify_track(
    track_id: str, name: str, artist: str, duration_s: float, *, isrc: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": track_id,
        "type": "track",
        "name": name,
        "artists": [{"name": artist}],
        "duration_ms": int(duration_s * 1000),
        "album": {"images": [{"url": f"https://i.scdn.co/image/{track_id}"}]},
        "is_local": False,
    }
    if isrc:
        data["external_ids"] = {"isrc": isrc}
    return data


@dataclass
class SpotifyUser:
    saved: list[dict[str, Any]] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)
    playlists: list[str] = field(default_factory=list)  # ids of playlists in FakeSpotifyApi.playlists


@dataclass
class FakeSpotifyApi:
    client_id: str = "fake-spotify-client"
    client_secret: str = "fake-spotify-secret-value"
    page_size: int = 50
    items_endpoint: bool = True
    loop_next: bool = False
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)
    albums: dict[str, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)
    playlists: dict[str, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)
    users: dict[str, SpotifyUser] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._http: LoopbackHttp | None = None

    # -- set-up ------------------------------------------------------------------------------------
    def add_track(self, track: dict[str, Any]) -> None:
        self.tracks[track["id"]] = track

    def add_album(self, album_id: str, name: str, tracks: list[dict[str, Any]]) -> None:
        self.albums[album_id] = (name, tracks)
        for track in tracks:
            self.add_track(track)

    def add_playlist(self, playlist_id: str, name: str, tracks: list[dict[str, Any]]) -> None:
        self.playlists[playlist_id] = (name, tracks)
        for track in tracks:
            self.add_track(track)

    def add_user(self, token: str, **data: Any) -> SpotifyUser:
        user = SpotifyUser(**data)
        self.users[token] = user
        return user

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._http is not None, "start the fake first"
        return self._http.origin

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/api/token"

    def __enter__(self) -> FakeSpotifyApi:
        self._http = LoopbackHttp("fake-spotify", get=self._get, post=self._post).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.stop()

    # -- handlers ----------------------------------------------------------------------------------
    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = parse_qs(handler.rfile.read(length).decode())
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if urlsplit(handler.path).path != "/api/token":
            return send_json(handler, 404, {"error": "not found"})
        self.requests.append(("POST", "/api/token", "basic"))
        if handler.headers.get("Authorization") != f"Basic {expected}":
            return send_json(handler, 401, {"error": "invalid_client"})
        if form.get("grant_type") != ["client_credentials"]:
            return send_json(handler, 400, {"error": "unsupported_grant_type"})
        return send_json(handler, 200, {"access_token": APP_TOKEN, "token_type": "Bearer", "expires_in": 3600})

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        auth = handler.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        user = self.users.get(token)
        kind = "app" if token == APP_TOKEN else "user" if user is not None else "none"
        self.requests.append(("GET", parts.path, kind))
        if kind == "none":
            return send_json(handler, 401, {"error": {"status": 401, "message": "Invalid access token"}})
        segments = parts.path.strip("/").split("/")
        if segments[:1] != ["v1"]:
            return _not_found(handler)
        route = segments[1:]
        base = f"{self.api_url}/{'/'.join(route)}"
        match route:
            case ["tracks", track_id] if track_id in self.tracks:
                return send_json(handler, 200, self.tracks[track_id])
            case ["albums", album_id] if album_id in self.albums:
                name, tracks = self.albums[album_id]
                simplified = [{k: v for k, v in t.items() if k not in ("album", "external_ids")} for t in tracks]
                page = self._page(simplified, {"limit": "50", "offset": "0"}, f"{base}/tracks", wrap=None)
                return send_json(handler, 200, {"id": album_id, "name": name, "images": [], "tracks": page})
            case ["albums", album_id, "tracks"] if album_id in self.albums:
                simplified = [{k: v for k, v in t.items() if k not in ("album", "external_ids")}
                              for t in self.albums[album_id][1]]  # fmt: skip
                return send_json(handler, 200, self._page(simplified, query, base, wrap=None))
            case ["playlists", playlist_id, "items"] if playlist_id in self.playlists and self.items_endpoint:
                return send_json(handler, 200, self._page(self.playlists[playlist_id][1], query, base, wrap="item"))
            case ["playlists", playlist_id, "tracks"] if playlist_id in self.playlists:
                return send_json(handler, 200, self._page(self.playlists[playlist_id][1], query, base, wrap="track"))
            case ["me", *_] if user is None:
                return send_json(handler, 401, {"error": {"status": 401, "message": "This request needs a user token"}})
            case ["me", "tracks"] if user is not None:
                return send_json(handler, 200, self._page(user.saved, query, base, wrap="track"))
            case ["me", "player", "recently-played"] if user is not None:
                items = [{"track": t, "played_at": "2026-11-01T10:00:00Z"} for t in user.recent]
                limit = int(query.get("limit", "20"))
                return send_json(handler, 200, {"items": items[:limit], "next": None})
            case ["me", "playlists"] if user is not None:
                listed = [
                    {"id": pid, "name": self.playlists[pid][0], "items": {"total": len(self.playlists[pid][1])}}
                    for pid in user.playlists
                ]
                return send_json(handler, 200, self._page(listed, query, base, wrap=None))
        return _not_found(handler)

    def _page(
        self, rows: list[dict[str, Any]], query: dict[str, str], base: str, *, wrap: str | None
    ) -> dict[str, Any]:
        offset = int(query.get("offset", "0"))
        limit = min(int(query.get("limit", "20")), self.page_size)
        chunk = rows[offset : offset + limit]
        items = [{wrap: row, "added_at": "2026-01-01T00:00:00Z"} if wrap else row for row in chunk]
        following = offset + limit
        href = f"{base}?offset={offset}&limit={limit}"
        if self.loop_next:
            return {"href": href, "items": items, "total": len(rows), "limit": limit, "offset": offset, "next": href}
        return {
            "href": href,
            "items": items,
            "total": len(rows),
            "limit": limit,
            "offset": offset,
            "next": f"{base}?offset={following}&limit={limit}" if following < len(rows) else None,
        }


def _not_found(handler: BaseHTTPRequestHandler) -> None:
    send_json(handler, 404, {"error": {"status": 404, "message": "Resource not found"}})
