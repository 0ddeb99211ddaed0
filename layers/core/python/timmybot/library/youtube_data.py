"""YouTube Data API v3 client for a linked user's own data (worker only): playlists and liked videos.

What the API allows (FACTS.md): ``playlists.list?mine=true``, ``playlistItems.list``,
``videos.list?myRating=like`` and ``channels.list?mine=true`` (the linked account's channel name,
asked once after /link youtube; 1 quota unit per page each); watch history is not available, and a
search costs 100 units, so this client never searches. Audio still comes from the source chain
(yt-dlp) at play time; the user's token is used for listing only, never for playback.

The base URL is a setting (``youtube_api_url``) so tests point it at a loopback fake. Tokens go in
the ``Authorization`` header only and are never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from timmybot.errors import SourceError, TrackNotFoundError
from timmybot.library.paging import ListWalk
from timmybot.models import RemotePlaylist

if TYPE_CHECKING:
    from timmybot.models import Track

_log = logging.getLogger(__name__)

PAGE_LIMIT = 50  # maxResults of every list call
WATCH_URL = "https://www.youtube.com/watch?v={id}"
_DURATION_RE = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")
_VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
_UNPLAYABLE_TITLES = frozenset({"private video", "deleted video"})


class YouTubeDataError(SourceError):
    user_message = "YouTube didn't answer properly. Please try again in a moment."


class YouTubeAuthError(YouTubeDataError):
    user_message = "YouTube did not accept your linked account. Run `/link youtube` again."


class YouTubeQuotaError(YouTubeDataError):
    user_message = "This bot has used up today's YouTube API allowance. Please try again tomorrow."


class YouTubeDataClient:
    """One user's token against the Data API. ``session`` is a ``requests.Session`` (optional)."""

    def __init__(self, token: str, *, api_url: str, timeout_s: float = 10.0, session: Any | None = None) -> None:
        from timmybot import netguard  # noqa: PLC0415

        self._token = token
        self._base = api_url.rstrip("/")
        self._timeout_s = timeout_s
        self._session: Any = netguard.guard_session(session)

    # Every list below is walked within a ``ListWalk`` (``timmybot.library.paging``): without one, ``cap``
    # items and the default page cap. A playlist page costs two calls (playlistItems, then videos).
    def playlists(self, cap: int, walk: ListWalk | None = None) -> list[RemotePlaylist]:
        walk = _walk(walk, cap)
        found: list[RemotePlaylist] = []
        for items in self._pages(
            "playlists", {"part": "snippet,contentDetails", "mine": "true"}, what="Your playlists", walk=walk
        ):
            before = len(found)
            for raw in items:
                playlist_id = raw.get("id")
                if not isinstance(playlist_id, str):
                    continue
                snippet = _dict(raw.get("snippet"))
                count = _dict(raw.get("contentDetails")).get("itemCount")
                found.append(
                    RemotePlaylist(
                        id=playlist_id,
                        name=str(snippet.get("title") or "Untitled"),
                        total=count if isinstance(count, int) else None,
                    )
                )
            walk.keep(len(found) - before)
        return found

    def playlist_pages(self, playlist_id: str, cap: int, walk: ListWalk | None = None) -> Iterator[list[Track]]:
        """A playlist's videos page by page (with durations from one ``videos.list`` per page)."""
        walk = _walk(walk, cap)
        params = {"part": "snippet,contentDetails", "playlistId": playlist_id}
        for items in self._pages("playlistItems", params, what="That YouTube playlist", walk=walk):
            ids: list[str] = []
            for raw in items:
                video_id = _dict(raw.get("contentDetails")).get("videoId") or _dict(
                    _dict(raw.get("snippet")).get("resourceId")
                ).get("videoId")
                if isinstance(video_id, str) and _VIDEO_ID_RE.match(video_id):
                    ids.append(video_id)
            batch = self._videos(ids)
            walk.keep(len(batch))
            if batch:
                yield batch

    def liked(self, cap: int, walk: ListWalk | None = None) -> list[Track]:
        walk = _walk(walk, cap)
        tracks: list[Track] = []
        params = {"part": "snippet,contentDetails", "myRating": "like"}
        for items in self._pages("videos", params, what="Your liked videos", walk=walk):
            batch = [t for t in (track_from_video(raw) for raw in items) if t is not None]
            walk.keep(len(batch))
            tracks.extend(batch)
        return tracks

    def own_channel_title(self) -> str | None:
        """The title of the token's own YouTube channel; None if that Google account has none."""
        body = self._get("channels", {"part": "snippet", "mine": "true"}, what="Your YouTube channel")
        for raw in _list(body.get("items")):
            title = _dict(_dict(raw).get("snippet")).get("title")
            if isinstance(title, str) and title.strip():
                return title
        return None

    # -- internals ---------------------------------------------------------------------------------
    def _videos(self, ids: list[str]) -> list[Track]:
        if not ids:
            return []
        body = self._get("videos", {"part": "snippet,contentDetails", "id": ",".join(ids)}, what="Those videos")
        by_id = {
            track.source_id: track
            for track in (track_from_video(raw) for raw in _list(body.get("items")))
            if track is not None
        }
        return [by_id[video_id] for video_id in ids if video_id in by_id]

    def _pages(
        self, path: str, params: Mapping[str, str], *, what: str, walk: ListWalk
    ) -> Iterator[list[dict[str, Any]]]:
        """The items of each page (``nextPageToken``) as far as ``walk`` lets the walk go: its item
        cap (skipped items count), its page cap, and no page token twice."""
        token = ""
        while walk.may_fetch(token):
            query = dict(params, maxResults=str(max(1, min(PAGE_LIMIT, walk.item_cap))))
            if token:
                query["pageToken"] = token
            body = self._get(path, query, what=what)
            walk.note_total(_dict(body.get("pageInfo")).get("totalResults"))
            yield walk.admit([item for item in _list(body.get("items")) if isinstance(item, dict)])
            following = body.get("nextPageToken")
            if not isinstance(following, str) or not following:
                return
            token = following
        _log.info("stopped paging %s: %s", what.lower(), walk.stopped)

    def _get(self, path: str, params: Mapping[str, str], *, what: str) -> dict[str, Any]:
        import requests  # noqa: PLC0415

        try:
            response = self._session.get(
                f"{self._base}/{path}",
                params=dict(params),
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=self._timeout_s,
            )
        except requests.RequestException as exc:
            _log.warning("YouTube Data API unreachable (%s): %s", path, type(exc).__name__)
            raise YouTubeDataError("I can't reach YouTube right now. Please try again in a moment.") from None
        status = response.status_code
        if status == 200:
            body = response.json()
            return body if isinstance(body, dict) else {}
        reason = _reason(response)
        _log.info("YouTube Data API %s answered HTTP %s (%s)", path, status, reason)
        if status == 401:
            raise YouTubeAuthError()
        if status == 403 and reason in {"quotaExceeded", "dailyLimitExceeded", "rateLimitExceeded"}:
            raise YouTubeQuotaError()
        if status == 403:
            raise YouTubeDataError(f"YouTube refused access: {what.lower()} may be private.")
        if status == 404:
            raise TrackNotFoundError(f"{what} doesn't exist or isn't visible to your account.")
        raise YouTubeDataError()


def _walk(walk: ListWalk | None, cap: int) -> ListWalk:
    return walk if walk is not None else ListWalk(item_cap=cap)


def _reason(response: Any) -> str:
    try:
        errors = response.json().get("error", {}).get("errors") or [{}]
        return str(errors[0].get("reason") or "")
    except (ValueError, AttributeError, TypeError, IndexError):
        return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_duration(value: object) -> int | None:
    """Seconds of an ISO 8601 duration as the Data API writes it (``PT4M13S``); None if unknown."""
    if not isinstance(value, str):
        return None
    match = _DURATION_RE.match(value)
    if match is None or value in {"P", "PT"}:
        return None
    parts = {key: int(number) for key, number in match.groupdict().items() if number}
    return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def track_from_video(raw: Mapping[str, Any]) -> Track | None:
    """A ``youtube`` Track from a ``videos`` resource; None for private/deleted videos."""
    from timmybot.models import Track  # noqa: PLC0415 - plain data

    video_id = raw.get("id")
    if not isinstance(video_id, str) or not _VIDEO_ID_RE.match(video_id):
        return None
    snippet = _dict(raw.get("snippet"))
    title = snippet.get("title")
    if not isinstance(title, str) or title.lower() in _UNPLAYABLE_TITLES:
        return None
    channel = snippet.get("channelTitle")
    artist = channel.removesuffix(" - Topic") if isinstance(channel, str) and channel else None
    thumbnails = _dict(snippet.get("thumbnails"))
    thumbnail = None
    for size in ("high", "medium", "default"):
        url = _dict(thumbnails.get(size)).get("url")
        if isinstance(url, str) and url.startswith("https://"):
            thumbnail = url
            break
    return Track(
        source="youtube",
        source_id=video_id,
        title=title,
        url=WATCH_URL.format(id=video_id),
        duration_s=parse_duration(_dict(raw.get("contentDetails")).get("duration")),
        thumbnail=thumbnail,
        artist=artist,
    )
