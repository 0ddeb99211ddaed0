"""A loopback stand-in for LRCLIB's API (``/api/get`` and ``/api/search``), with its field names.

Records are LRCLIB's JSON objects: ``id``, ``trackName``, ``artistName``, ``albumName``,
``duration`` (seconds, a float), ``instrumental``, ``plainLyrics`` and ``syncedLyrics`` (LRC).

- ``GET /api/get?track_name=&artist_name=&album_name=&duration=``: the record whose names equal
  the ones given (case-insensitive; the album only when given) and whose duration is within 2 s,
  as LRCLIB matches; otherwise 404 with LRCLIB's error body (``TrackNotFound``).
- ``GET /api/search?q=`` or ``?track_name=&artist_name=``: records whose fields contain every word
  asked, as a JSON array (possibly empty); 400 when neither ``q`` nor ``track_name`` is given.

``mode``: "working", "failing" (HTTP 500 for everything) or "redirecting" (302 to this fake's own
``/elsewhere``, which a client must not follow). ``requests`` lists (path, params, User-Agent) of
each call.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import LoopbackHttp, send_json

DURATION_TOLERANCE_S = 2.0
NOT_FOUND = {"code": 404, "name": "TrackNotFound", "message": "Failed to find specified track"}

#: LRC with its edge cases: ID tags, an offset, several timestamps on one line, word timestamps,
#: an empty (instrumental break) line.
SIGNAL_LRC = """[ar:Test Signals]
[ti:Signal Song]
[al:Loopback Sessions]
[by:fake_lrclib]
[length:03:00]
[offset:+500]
[00:01.00]First line of the signal
[00:03.50][00:13.50]Chorus comes twice
[00:06.00]<00:06.00>Third <00:06.40>line <00:06.80>with word times
[00:08.00]
[00:09.00]Fourth line after a break
[00:11.20]Fifth line
"""


def record(
    record_id: int,
    track: str,
    artist: str,
    album: str,
    duration: float,
    *,
    plain: str | None = None,
    synced: str | None = None,
    instrumental: bool = False,
) -> dict[str, Any]:
    """One record as LRCLIB serves it."""
    return {
        "id": record_id,
        "name": track,
        "trackName": track,
        "artistName": artist,
        "albumName": album,
        "duration": float(duration),
        "instrumental": instrumental,
        "plainLyrics": plain,
        "syncedLyrics": synced,
    }


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join(re.findall(r"\w+", "".join(c for c in decomposed if not unicodedata.combining(c))))


@dataclass
class FakeLrclib:
    records: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "working"
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._http: LoopbackHttp | None = None

    @property
    def url(self) -> str:
        """The API base, as ``lyrics_api_url`` takes it."""
        assert self._http is not None, "start the fake first"
        return f"{self._http.origin}/api"

    def paths(self) -> list[str]:
        return [path for path, _params, _agent in self.requests]

    def __enter__(self) -> FakeLrclib:
        self._http = LoopbackHttp("fake-lrclib", get=self._get).start()
        return self

    @property
    def allowance(self) -> str:
        assert self._http is not None, "start the fake first"
        return self._http.allowance

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.stop()

    # ------------------------------------------------------------------ the API
    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.requests.append((parts.path, params, handler.headers.get("User-Agent", "")))
        if self.mode == "failing":
            send_json(handler, 500, {"code": 500, "name": "InternalError", "message": "boom"})
        elif self.mode == "redirecting" and parts.path != "/elsewhere":
            handler.send_response(302)
            handler.send_header("Location", f"{self.url.removesuffix('/api')}/elsewhere")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif parts.path == "/api/get":
            found = self._by_signature(params)
            send_json(handler, 200, found) if found is not None else send_json(handler, 404, NOT_FOUND)
        elif parts.path == "/api/search":
            if not params.get("q") and not params.get("track_name"):
                send_json(handler, 400, {"code": 400, "name": "QueryParamsError", "message": "q or track_name"})
                return
            send_json(handler, 200, self._search(params))
        else:
            send_json(handler, 404, {"code": 404, "name": "NotFound", "message": "no such route"})

    def _by_signature(self, params: dict[str, str]) -> dict[str, Any] | None:
        try:
            duration = float(params["duration"]) if "duration" in params else None
        except ValueError:
            return None
        for item in self.records:
            if _fold(item["trackName"]) != _fold(params.get("track_name", "")):
                continue
            if _fold(item["artistName"]) != _fold(params.get("artist_name", "")):
                continue
            if params.get("album_name") and _fold(item["albumName"]) != _fold(params["album_name"]):
                continue
            if duration is not None and abs(item["duration"] - duration) > DURATION_TOLERANCE_S:
                continue
            return item
        return None

    def _search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        wanted: list[tuple[str, str]] = []
        if params.get("q"):
            wanted += [("*", word) for word in _fold(params["q"]).split()]
        for name, key in (("track_name", "trackName"), ("artist_name", "artistName"), ("album_name", "albumName")):
            if params.get(name):
                wanted += [(key, word) for word in _fold(params[name]).split()]
        found = []
        for item in self.records:
            every = _fold(" ".join(str(item[k]) for k in ("trackName", "artistName", "albumName")))
            if all(f" {word} " in f" {every if key == '*' else _fold(str(item[key]))} " for key, word in wanted):
                found.append(item)
        return found
