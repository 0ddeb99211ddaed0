"""The yt-dlp sources: YouTube, YouTube Music and SoundCloud, and the one place yt-dlp runs.

``yt_dlp`` is imported inside methods only (``_extract``, ``_default_ydl_factory``): the api Lambda
imports this package (for the URL policy) and must never pay for yt-dlp.
"""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import quote_plus

from timmybot import netguard
from timmybot.errors import SourceError, TrackNotFoundError, TrackUnavailableError, UnsupportedUrlError
from timmybot.models import Track

from ..base import Source
from ..models import Query, QueryKind, SourceSettings, StreamInfo, expiry_from_url
from ..operator import OperatorSources, operator_sources
from ..policy import SOUNDCLOUD_HOSTS, check_track_url, check_url
from .errors import map_ytdlp_error
from .info import int_or_none, is_playlist, playlist_entries, str_or_none, too_long_error, track_from_info
from .options import build_ytdl_options, ffmpeg_proxy

_log = logging.getLogger(__name__)

# A YouTube mix: the radio YouTube builds around one video; it needs no sign-in.
MIX_URL = "https://www.youtube.com/watch?v={id}&list=RD{id}"
_VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
#: YouTube Music candidates of one ISRC read in full (each one metadata request).
ISRC_DETAILS = 3


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

    def options(
        self, purpose: Literal["metadata", "stream"], *, flat_playlists: bool = True, quality: str = "high"
    ) -> dict[str, Any]:
        """The yt-dlp options this adapter passes for ``purpose``, operator credentials included."""
        return build_ytdl_options(
            self._settings, purpose=purpose, flat_playlists=flat_playlists, operator=self.operator, quality=quality
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
        if is_playlist(info):
            return [self._own(track) for track in self._playlist_tracks(info)]
        track = track_from_info(info)
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
        for entry in playlist_entries(info):
            track = track_from_info(entry)
            if track is None:
                continue
            if track.duration_s is not None and track.duration_s > self._settings.max_track_seconds:
                too_long += 1
                continue
            tracks.append(self._own(track) if rename else track)
            if len(tracks) >= limit:
                break
        if not tracks:
            raise too_long_error(self._settings) if too_long else empty
        if too_long:
            _log.info("skipped %s over-long entries", too_long)
        return tracks

    def _check_duration(self, track: Track) -> None:
        if track.duration_s is not None and track.duration_s > self._settings.max_track_seconds:
            raise too_long_error(self._settings)

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
        return self.stream_with(track)

    def stream_with(self, track: Track, *, quality: str = "high") -> StreamInfo:
        if track.source not in self.handles:
            raise SourceError(f"I can't stream tracks from {track.source} with this source.")
        return self._stream(track, quality)

    def _stream(self, track: Track, quality: str = "high") -> StreamInfo:
        url = check_track_url(track.url, self._settings)
        info = self._extract(url, self.options("stream", quality=quality))
        if is_playlist(info):
            entries = [entry for entry in playlist_entries(info) if entry.get("url")]
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
        codec = str_or_none(info.get("acodec"))
        if codec == "none":
            codec = None
        return StreamInfo(
            stream_url=stream_url,
            http_headers={str(key): str(value) for key, value in dict(headers).items()},
            codec=codec,
            container=str_or_none(info.get("audio_ext"))
            if info.get("audio_ext") not in (None, "none")
            else str_or_none(info.get("ext")),
            expires_at=expiry_from_url(stream_url),
            duration_s=int_or_none(info.get("duration")) or track.duration_s,
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
        for entry in playlist_entries(info):
            track = track_from_info(entry)
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
        """The songs YouTube Music lists for ``isrc``, each read in full (one metadata request per
        candidate, at most ``ISRC_DETAILS``): the search lists a song's title and id only, and the
        chain checks a hit's title, artist and duration before it trusts it."""
        try:
            found = self.search(isrc, limit=min(limit, ISRC_DETAILS))
        except TrackNotFoundError:
            return []
        detailed: list[Track] = []
        for track in found:
            try:
                detailed.append(self._detailed(track))
            except (TrackNotFoundError, TrackUnavailableError):
                _log.info("YouTube Music candidate %s for an ISRC is unavailable", track.source_id)
        return detailed

    def _detailed(self, track: Track) -> Track:
        if track.duration_s is not None and track.artist is not None:
            return track
        info = self._extract(check_track_url(track.url, self._settings), self.options("metadata"))
        full = track_from_info(info)
        return self._own(full) if full is not None else track

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
