"""Every yt-dlp option we pass (``build_ytdl_options``): the site-extractor allowlist, the audio
format, operator credentials and the network guard as proxy. Pure: no yt-dlp import."""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from timmybot import netguard

from ..models import SourceSettings
from ..operator import OperatorSources, redact

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
#: A requester's "data-saver" quality (/preferences): the best audio at or under
#: ``DATA_SAVER_ABR_KBPS``, Opus first; when no format says its bitrate, the smallest audio.
DATA_SAVER_ABR_KBPS = 64
DATA_SAVER_FORMAT = (
    f"bestaudio[acodec=opus][abr<={DATA_SAVER_ABR_KBPS}]/bestaudio[abr<={DATA_SAVER_ABR_KBPS}]/worstaudio/worst"
)
STREAM_FORMATS = {"high": STREAM_FORMAT, "data-saver": DATA_SAVER_FORMAT}


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
    quality: str = "high",
) -> dict[str, Any]:
    """All yt-dlp options we ever use; pure, so the policy can be tested without network.

    ``metadata`` lists playlists flat (one request per page, not per track) and tolerates missing
    formats; ``stream`` selects one audio format, opus first (``quality`` "data-saver": capped, see
    ``STREAM_FORMATS``). ``flat_playlists=False`` resolves each
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
        options["format"] = STREAM_FORMATS.get(quality, STREAM_FORMAT)
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
