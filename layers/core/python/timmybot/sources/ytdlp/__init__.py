"""The yt-dlp adapter: YouTube, YouTube Music and SoundCloud.

``yt_dlp`` is imported inside methods only: the api Lambda imports this package (for the URL
policy) and must never pay for yt-dlp. Every yt-dlp option is built by ``build_ytdl_options``
(``options``) and every yt-dlp failure is translated by ``map_ytdlp_error`` through the one table
``ERROR_RULES`` (``errors``); ``info`` reads yt-dlp's answers into tracks, and ``source`` holds
the sources and the one place yt-dlp runs.

JavaScript: current yt-dlp solves YouTube's player challenges with an external JS runtime (deno by
default; ``SourceSettings.js_runtimes`` selects others) plus the yt-dlp-ejs scripts. Stream
resolution of YouTube needs it for most clients; metadata does not (``ignore_no_formats_error``),
and flat playlist/search listings never load the player. Remote JS components are never fetched.
"""

from __future__ import annotations

from .errors import ERROR_RULES, map_ytdlp_error
from .options import (
    SITE_EXTRACTORS,
    SOUNDCLOUD_EXTRACTORS,
    STREAM_FORMAT,
    YOUTUBE_EXTRACTORS,
    build_ytdl_options,
    ffmpeg_proxy,
    operator_urls,
)
from .source import MIX_URL, SoundCloudSource, YouTubeMusicSource, YouTubeSource, YtDlpSource

__all__ = [
    "ERROR_RULES",
    "MIX_URL",
    "SITE_EXTRACTORS",
    "SOUNDCLOUD_EXTRACTORS",
    "STREAM_FORMAT",
    "YOUTUBE_EXTRACTORS",
    "SoundCloudSource",
    "YouTubeMusicSource",
    "YouTubeSource",
    "YtDlpSource",
    "build_ytdl_options",
    "ffmpeg_proxy",
    "map_ytdlp_error",
    "operator_urls",
]
