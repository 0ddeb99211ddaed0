"""A loopback YouTube Data API v3 (what a linked user's token can list), and a loopback YouTube
"site" that also answers mixes.

``FakeYouTubeApi`` serves ``/youtube/v3/playlists?mine=true``, ``/playlistItems?playlistId=``,
``/videos?id=a,b``, ``/videos?myRating=like`` (``pageToken`` paging; ``page_size`` caps each page) and
``/channels?part=snippet&mine=true`` (the user's channel, or no items when ``channel_title`` is None),
for bearer tokens it knows, or any token ``accepts`` allows (served as ``default_user``: how the
account tests let tokens a fake Google issued in the test itself in); anything else gets the API's
401. ``channels_status`` makes channels.list fail with that HTTP status. ``loop_token`` makes every
page name its own page token as the next one (a broken or hostile server). It serves no search (the bot
must never spend 100 quota units on one). ``requests`` records (path, params) without tokens.

``loopback_youtube_mix`` is a ``source_chain`` factory (tests only, with ``allow_local_media``): the
"ytfake" loopback site of ``tests.support.sources`` that also answers ``mix`` — the catalog after the
seed, in order and wrapping round, as a YouTube mix lists videos related to its seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import LoopbackHttp, send_json
from tests.support.sources import LoopbackSite, _from_config
from timmybot.errors import TrackNotFoundError
from timmybot.models import Track
from timmybot.sources import SourceSettings


def video_id(n: int) -> str:
    """A well-formed YouTube video id (11 characters)."""
    return f"vid{n:08d}"


def video(vid: str, title: str, channel: str, duration_s: int) -> dict[str, Any]:
    minutes, seconds = divmod(duration_s, 60)
    return {
        "kind": "youtube#video",
        "id": vid,
        "snippet": {
            "title": title,
            "channelTitle": channel,
            "thumbnails": {"high": {"url": f"https://i.ytimg.com/vi/{vid}/hqdefault.jpg"}},
        },
        "contentDetails": {"duration": f"PT{minutes}M{seconds}S"},
    }


@dataclass
class YouTubeUser:
    playlists: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (id, title, video ids)
    liked: list[str] = field(default_factory=list)  # video ids
    channel_title: str | None = None  # None: this Google account has no YouTube channel


@dataclass
class FakeYouTubeApi:
    page_size: int = 50
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, YouTubeUser] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    accepts: Callable[[str], bool] | None = None
    default_user: YouTubeUser = field(default_factory=YouTubeUser)
    channels_status: int | None = None
    loop_token: bool = False

    def __post_init__(self) -> None:
        self._http: LoopbackHttp | None = None

    def add_videos(self, *items: dict[str, Any]) -> list[str]:
        for item in items:
            self.videos[item["id"]] = item
        return [item["id"] for item in items]

    def add_user(self, token: str, **data: Any) -> YouTubeUser:
        user = YouTubeUser(**data)
        self.users[token] = user
        return user

    @property
    def api_url(self) -> str:
        assert self._http is not None, "start the fake first"
        return f"{self._http.origin}/youtube/v3"

    def __enter__(self) -> FakeYouTubeApi:
        self._http = LoopbackHttp("fake-youtube", get=self._get).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.stop()

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path.removeprefix("/youtube/v3/")
        self.requests.append((path, query))
        auth = handler.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        user = self.users.get(token) if token else None
        if user is None and token and self.accepts is not None and self.accepts(token):
            user = self.default_user
        if user is None:
            return _error(handler, 401, "authError", "Request had invalid authentication credentials.")
        if path == "playlists" and query.get("mine") == "true":
            rows = [
                {"id": pid, "snippet": {"title": title}, "contentDetails": {"itemCount": len(ids)}}
                for pid, title, ids in user.playlists
            ]
            return send_json(handler, 200, self._page(rows, query))
        if path == "channels" and query.get("mine") == "true" and query.get("part") == "snippet":
            if self.channels_status is not None:
                return _error(handler, self.channels_status, "backendError", "Backend Error")
            items = [] if user.channel_title is None else [{"id": "UCfake", "snippet": {"title": user.channel_title}}]
            return send_json(handler, 200, {"kind": "youtube#channelListResponse", "items": items})
        if path == "playlistItems":
            found = next((ids for pid, _, ids in user.playlists if pid == query.get("playlistId")), None)
            if found is None:
                return _error(handler, 404, "playlistNotFound", "The playlist cannot be found.")
            rows = [{"contentDetails": {"videoId": vid}, "snippet": {"title": "?"}} for vid in found]
            return send_json(handler, 200, self._page(rows, query))
        if path == "videos" and query.get("myRating") == "like":
            return send_json(handler, 200, self._page([self.videos[v] for v in user.liked], query))
        if path == "videos" and "id" in query:
            ids = query["id"].split(",")
            return send_json(handler, 200, {"items": [self.videos[v] for v in ids if v in self.videos]})
        return _error(handler, 400, "badRequest", "Unsupported request.")

    def _page(self, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        offset = int(query.get("pageToken") or 0)
        size = min(int(query.get("maxResults", "5")), self.page_size)
        body: dict[str, Any] = {"items": rows[offset : offset + size], "pageInfo": {"totalResults": len(rows)}}
        if self.loop_token:
            body["nextPageToken"] = str(offset)
        elif offset + size < len(rows):
            body["nextPageToken"] = str(offset + size)
        return body


def _error(handler: BaseHTTPRequestHandler, status: int, reason: str, message: str) -> None:
    send_json(handler, status, {"error": {"code": status, "message": message, "errors": [{"reason": reason}]}})


# ---------------------------------------------------------------------- a loopback site with mixes
@dataclass
class MixingLoopbackSite(LoopbackSite):
    """A loopback site that also answers ``mix``: the catalog after the seed, wrapping round."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.can_mix = True

    def mix(self, seed: Track, *, limit: int = 10) -> list[Track]:
        self._called("mix", seed.source_id)
        names = [entry.file for entry in self.catalog]
        if seed.source_id not in names:
            raise TrackNotFoundError("YouTube had no mix for that track.")
        start = names.index(seed.source_id)
        rotated = self.catalog[start + 1 :] + self.catalog[:start]
        return [self._track(entry) for entry in rotated][:limit]


def mixing(site: LoopbackSite) -> MixingLoopbackSite:
    return MixingLoopbackSite(**{f.name: getattr(site, f.name) for f in fields(site)})


def loopback_youtube_mix(settings: SourceSettings) -> MixingLoopbackSite:
    """Factory for ``source_chain``: the "ytfake" site of ``TIMMYBOT_LOOPBACK_SITES``, with mixes."""
    return mixing(_from_config("ytfake", settings))
