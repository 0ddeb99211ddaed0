"""Sources: metadata resolution (worker), stream resolution (voice task) and the /play URL policy.

Importing this package is cheap: yt-dlp is imported only when a yt-dlp source actually runs.
"""

from __future__ import annotations

from .base import Source
from .local import LocalMediaSource
from .models import Query, QueryKind, SourceSettings, StreamInfo, Track
from .policy import ALLOWED_HOSTS, check_track_url, check_url, classify_query
from .router import SourceRouter, default_router, resolve_query, stream_for
from .ytdlp import SITE_EXTRACTORS, YtDlpSource, build_ytdl_options, map_ytdlp_error

__all__ = [
    "ALLOWED_HOSTS",
    "SITE_EXTRACTORS",
    "LocalMediaSource",
    "Query",
    "QueryKind",
    "Source",
    "SourceRouter",
    "SourceSettings",
    "StreamInfo",
    "Track",
    "YtDlpSource",
    "build_ytdl_options",
    "check_track_url",
    "check_url",
    "classify_query",
    "default_router",
    "map_ytdlp_error",
    "resolve_query",
    "stream_for",
]
