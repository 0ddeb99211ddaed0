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
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import quote_plus

from timmybot import netguard
from timmybot.errors import (
    AgeRestrictedError,
    BlockedSourceError,
    GeoBlockedError,
    SourceError,
    SourceLoginRequiredError,
    SourceRateLimitedError,
    SourceServerError,
    SourceTimeoutError,
    SourceUnreachableError,
    StreamForbiddenError,
    TrackNotFoundError,
    TrackTooLongError,
    TrackUnavailableError,
    UnsupportedUrlError,
)
from timmybot.models import Track

from .base import Source
from .models import Query, QueryKind, SourceSettings, StreamInfo, expiry_from_url
from .operator import OperatorSources, operator_sources, redact
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
# A YouTube mix: the radio YouTube builds around one video; it needs no sign-in.
MIX_URL = "https://www.youtube.com/watch?v={id}&list=RD{id}"
_VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")

# Flat-playlist placeholders YouTube uses for entries nobody can play.
_UNPLAYABLE_TITLES = frozenset({"[private video]", "[deleted video]", "[unavailable video]"})
_UNPLAYABLE_AVAILABILITY = frozenset({"private", "needs_auth", "premium_only", "subscriber_only"})


def _too_long(settings: SourceSettings) -> TrackTooLongError:
    hours, rest = divmod(settings.max_track_seconds, 3600)
    limit = f"{hours} h" if not rest else f"{settings.max_track_seconds // 60} min"
    return TrackTooLongError(f"That track is too long: the limit is {limit}.")


# The one mapping table: (lower-cased needles searched in the yt-dlp message and in the messages of
# its causes, error to raise). First match wins, so the more specific rules come first. The needles
# are yt-dlp's own texts (extractor/youtube/_video.py, extractor/common.py, networking/) and the
# reasons YouTube itself returns in playabilityStatus.
ERROR_RULES: tuple[tuple[tuple[str, ...], Callable[[], SourceError]], ...] = (
    (("confirm you're not a bot", "confirm you’re not a bot"), BlockedSourceError),
    (
        ("has been rate-limited by youtube", "requiring a captcha challenge"),
        lambda: BlockedSourceError(
            "That site is rate-limiting me right now. Try another link, or again in a few minutes."
        ),
    ),
    (
        (
            "not available in your country",
            "not available from your location",
            "geo restriction",
            "geo-restrict",
        ),
        GeoBlockedError,
    ),
    (("confirm your age", "age-restricted", "inappropriate for some users"), AgeRestrictedError),
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
    (
        (
            "only available for registered users",
            "login details are needed",
            "sign in to",
            "use --cookies",
        ),
        SourceLoginRequiredError,
    ),
    (("http error 403",), StreamForbiddenError),
    (("http error 429", "too many requests"), SourceRateLimitedError),
    (tuple(f"http error {status}" for status in range(500, 512)), SourceServerError),
    (("timed out", "timeout"), SourceTimeoutError),
    (
        (
            "failed to resolve",
            "name or service not known",
            "temporary failure in name resolution",
            "connection refused",
            "network is unreachable",
            "unable to connect to proxy",
        ),
        SourceUnreachableError,
    ),
    (("unsupported url", "no suitable extractor"), UnsupportedUrlError),
    (
        ("requested format is not available", "no video formats found"),
        lambda: SourceError("I couldn't get a playable stream for that track right now."),
    ),
)


def _messages(exc: BaseException) -> Iterable[str]:
    """The message of ``exc`` and of what caused it (DownloadError.exc_info, ExtractorError.cause...)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 8:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        exc_info = getattr(current, "exc_info", None)
        candidates = [
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
            getattr(current, "cause", None),
            current.__cause__,
            current.__context__,
        ]
        pending.extend(c for c in candidates if isinstance(c, BaseException))


def _typed_error(exc: BaseException) -> SourceError | None:
    """Errors told apart by yt-dlp's exception types rather than by their wording."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError  # noqa: PLC0415 - lazy on purpose
    from yt_dlp.utils import GeoRestrictedError  # noqa: PLC0415

    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 8:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, GeoRestrictedError):
            return GeoBlockedError()
        if isinstance(current, HTTPError) and current.status == 403:
            return StreamForbiddenError()
        if isinstance(current, HTTPError) and current.status == 429:
            return SourceRateLimitedError()
        if isinstance(current, HTTPError) and 500 <= current.status <= 599:
            return SourceServerError()
        if isinstance(current, TimeoutError):
            return SourceTimeoutError()
        if isinstance(current, TransportError) and not isinstance(current.cause, TimeoutError):
            return SourceUnreachableError()
        exc_info = getattr(current, "exc_info", None)
        for candidate in (
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
            getattr(current, "cause", None),
            current.__cause__,
        ):
            if isinstance(candidate, BaseException):
                pending.append(candidate)
    return None


def map_ytdlp_error(exc: BaseException, *, target: str) -> SourceError:
    """Translate a yt-dlp exception into the domain error the user should read.

    The message rules come first (a bot check may arrive wrapped in a 403); yt-dlp's exception
    types decide when no wording matches. Operator-secret values are scrubbed from the log line.
    """
    messages = [m.replace("’", "'").lower() for m in _messages(exc)]
    for needles, make in ERROR_RULES:
        if any(needle.replace("’", "'") in message for message in messages for needle in needles):
            error = make()
            _log.info("yt-dlp refused %s: %s -> %s", target, redact(str(exc)), type(error).__name__)
            return error
    typed = _typed_error(exc)
    if typed is not None:
        _log.info("yt-dlp refused %s: %s -> %s", target, redact(str(exc)), type(typed).__name__)
        return typed
    _log.warning("yt-dlp failed on %s: %s", target, redact(str(exc)))
    return SourceError("I couldn't get that from the site right now. Please try again in a moment.")


class _YtDlpLogger:
    """Routes yt-dlp's own output into our logging (it would print to stderr otherwise)."""

    def debug(self, msg: str) -> None:
        _log.debug("yt-dlp: %s", redact(msg))

    def info(self, msg: str) -> None:
        _log.debug("yt-dlp: %s", redact(msg))

    def warning(self, msg: str) -> None:
        _log.info("yt-dlp warning: %s", redact(msg))

    def error(self, msg: str) -> None:
        _log.info("yt-dlp error: %s", redact(msg))


def build_ytdl_options(
    settings: SourceSettings,
    *,
    purpose: Literal["metadata", "stream"],
    flat_playlists: bool = True,
    operator: OperatorSources | None = None,
) -> dict[str, Any]:
    """All yt-dlp options we ever use; pure, so the policy can be tested without network.

    ``metadata`` lists playlists flat (one request per page, not per track) and tolerates missing
    formats; ``stream`` selects one audio format, opus first. ``flat_playlists=False`` resolves each
    playlist entry (SoundCloud sets list most of their tracks as bare ids). ``operator`` adds the
    operator secret's cookies, proxy, player clients and PO-token settings (they win over
    ``cookies_path``/``proxy_url``). Without an upstream proxy, yt-dlp's ``proxy`` is this
    process's network guard, so every request and every redirect it follows is address-checked;
    with one, the check is the upstream proxy's (docs/SECURITY.md).
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
    if operator is not None:
        if operator.cookie_file:
            options["cookiefile"] = operator.cookie_file
        if operator.proxy:
            options["proxy"] = operator.proxy
        extractor_args = operator.extractor_args()
        if extractor_args:
            options["extractor_args"] = extractor_args
        # The PO-token provider is the operator's own service (often on loopback): allowed by name.
        netguard.configure_operator(operator.proxy, operator_urls(operator))
    if "proxy" not in options:
        options["proxy"] = netguard.guard_proxy_url()
    return options


def operator_urls(operator: OperatorSources) -> list[str]:
    """The URLs named in the operator secret's PO-token provider arguments (e.g. its ``base_url``)."""
    return [
        value
        for _namespace, items in operator.po_token_provider
        for _key, values in items
        for value in values
        if "://" in value
    ]


def ffmpeg_proxy(upstream: str | None) -> str | None:
    """The proxy FFmpeg reads a stream through when yt-dlp used ``upstream``; None means the guard.

    FFmpeg speaks only http:// proxies; with a SOCKS upstream it falls back to the guard.
    """
    if upstream and upstream.lower().startswith("http://"):
        return upstream
    return None


YdlFactory = Callable[[dict[str, Any]], Any]
LocationFetcher = Callable[[str, float], str | None]


def _default_ydl_factory(options: dict[str, Any]) -> Any:
    import yt_dlp  # noqa: PLC0415 - deliberately lazy: never on the Lambda fast path

    return yt_dlp.YoutubeDL(options)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _fetch_location(url: str, timeout_s: float) -> str | None:
    """One request to a short-link host, through the network guard; its redirect target, not followed."""
    opener = netguard.guarded_opener(_NoRedirect)
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - url already passed the policy
    try:
        with opener.open(request, timeout=timeout_s) as response:
            location = response.headers.get("Location")
    except urllib.error.HTTPError as exc:
        location = exc.headers.get("Location")
    return None if location is None else str(location)


class YtDlpSource(Source):
    """YouTube, YouTube Music and SoundCloud through yt-dlp, restricted to the site extractors.

    This class serves links of both sites and searches YouTube; the chain uses its per-site
    subclasses (``YouTubeSource``, ``YouTubeMusicSource``, ``SoundCloudSource``) so that each site
    has its own place in the order, its own breaker and its own metrics.
    """

    name = "ytdlp"
    handles = frozenset({"youtube", "soundcloud"})
    can_search = True
    _query_kinds: frozenset[QueryKind] = frozenset({QueryKind.YOUTUBE, QueryKind.SOUNDCLOUD})

    def __init__(
        self,
        settings: SourceSettings,
        *,
        ydl_factory: YdlFactory | None = None,
        location_fetcher: LocationFetcher | None = None,
        operator: OperatorSources | None = None,
    ) -> None:
        self._settings = settings
        self._ydl_factory = ydl_factory or _default_ydl_factory
        self._fetch_location = location_fetcher or _fetch_location
        self._operator = operator

    @property
    def operator(self) -> OperatorSources:
        """The operator's source credentials (the bot-level secret), read once per process."""
        if self._operator is None:
            self._operator = operator_sources(self._settings)
        return self._operator

    def options(self, purpose: Literal["metadata", "stream"], *, flat_playlists: bool = True) -> dict[str, Any]:
        """The yt-dlp options this adapter passes for ``purpose``, operator credentials included."""
        return build_ytdl_options(
            self._settings, purpose=purpose, flat_playlists=flat_playlists, operator=self.operator
        )

    def accepts(self, query: Query) -> bool:
        return query.kind in self._query_kinds

    # -- metadata (worker) -------------------------------------------------------------------------

    def resolve(self, query: Query) -> list[Track]:
        if query.kind is QueryKind.SEARCH:
            return self.search(query.text, limit=1)
        if query.kind not in self._query_kinds:
            raise UnsupportedUrlError()
        url = self.expand_short_link(query.text)
        options = self.options("metadata", flat_playlists=query.kind is not QueryKind.SOUNDCLOUD)
        info = self._extract(url, options)
        if _is_playlist(info):
            return [self._own(track) for track in self._playlist_tracks(info)]
        track = _track_from_info(info)
        if track is None:
            raise TrackUnavailableError()
        self._check_duration(track)
        return [self._own(track)]

    def search(self, terms: str, *, limit: int = 1) -> list[Track]:
        """Up to ``limit`` tracks for ``terms``; over-long results are left out."""
        options = self.options("metadata")
        options["playlistend"] = max(1, limit)
        info = self._extract(self._search_target(terms, limit), options)
        return self._playable(info, limit=limit, rename=True, empty=TrackNotFoundError())

    def _search_target(self, terms: str, limit: int) -> str:
        if limit <= 1:
            return f"{self._settings.search_prefix}{terms}"
        return f"ytsearch{limit}:{terms}"

    def _own(self, track: Track) -> Track:
        """The track as this source names it (``YouTubeMusicSource`` renames YouTube's results)."""
        return track

    def _playlist_tracks(self, info: Mapping[str, Any]) -> list[Track]:
        return self._playable(
            info,
            limit=self._settings.playlist_cap,
            rename=False,
            empty=TrackNotFoundError("That playlist has no playable tracks."),
        )

    def _playable(self, info: Mapping[str, Any], *, limit: int, rename: bool, empty: SourceError) -> list[Track]:
        """Up to ``limit`` entries of a search or playlist answer, leaving out over-long ones."""
        tracks: list[Track] = []
        too_long = 0
        for entry in _entries(info):
            track = _track_from_info(entry)
            if track is None:
                continue
            if track.duration_s is not None and track.duration_s > self._settings.max_track_seconds:
                too_long += 1
                continue
            tracks.append(self._own(track) if rename else track)
            if len(tracks) >= limit:
                break
        if not tracks:
            raise _too_long(self._settings) if too_long else empty
        if too_long:
            _log.info("skipped %s over-long entries", too_long)
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
        return self._stream(track)

    def _stream(self, track: Track) -> StreamInfo:
        url = check_track_url(track.url, self._settings)
        info = self._extract(url, self.options("stream"))
        if _is_playlist(info):
            entries = [entry for entry in _entries(info) if entry.get("url")]
            if not entries:
                raise TrackUnavailableError()
            info = entries[0]
        stream_url = info.get("url")
        if not isinstance(stream_url, str) or not stream_url:
            raise SourceError("I couldn't get a playable stream for that track right now.")
        try:
            netguard.check_stream_url(stream_url)
        except netguard.StreamUrlRefused as exc:
            _log.warning("refused the stream yt-dlp returned for %s: %s", track.source_id, exc)
            raise SourceError("I couldn't get a playable stream for that track right now.") from None
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
            proxy=ffmpeg_proxy(self._upstream_proxy()),
        )

    def _upstream_proxy(self) -> str | None:
        """The operator's upstream proxy yt-dlp used (the secret's, else ``proxy_url``), if any."""
        return self.operator.proxy or self._settings.proxy_url

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


class YouTubeSource(YtDlpSource):
    """YouTube links, YouTube search (``ytsearch``) and YouTube mixes (``list=RD<videoId>``, no sign-in)."""

    name = "youtube"
    handles = frozenset({"youtube"})
    can_mix = True
    _query_kinds = frozenset({QueryKind.YOUTUBE})

    def mixes(self, seed: Track) -> bool:
        # YouTube Music tracks are YouTube videos under another name.
        return seed.source in {"youtube", "ytmusic"} and bool(_VIDEO_ID_RE.fullmatch(seed.source_id))

    def mix(self, seed: Track, *, limit: int = 10) -> list[Track]:
        """The flat listing of the seed's mix: one request, no player, no per-track lookups."""
        if not self.mixes(seed):
            raise TrackNotFoundError("I can only start a mix from a YouTube track.")
        options = self.options("metadata")
        options["noplaylist"] = False
        options["playlistend"] = max(1, limit) + 1  # the mix starts with the seed itself
        info = self._extract(MIX_URL.format(id=seed.source_id), options)
        tracks: list[Track] = []
        for entry in _entries(info):
            track = _track_from_info(entry)
            if track is None or track.source_id == seed.source_id:
                continue
            if track.duration_s is not None and track.duration_s > self._settings.max_track_seconds:
                continue
            tracks.append(track)
            if len(tracks) >= limit:
                break
        if not tracks:
            raise TrackNotFoundError("YouTube had no mix for that track.")
        return tracks


class YouTubeMusicSource(YtDlpSource):
    """YouTube Music search, through yt-dlp's ``youtube:music:search_url`` extractor (songs section).

    yt-dlp has no ``ytmsearch:`` key; a ``https://music.youtube.com/search?q=…#songs`` URL lists
    songs flat, like a playlist. Its tracks are YouTube videos that this source names "ytmusic"
    and streams through ``music.youtube.com/watch`` links. It takes no links itself: music.youtube.com
    links are YouTube links. YouTube Music finds recordings by their ISRC, so it also answers
    ``find_by_isrc`` (the chain still checks each candidate's duration).
    """

    name = "ytmusic"
    handles = frozenset({"ytmusic"})
    can_isrc = True
    _query_kinds = frozenset()

    def _search_target(self, terms: str, limit: int) -> str:
        return f"https://music.youtube.com/search?q={quote_plus(terms)}#songs"

    def find_by_isrc(self, isrc: str, *, limit: int = 3) -> list[Track]:
        try:
            return self.search(isrc, limit=limit)
        except TrackNotFoundError:
            return []

    def _own(self, track: Track) -> Track:
        if track.source != "youtube":
            return track
        return replace(track, source=self.name, url=f"https://music.youtube.com/watch?v={track.source_id}")


class SoundCloudSource(YtDlpSource):
    """SoundCloud links and SoundCloud search (``scsearch``)."""

    name = "soundcloud"
    handles = frozenset({"soundcloud"})
    _query_kinds = frozenset({QueryKind.SOUNDCLOUD})

    def _search_target(self, terms: str, limit: int) -> str:
        return f"scsearch{max(1, limit)}:{terms}"


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
