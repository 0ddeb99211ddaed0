"""Value types of the sources package: settings, tracks, stream descriptions and classified queries.

Everything here is plain data: no network, no yt-dlp, cheap to import on the Lambda fast path.
"""

from __future__ import annotations

import enum
import shlex
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

# ffmpeg protocols a remote stream needs: HTTPS (and HLS segments over it, possibly AES-encrypted).
REMOTE_PROTOCOL_WHITELIST = "https,tls,tcp,crypto"
# Test/demo-only loopback media server.
LOCAL_PROTOCOL_WHITELIST = "http,tcp,file"
# FFmpeg tunnels https through a proxy (the network guard) with its ``httpproxy`` protocol.
PROXY_PROTOCOL = "httpproxy"

# The default order of sources when a request can go to more than one: YouTube first, then
# YouTube Music search, then SoundCloud search.
DEFAULT_SOURCE_CHAIN: tuple[str, ...] = ("youtube", "ytmusic", "soundcloud")
# Names a deployed configuration may put in ``source_chain``; "local" and test-only sources
# ("package.module:factory") are accepted only with ``allow_local_media``.
BUILTIN_SOURCES = frozenset({"youtube", "ytmusic", "soundcloud", "local"})
# A stream URL is treated as expired this many seconds before YouTube's own deadline, so a track
# that starts just before expiry does not die mid-song.
EXPIRY_MARGIN_S = 60.0


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """Typed knobs of the sources package; the process-wide settings object embeds one.

    ``allow_local_media`` opens the policy to ``http://<local_media_hosts>:<port>/`` URLs. It exists
    for tests and the offline demo only and must never be true in a deployed configuration.
    ``cookies_path``, ``proxy_url`` and ``js_runtimes`` are operator-level (bot-wide) source
    credentials/tools; they are never user OAuth tokens and are never logged. The operator secret
    (``source_secret_id`` in Secrets Manager, or ``source_secret_file`` for self-hosters) adds
    cookies, a proxy, a PO-token provider and player clients; see ``timmybot.sources.operator``.

    ``source_chain`` orders the sources tried for searches, mirrors and fallbacks. Where breaker
    state lives is not a setting: each process's bootstrap gives the chain its one Store
    (``SourceChain.over_store``), so every Lambda and voice task sees the same state.
    """

    allow_local_media: bool = False
    local_media_hosts: tuple[str, ...] = ("127.0.0.1",)
    playlist_cap: int = 100
    #: Page requests one walk over an external list may make (``timmybot.library.paging``).
    list_page_cap: int = 10
    max_track_seconds: int = 3 * 3600
    max_query_chars: int = 200
    search_prefix: str = "ytsearch1:"
    socket_timeout_s: float = 15.0
    cookies_path: str | None = field(default=None, repr=False)
    proxy_url: str | None = field(default=None, repr=False)
    js_runtimes: tuple[str, ...] = ()
    source_chain: tuple[str, ...] = DEFAULT_SOURCE_CHAIN
    mirror_tolerance_s: int = 3
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 300.0
    #: Per-track failures count against a source only when one reason hits this many distinct
    #: tracks from this many distinct guilds within the window (``breaker.SpreadRule``).
    breaker_spread_tracks: int = 3
    breaker_spread_guilds: int = 2
    breaker_spread_window_s: float = 300.0
    aws_region: str = ""
    aws_endpoint_url: str = ""
    source_secret_id: str = ""
    source_secret_file: str = ""
    #: Spotify metadata for /play links (``timmybot.library.spotify``): the Web API base, the token URL and
    #: the app's client credentials. Spotify gives metadata only; its tracks are mirrored at play time.
    spotify_api_url: str = "https://api.spotify.com/v1"
    spotify_token_url: str = "https://accounts.spotify.com/api/token"  # noqa: S105 - a URL, not a secret
    spotify_client_id: str = ""
    spotify_client_secret: str = field(default="", repr=False)
    #: Where the worker follows ``spotify.link/<code>`` share links
    #: (``timmybot.library.spotify_links.follow_share_link``).
    spotify_link_url: str = "https://spotify.link"

    def __post_init__(self) -> None:
        if self.playlist_cap < 1:
            raise ValueError("playlist_cap must be at least 1")
        if self.list_page_cap < 1:
            raise ValueError("list_page_cap must be at least 1")
        if self.max_track_seconds < 1:
            raise ValueError("max_track_seconds must be at least 1")
        if self.max_query_chars < 1:
            raise ValueError("max_query_chars must be at least 1")
        if not self.search_prefix.endswith(":"):
            raise ValueError("search_prefix must end with ':' (e.g. 'ytsearch1:')")
        if self.socket_timeout_s <= 0:
            raise ValueError("socket_timeout_s must be positive")
        self._check_chain()
        if self.mirror_tolerance_s < 0:
            raise ValueError("mirror_tolerance_s must not be negative")
        if self.breaker_threshold < 1:
            raise ValueError("breaker_threshold must be at least 1")
        if self.breaker_cooldown_s <= 0:
            raise ValueError("breaker_cooldown_s must be positive")
        if self.breaker_spread_tracks < 1 or self.breaker_spread_guilds < 1 or self.breaker_spread_window_s <= 0:
            raise ValueError("breaker_spread_tracks and breaker_spread_guilds must be at least 1, the window positive")
        if self.source_secret_id and self.source_secret_file:
            raise ValueError("set source_secret_id or source_secret_file, not both")

    def _check_chain(self) -> None:
        if not self.source_chain:
            raise ValueError("source_chain must name at least one source")
        if len(set(self.source_chain)) != len(self.source_chain):
            raise ValueError("source_chain names a source twice")
        for name in self.source_chain:
            if is_test_source_name(name) or name == "local":
                if not self.allow_local_media:
                    raise ValueError(
                        f"source_chain entry {name!r} is test/demo-only: it needs allow_local_media, "
                        "which a deployed configuration never sets"
                    )
            elif name not in BUILTIN_SOURCES:
                raise ValueError(
                    f"unknown source {name!r} in source_chain (known: {', '.join(sorted(BUILTIN_SOURCES))})"
                )


def is_test_source_name(name: str) -> bool:
    """A ``package.module:factory`` entry of ``source_chain`` (tests and the demo only)."""
    return ":" in name


class QueryKind(enum.Enum):
    """What a /play argument turned out to be."""

    SEARCH = "search"
    YOUTUBE = "youtube"
    SOUNDCLOUD = "soundcloud"
    SPOTIFY_TRACK = "spotify_track"
    SPOTIFY_ALBUM = "spotify_album"
    SPOTIFY_PLAYLIST = "spotify_playlist"
    #: A ``spotify.link/<code>`` share link: ``source_id`` is the code; the worker follows it.
    SPOTIFY_LINK = "spotify_link"
    LOCAL = "local"

    @property
    def is_spotify(self) -> bool:
        return self in {
            QueryKind.SPOTIFY_TRACK,
            QueryKind.SPOTIFY_ALBUM,
            QueryKind.SPOTIFY_PLAYLIST,
            QueryKind.SPOTIFY_LINK,
        }


@dataclass(frozen=True, slots=True)
class Query:
    """A classified, policy-checked /play argument.

    ``text`` is the search terms for SEARCH and the normalized URL otherwise. ``source_id`` is the
    platform id when it can be read from the URL without any network (YouTube video id, Spotify id),
    so a caller can consult the track cache before resolving.
    """

    kind: QueryKind
    text: str
    source_id: str | None = None

    @property
    def is_url(self) -> bool:
        return self.kind is not QueryKind.SEARCH


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """Where the voice task reads audio for one track, valid until ``expires_at`` (epoch seconds)."""

    stream_url: str
    http_headers: dict[str, str] = field(default_factory=dict, repr=False)
    codec: str | None = None
    container: str | None = None
    expires_at: float | None = None
    duration_s: int | None = None
    local: bool = False
    #: The chain source that produced this stream, and the one it stood in for (None: no fallback).
    source: str | None = None
    fallback_from: str | None = None
    #: The forward proxy FFmpeg must open this stream through: the operator's upstream proxy when
    #: yt-dlp used one (YouTube binds stream URLs to the extracting address); None: the network guard.
    proxy: str | None = field(default=None, repr=False)

    @property
    def is_opus(self) -> bool:
        return self.codec is not None and self.codec.lower() == "opus"

    def is_expired(self, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        current = time.time() if now is None else now
        return current >= self.expires_at - EXPIRY_MARGIN_S

    def ffmpeg_before_options(self, *, proxy: str | None = None, ca_file: str | None = None) -> str:
        """ffmpeg input options: reconnects, the protocols it may open, and the request headers.

        ``proxy`` (the network guard, or the operator's upstream proxy) becomes ``-http_proxy``:
        FFmpeg then sends every request, redirects and HLS segments included, through it, and
        tunnels https with its ``httpproxy`` protocol. ``ca_file`` turns on ``-tls_verify 1``
        against that bundle for remote (https) streams. The result is a shell-quoted string
        (discord.py splits ``before_options`` with ``shlex``).
        """
        whitelist = LOCAL_PROTOCOL_WHITELIST if self.local else REMOTE_PROTOCOL_WHITELIST
        if proxy and not self.local:
            whitelist = f"{whitelist},{PROXY_PROTOCOL}"
        parts = [
            "-reconnect",
            "1",
            "-reconnect_streamed",
            "1",
            "-reconnect_delay_max",
            "5",
            "-protocol_whitelist",
            whitelist,
        ]
        if proxy:
            parts += ["-http_proxy", proxy]
        if ca_file and not self.local:
            parts += ["-tls_verify", "1", "-ca_file", ca_file]
        header_block = "".join(
            f"{name}: {value}\r\n" for name, value in self.http_headers.items() if _is_safe_header(name, value)
        )
        if header_block:
            parts += ["-headers", header_block]
        return " ".join(shlex.quote(part) for part in parts)


def expiry_from_url(url: str) -> float | None:
    """YouTube stream URLs carry their deadline as ``expire=<epoch>`` (query or ``/expire/<n>/`` path)."""
    parts = urlsplit(url)
    values = parse_qs(parts.query).get("expire")
    candidate: str | None = values[0] if values else None
    if candidate is None:
        segments = parts.path.split("/")
        for index, segment in enumerate(segments[:-1]):
            if segment == "expire":
                candidate = segments[index + 1]
                break
    if candidate is None or not candidate.isdigit():
        return None
    return float(candidate)


def _is_safe_header(name: str, value: str) -> bool:
    forbidden = ("\r", "\n", "\0")
    return bool(name) and ":" not in name and not any(c in name or c in value for c in forbidden)
