"""The LRCLIB adapter of the lyrics port: ``GET /api/get`` (by signature) and ``GET /api/search``.

LRCLIB (https://lrclib.net) is free and needs no key; it asks clients to name themselves in the
User-Agent. Its records carry ``trackName``, ``artistName``, ``albumName``, ``duration`` (seconds),
``instrumental``, ``plainLyrics`` and ``syncedLyrics`` (LRC). ``/api/get`` answers 404 when no
record matches the signature (its duration within about 2 s).

The base URL is a setting (``lyrics_api_url``), allowed by the network guard like the other
operator endpoints; every request goes through the guard (``netguard.guarded_opener``), and no
redirect is followed, so nothing but the configured host is ever asked. Nothing
here logs a response body or the names asked (they come from users' titles).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from timmybot import __version__
from timmybot.lyrics.base import LyricsSource
from timmybot.lyrics.models import Lyrics, LyricsQuery, LyricsUnavailableError

_log = logging.getLogger(__name__)

USER_AGENT = f"TimmyBot/{__version__} (+https://github.com/timmybot/timmybot)"
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
SEARCH_RESULTS_MAX = 20
HTTP_NOT_FOUND = 404


class LrclibClient(LyricsSource):
    def __init__(self, api_url: str, *, timeout_s: float = 5.0) -> None:
        self._base = api_url.rstrip("/")
        self._timeout_s = timeout_s

    def get(self, query: LyricsQuery) -> Lyrics | None:
        if not query.track or not query.artist:
            return None
        params = {"track_name": query.track, "artist_name": query.artist}
        if query.album:
            params["album_name"] = query.album
        if query.duration_s:
            params["duration"] = str(int(query.duration_s))
        body = self._get("get", params)
        return Lyrics.from_lrclib(body) if isinstance(body, dict) else None

    def search(self, query: LyricsQuery) -> list[Lyrics]:
        if query.text is not None and not query.artist:
            params = {"q": query.text}
        elif query.track:
            params = {"track_name": query.track}
            if query.artist:
                params["artist_name"] = query.artist
        else:
            return []
        body = self._get("search", params)
        if not isinstance(body, list):
            return []
        found = [Lyrics.from_lrclib(raw) for raw in body[:SEARCH_RESULTS_MAX] if isinstance(raw, dict)]
        return [record for record in found if record is not None]

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        """The decoded JSON of ``/api/<path>``; None for a 404. Anything else unusable raises."""
        import urllib.error  # noqa: PLC0415 - urllib.request pulls in ssl and email: only when called
        import urllib.parse  # noqa: PLC0415
        import urllib.request  # noqa: PLC0415

        from timmybot import netguard  # noqa: PLC0415

        url = f"{self._base}/{path}?{urllib.parse.urlencode(dict(params))}"
        request = urllib.request.Request(  # noqa: S310 - the base is a setting (https in production)
            url, headers={"Accept": "application/json", "User-Agent": USER_AGENT}, method="GET"
        )

        class NoRedirects(urllib.request.HTTPRedirectHandler):
            """LRCLIB answers where it is asked: a redirect could lead anywhere the guard allows."""

            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        try:
            with netguard.guarded_opener(NoRedirects).open(request, timeout=self._timeout_s) as answer:
                status, raw = answer.status, answer.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, b""
            exc.close()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            _log.warning("LRCLIB unreachable (%s): %s", path, type(exc).__name__)
            raise LyricsUnavailableError() from None
        if status == HTTP_NOT_FOUND:
            return None
        if status != 200:
            _log.warning("LRCLIB %s answered HTTP %s", path, status)
            raise LyricsUnavailableError()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            _log.warning("LRCLIB %s answered HTTP 200 without JSON", path)
            raise LyricsUnavailableError() from None
