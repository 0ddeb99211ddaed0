"""The yt-dlp adapter: YouTube, YouTube Music and SoundCloud.

``yt_dlp`` is imported inside methods only: the api Lambda imports this package (for the URL
policy) and must never pay for yt-dlp. Every yt-dlp option is built by ``build_ytdl_options`` and
every yt-dlp failure is translated by ``map_ytdlp_error`` through the one table ``ERROR_RULES``.

JavaScript: current yt-dlp solves YouTube's player challenges with an external JS runtime (deno by
default; ``SourceSettings.js_runtimes`` selects others) plus the yt-dlp-ejs scripts. Stream
resolution of YouTube needs it for most clients; metadata does not (``ignore_no_formats_error``),
and flat playlist/search listings never load the player. Remote JS components are never fetched.
"""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from timmybot.errors import (
    BlockedSourceError,
    SourceError,
    SpotifyNotYetSupportedError,
    TrackNotFoundError,
    TrackTooLongError,
    TrackUnavailableError,
    UnsupportedUrlError,
)

from .base import Source
from .models import Query, QueryKind, SourceSettings, StreamInfo, Track, expiry_from_url
from .policy import SOUNDCLOUD_HOSTS, check_track_url, check_url

_log = logging.getLogger(__name__)

# Exact yt-dlp extractor names (IE_NAME, case-insensitive) we allow. yt-dlp treats each entry of
# ``allowed_extractors`` as a regex matched with fullmatch, so they are passed through re.escape.
# "generic" is never here: it would follow any redirect or embedded link to any host.
YOUTUBE_EXTRACTORS: tuple[str, ...] = (
    "youtube",
    "youtube:tab",
    "youtube:playlist",
    "youtube:search",
    "youtube:search_url",
    "youtube:music:search_url",
    "youtube:clip",
    "youtube:shorts:pivot:audio",
    "youtube:truncated_id",
    "youtube:truncated_url",
    "youtubeytbe",
)
SOUNDCLOUD_EXTRACTORS: tuple[str, ...] = (
    "soundcloud",
    "soundcloud:set",
    "soundcloud:playlist",
    "soundcloud:user",
    "soundcloud:search",
)
SITE_EXTRACTORS: tuple[str, ...] = YOUTUBE_EXTRACTORS + SOUNDCLOUD_EXTRACTORS

STREAM_FORMAT = "bestaudio[acodec=opus]/bestaudio/best"

# Flat-playlist placeholders YouTube uses for entries nobody can play.
_UNPLAYABLE_TITLES = frozenset({"[private video]", "[deleted video]", "[unavailable video]"})
_UNPLAYABLE_AVAILABILITY = frozenset({"private", "needs_auth", "premium_only", "subscriber_only"})


def _too_long(settings: SourceSettings) -> TrackTooLongError:
    hours, rest = divmod(settings.max_track_seconds, 3600)
    limit = f"{hours} h" if not rest else f"{settings.max_track_seconds // 60} min"
    return TrackTooLongError(f"That track is too long: the limit is {limit}.")


# The one mapping table: (lower-cased needles searched in the yt-dlp message, error to raise).
# First match wins, so the more specific rules come first.
ERROR_RULES: tuple[tuple[tuple[str, ...], Callable[[], SourceError]], ...] = (
    (("confirm you're not a bot", "confirm you’re not a bot"), BlockedSourceError),
    (
        ("confirm your age", "age-restricted", "inappropriate for some users"),
        lambda: TrackUnavailableError("That track is age-restricted, so I can't play it."),
    ),
    (
        (
            "video unavailable",
            "this video is private",
            "private video",
            "removed",
            "members-only",
            "join this channel",
            "this video is not available",
            "track is not available",
            "account associated with this video has been terminated",
            "premieres in",
            "http error 404",
        ),
        TrackUnavailableError,
    ),
    (("not available in your country", "geo restriction", "geo-restrict"), TrackUnavailableError),
    (("unsupported url", "no suitable extractor"), UnsupportedUrlError),
    (
        ("requested format is not available", "no video formats found"),
        lambda: SourceError("I couldn't get a playable stream for that track right now."),
    ),
)


def map_ytdlp_error(exc: BaseException, *, target: str) -> SourceError:
    """Translate a yt-dlp exception into the domain error the user should read."""
    message = str(exc).replace("’", "'").lower()
    for needles, make in ERROR_RULES:
        if any(needle.replace("’", "'") in message for needle in needles):
            error = make()
            _log.info("yt-dlp refused %s: %s -> %s", target, exc, type(error).__name__)
            return error
    _log.warning("yt-dlp failed on %s: %s", target, exc)
    return SourceError("I couldn't get that from the site right now. Please try again in a moment.")


class _YtDlpLogger:
    """Routes yt-dlp's own output into our logging (it would print to stderr otherwise)."""

    def debug(self, msg: str) -> None:
        _log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        _log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        _log.info("yt-dlp warning: %s", msg)

    def error(self, msg: str) -> None:
        _log.info("yt-dlp error: %s", msg)


def build_ytdl_options(
    settings: SourceSettings,
    *,
    purpose: Literal["metadata", "stream"],
    flat_playlists: bool = True,
) -> dict[str, Any]:
    """All yt-dlp options we ever use; pure, so the policy can be tested without network.

    ``metadata`` lists playlists flat (one request per page, not per track) and tolerates missing
    formats; ``stream`` selects one audio format, opus first. ``flat_playlists=False`` resolves each
    playlist entry (SoundCloud sets list most of their tracks as bare ids).
    """
    options: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "skip_download": True,
        "simulate": True,
        "cachedir": False,
        "socket_timeout": settings.socket_timeout_s,
        "allowed_extractors": [re.escape(name) for name in SITE_EXTRACTORS],
        "default_search": "error",
        "noplaylist": True,
        "playlistend": settings.playlist_cap,
        "extract_flat": False,
        "retries": 2,
        "extractor_retries": 1,
        "logger": _YtDlpLogger(),
    }
    if purpose == "metadata":
        options["extract_flat"] = "in_playlist" if flat_playlists else False
        options["ignore_no_formats_error"] = True
    elif purpose == "stream":
        options["format"] = STREAM_FORMAT
        options["playlistend"] = 1
    else:  # pragma: no cover - Literal guards it for type-checked callers
        raise ValueError(f"unknown purpose {purpose!r}")
    # Operator-level (bot-wide) source credentials and tools; never user OAuth tokens.
    if settings.cookies_path:
        options["cookiefile"] = settings.cookies_path
    if settings.proxy_url:
        options["proxy"] = settings.proxy_url
    if settings.js_runtimes:
        options["js_runtimes"] = {name: {} for name in settings.js_runtimes}
    return options


YdlFactory = Callable[[dict[str, Any]], Any]
LocationFetcher = Callable[[str, float], str | None]


def _default_ydl_factory(options: dict[str, Any]) -> Any:
    import yt_dlp  # noqa: PLC0415 - deliberately lazy: never on the Lambda fast path

    return yt_dlp.YoutubeDL(options)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _fetch_location(url: str, timeout_s: float) -> str | None:
    """One request to a short-link host; returns its redirect target without following it."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - url already passed the policy
    try:
        with opener.open(request, timeout=timeout_s) as response:
            location = response.headers.get("Location")
    except urllib.error.HTTPError as exc:
        location = exc.headers.get("Location")
    return None if location is None else str(location)


class YtDlpSource(Source):
    """YouTube, YouTube Music and SoundCloud through yt-dlp, restricted to the site extractors."""

    handles = frozenset({"youtube", "soundcloud"})

    def __init__(
        self,
        settings: SourceSettings,
        *,
        ydl_factory: YdlFactory | None = None,
        location_fetcher: LocationFetcher | None = None,
    ) -> None:
        self._settings = settings
        self._ydl_factory = ydl_factory or _default_ydl_factory
        self._fetch_location = location_fetcher or _fetch_location

    # -- metadata (worker) -------------------------------------------------------------------------

    def resolve(self, query: Query) -> list[Track]:
        if query.kind.is_spotify:
            raise SpotifyNotYetSupportedError()
        if query.kind is QueryKind.SEARCH:
            return self._search(query.text)
        if query.kind not in {QueryKind.YOUTUBE, QueryKind.SOUNDCLOUD}:
            raise UnsupportedUrlError()
        url = self.expand_short_link(query.text)
        options = build_ytdl_options(
            self._settings, purpose="metadata", flat_playlists=query.kind is not QueryKind.SOUNDCLOUD
        )
        info = self._extract(url, options)
        if _is_playlist(info):
            return self._playlist_tracks(info)
        track = _track_from_info(info)
        if track is None:
            raise TrackUnavailableError()
        self._check_duration(track)
        return [track]

    def _search(self, terms: str) -> list[Track]:
        options = build_ytdl_options(self._settings, purpose="metadata")
        info = self._extract(f"{self._settings.search_prefix}{terms}", options)
        for entry in _entries(info):
            track = _track_from_info(entry)
            if track is not None:
                self._check_duration(track)
                return [track]
        raise TrackNotFoundError()

    def _playlist_tracks(self, info: Mapping[str, Any]) -> list[Track]:
        tracks: list[Track] = []
        too_long = 0
        for entry in _entries(info):
            track = _track_from_info(entry)
            if track is None:
                continue
            if track.duration_s is not None and track.duration_s > self._settings.max_track_seconds:
                too_long += 1
                continue
            tracks.append(track)
            if len(tracks) >= self._settings.playlist_cap:
                break
        if not tracks:
            if too_long:
                raise _too_long(self._settings)
            raise TrackNotFoundError("That playlist has no playable tracks.")
        if too_long:
            _log.info("skipped %s over-long playlist entries", too_long)
        return tracks

    def _check_duration(self, track: Track) -> None:
        if track.duration_s is not None and track.duration_s > self._settings.max_track_seconds:
            raise _too_long(self._settings)

    def expand_short_link(self, url: str) -> str:
        """``on.soundcloud.com`` links only redirect; yt-dlp has no extractor for them.

        We read the redirect ourselves (one request, not followed) and policy-check the target, so
        the generic extractor is never needed.
        """
        if not url.startswith("https://on.soundcloud.com/"):
            return url
        try:
            location = self._fetch_location(url, self._settings.socket_timeout_s)
        except OSError as exc:
            _log.warning("short link %s did not answer: %s", url, exc)
            raise SourceError("SoundCloud didn't answer; please try again in a moment.") from exc
        if not location:
            raise TrackNotFoundError("That SoundCloud short link leads nowhere.")
        target = check_url(location, self._settings)
        host = target.split("/", 3)[2]
        if host not in SOUNDCLOUD_HOSTS or host == "on.soundcloud.com":
            raise UnsupportedUrlError("That SoundCloud short link points somewhere I can't follow.")
        return target

    # -- streams (voice task) ----------------------------------------------------------------------

    def stream(self, track: Track) -> StreamInfo:
        if track.source not in self.handles:
            raise SourceError(f"I can't stream tracks from {track.source} with this source.")
        url = check_track_url(track.url, self._settings)
        info = self._extract(url, build_ytdl_options(self._settings, purpose="stream"))
        if _is_playlist(info):
            entries = [entry for entry in _entries(info) if entry.get("url")]
            if not entries:
                raise TrackUnavailableError()
            info = entries[0]
        stream_url = info.get("url")
        if not isinstance(stream_url, str) or not stream_url:
            raise SourceError("I couldn't get a playable stream for that track right now.")
        headers = info.get("http_headers") or {}
        codec = _str_or_none(info.get("acodec"))
        if codec == "none":
            codec = None
        return StreamInfo(
            stream_url=stream_url,
            http_headers={str(key): str(value) for key, value in dict(headers).items()},
            codec=codec,
            container=_str_or_none(info.get("audio_ext"))
            if info.get("audio_ext") not in (None, "none")
            else _str_or_none(info.get("ext")),
            expires_at=expiry_from_url(stream_url),
            duration_s=_int_or_none(info.get("duration")) or track.duration_s,
        )

    # -- yt-dlp call -------------------------------------------------------------------------------

    def _extract(self, url: str, options: dict[str, Any]) -> dict[str, Any]:
        from yt_dlp.utils import YoutubeDLError  # noqa: PLC0415 - lazy on purpose

        try:
            with self._ydl_factory(options) as ydl:
                info = ydl.extract_info(url, download=False)
        except YoutubeDLError as exc:
            raise map_ytdlp_error(exc, target=url) from exc
        if not isinstance(info, dict):
            raise TrackNotFoundError()
        return info


def _is_playlist(info: Mapping[str, Any]) -> bool:
    return info.get("_type") in {"playlist", "multi_video"} or "entries" in info


def _entries(info: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for entry in info.get("entries") or ():
        if isinstance(entry, dict):
            yield entry


def _source_of(info: Mapping[str, Any]) -> str | None:
    key = str(info.get("ie_key") or info.get("extractor_key") or info.get("extractor") or "").lower()
    if key.startswith("youtube"):
        return "youtube"
    if key.startswith("soundcloud"):
        return "soundcloud"
    return None


def _track_from_info(info: Mapping[str, Any]) -> Track | None:
    """A Track from a full or flat yt-dlp info dict; None for entries nobody can play."""
    source = _source_of(info)
    source_id = _str_or_none(info.get("id"))
    if source is None or not source_id:
        return None
    title = _str_or_none(info.get("title"))
    if title is not None and title.lower() in _UNPLAYABLE_TITLES:
        return None
    if info.get("availability") in _UNPLAYABLE_AVAILABILITY:
        return None
    if source == "youtube":
        url = f"https://www.youtube.com/watch?v={source_id}"
    else:
        url = _str_or_none(info.get("webpage_url")) or _str_or_none(info.get("url")) or ""
        if not url:
            return None
    thumbnail = _str_or_none(info.get("thumbnail"))
    if thumbnail is None:
        thumbnails = [t for t in info.get("thumbnails") or () if isinstance(t, dict) and t.get("url")]
        thumbnail = _str_or_none(thumbnails[-1]["url"]) if thumbnails else None
    artists = info.get("artists")
    artist = (
        (str(artists[0]) if isinstance(artists, list) and artists else None)
        or _str_or_none(info.get("artist"))
        or _str_or_none(info.get("uploader"))
        or _str_or_none(info.get("channel"))
    )
    return Track(
        source=source,
        source_id=source_id,
        title=title or f"{source.capitalize()} track {source_id}",
        url=url,
        duration_s=_int_or_none(info.get("duration")),
        thumbnail=thumbnail,
        artist=artist,
        isrc=_str_or_none(info.get("isrc")),
    )


def _str_or_none(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return None
