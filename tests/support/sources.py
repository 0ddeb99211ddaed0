"""Loopback "sites" for the source chain: local media that can be told to fail the way YouTube does.

A ``LoopbackSite`` serves a small catalog of files from a ``MediaServer`` (links, text search,
ISRC lookup, streams) and, on demand, raises the exact yt-dlp exception a real site raises (built
with yt-dlp's own classes and messages), translated by the adapter's one mapping
``map_ytdlp_error`` — just as ``YtDlpSource`` does.

Tests build sites directly. A subprocess (a voice task) gets them through settings:
``source_chain=("tests.support.sources:loopback_youtube", ...)`` with ``allow_local_media`` (the
only configuration that accepts such names) and ``TIMMYBOT_LOOPBACK_SITES`` naming a JSON file::

    {"sites": {"ytfake": {"base_url": "http://127.0.0.1:PORT", "fault": "bot_check",
                          "calls_file": "/tmp/calls.txt", "tracks": [{"file": "a.webm", "title": "A",
                          "artist": "X", "duration_s": 2, "isrc": null}]}}}
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from yt_dlp.networking import Response
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from timmybot.errors import SourceError, TrackNotFoundError, UnsupportedUrlError
from timmybot.models import Track
from timmybot.sources import Query, QueryKind, Source, SourceSettings, StreamInfo, map_ytdlp_error

ENV_CONFIG = "TIMMYBOT_LOOPBACK_SITES"

_COOKIE_HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass cookies"
)
_YOUTUBE_LOGIN_HINT = (
    f"{_COOKIE_HINT}. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  "
    "for tips on effectively exporting YouTube cookies"
)


def _wrapped(error: Exception) -> DownloadError:
    """What ``YoutubeDL.extract_info`` raises: a DownloadError carrying the extractor's exception."""
    return DownloadError(f"ERROR: {error}", exc_info=(type(error), error, None))


def _in_handler(make_cause: Exception, message: str, video_id: str) -> ExtractorError:
    """An ExtractorError raised while handling a network error, as ``_request_webpage`` does."""
    try:
        raise make_cause
    except Exception as cause:
        return ExtractorError(f"{message}: {cause}", cause=cause, video_id=video_id, ie="youtube")


def ytdlp_failure(fault: str, video_id: str = "xxxxxxxxxxx") -> Exception:
    """The yt-dlp exception a real site raises for ``fault`` (yt-dlp's own classes and wording)."""
    if fault == "bot_check":
        reason = f"Sign in to confirm you’re not a bot. {_YOUTUBE_LOGIN_HINT}"
        return _wrapped(ExtractorError(reason, expected=True, video_id=video_id, ie="youtube"))
    if fault == "login_required":
        reason = f"This video is only available for registered users. {_COOKIE_HINT}"
        return _wrapped(ExtractorError(reason, expected=True, video_id=video_id, ie="youtube"))
    if fault == "age_restricted":
        reason = f"Sign in to confirm your age. This video may be inappropriate for some users. {_YOUTUBE_LOGIN_HINT}"
        return _wrapped(ExtractorError(reason, expected=True, video_id=video_id, ie="youtube"))
    if fault == "geo_blocked":
        return _wrapped(
            GeoRestrictedError("The uploader has not made this video available in your country", countries=["DE"])
        )
    if fault == "unavailable":
        reason = "Video unavailable. This video has been removed by the uploader"
        return _wrapped(ExtractorError(reason, expected=True, video_id=video_id, ie="youtube"))
    if fault == "stream_403":
        response = Response(io.BytesIO(b""), "https://rr1---sn-x.googlevideo.com/videoplayback", {}, 403, "Forbidden")
        error = HTTPError(response)
        return DownloadError(f"ERROR: unable to download video data: {error}", exc_info=(HTTPError, error, None))
    if fault in ("rate_limited", "server_error"):
        status, why = (429, "Too Many Requests") if fault == "rate_limited" else (503, "Service Unavailable")
        response = Response(io.BytesIO(b""), "https://www.youtube.com/youtubei/v1/player", {}, status, why)
        return _wrapped(ExtractorError("Unable to download API JSON", cause=HTTPError(response), video_id=video_id))
    if fault == "timeout":
        timeout = TransportError(cause=TimeoutError("timed out"))
        extractor_error = _in_handler(timeout, "Unable to download webpage", video_id)
        return _wrapped(extractor_error)
    if fault == "broken":
        reason = "Failed to extract any player response"
        return _wrapped(ExtractorError(reason, video_id=video_id, ie="youtube"))
    raise ValueError(f"unknown fault {fault!r}")


FAULTS = (
    "bot_check",
    "login_required",
    "age_restricted",
    "geo_blocked",
    "unavailable",
    "stream_403",
    "timeout",
    "rate_limited",
    "server_error",
    "broken",
)


@dataclass
class CatalogEntry:
    file: str
    title: str
    artist: str | None = None
    duration_s: int | None = None
    isrc: str | None = None


@dataclass
class LoopbackSite(Source):
    """A named site on loopback. ``fault`` (with ``fail_times``: None = always) makes every call fail."""

    site_name: str
    base_url: str
    catalog: list[CatalogEntry] = field(default_factory=list)
    fault: str | None = None
    fail_times: int | None = None
    fail_on: frozenset[str] = frozenset({"resolve", "search", "stream", "isrc"})
    isrc_lookup: bool = False
    calls_file: str | None = None
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.site_name
        self.handles = frozenset({self.site_name})
        self.can_search = True
        self.can_isrc = self.isrc_lookup

    # -- what it takes ------------------------------------------------------------------------------

    def accepts(self, query: Query) -> bool:
        return query.kind is QueryKind.LOCAL and query.text.startswith(self.base_url + "/")

    def resolve(self, query: Query) -> list[Track]:
        self._called("resolve", query.text)
        for entry in self.catalog:
            if query.text == self._url(entry):
                return [self._track(entry)]
        raise TrackNotFoundError()

    def search(self, terms: str, *, limit: int = 1) -> list[Track]:
        self._called("search", terms)
        words = terms.lower().split()
        found = [
            self._track(entry)
            for entry in self.catalog
            if all(word in f"{entry.artist or ''} {entry.title}".lower() for word in words)
        ]
        if not found:
            raise TrackNotFoundError()
        return found[:limit]

    def find_by_isrc(self, isrc: str, *, limit: int = 3) -> list[Track]:
        self._called("isrc", isrc)
        return [self._track(entry) for entry in self.catalog if entry.isrc == isrc][:limit]

    def stream(self, track: Track) -> StreamInfo:
        self._called("stream", track.url)
        if track.source != self.name or not track.url.startswith(self.base_url + "/"):
            raise UnsupportedUrlError()
        extension = track.url.rsplit(".", 1)[-1].lower()
        return StreamInfo(
            stream_url=track.url,
            codec="opus" if extension in {"webm", "ogg", "opus"} else None,
            container=extension,
            duration_s=track.duration_s,
            local=True,
        )

    # -- internals ---------------------------------------------------------------------------------

    def _called(self, operation: str, target: str) -> None:
        self.calls.append(operation)
        if self.calls_file:
            with Path(self.calls_file).open("a", encoding="utf-8") as handle:
                handle.write(f"{self.name} {operation}\n")
        if self.fault is None or operation not in self.fail_on:
            return
        if self.fail_times is not None:
            if self.fail_times <= 0:
                return
            self.fail_times -= 1
        # What YtDlpSource._extract does with a yt-dlp exception: the adapter's one mapping.
        raise map_ytdlp_error(ytdlp_failure(self.fault), target=target)

    def _url(self, entry: CatalogEntry) -> str:
        return f"{self.base_url}/{entry.file}"

    def _track(self, entry: CatalogEntry) -> Track:
        return Track(
            source=self.name,
            source_id=entry.file,
            title=entry.title,
            url=self._url(entry),
            duration_s=entry.duration_s,
            thumbnail=None,
            artist=entry.artist,
            isrc=entry.isrc,
        )


def write_config(path: Path, sites: dict[str, dict[str, Any]]) -> Path:
    """Write the ``TIMMYBOT_LOOPBACK_SITES`` document for subprocesses."""
    path.write_text(json.dumps({"sites": sites}), encoding="utf-8")
    return path


def _from_config(name: str, settings: SourceSettings, *, named: str | None = None) -> LoopbackSite:
    if not settings.allow_local_media:
        raise SourceError("loopback sites are test-only")
    config_path = os.environ.get(ENV_CONFIG)
    if not config_path:
        raise RuntimeError(f"{ENV_CONFIG} must name the loopback sites' JSON file")
    site = json.loads(Path(config_path).read_text(encoding="utf-8"))["sites"][name]
    return LoopbackSite(
        site_name=named or name,
        base_url=site["base_url"],
        catalog=[CatalogEntry(**entry) for entry in site.get("tracks", [])],
        fault=site.get("fault"),
        fail_times=site.get("fail_times"),
        fail_on=frozenset(site.get("fail_on", ["resolve", "search", "stream", "isrc"])),
        isrc_lookup=bool(site.get("isrc_lookup", False)),
        calls_file=site.get("calls_file"),
    )


def loopback_youtube(settings: SourceSettings) -> LoopbackSite:
    """Factory for ``source_chain``: the site configured as "ytfake"."""
    return _from_config("ytfake", settings)


def loopback_soundcloud(settings: SourceSettings) -> LoopbackSite:
    """Factory for ``source_chain``: the site configured as "scfake"."""
    return _from_config("scfake", settings)


def loopback_as_youtube(settings: SourceSettings) -> LoopbackSite:
    """The "ytfake" site under the chain name "youtube" (what a user's preferred platform names)."""
    return _from_config("ytfake", settings, named="youtube")


def loopback_as_soundcloud(settings: SourceSettings) -> LoopbackSite:
    """The "scfake" site under the chain name "soundcloud"."""
    return _from_config("scfake", settings, named="soundcloud")


@pytest.fixture
def timmybot_logs() -> Iterator[None]:
    """Let ``timmybot`` records reach caplog at every level, whatever another test configured
    (the Lambda observability set-up gives the package its own handler and stops propagation)."""
    logger = logging.getLogger("timmybot")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    logger.handlers = []
    try:
        yield
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers = saved[2]
