"""Sources: metadata resolution (worker), stream resolution (voice task) and the /play URL policy.

Importing this package is cheap: yt-dlp is imported only when a yt-dlp source actually runs.
"""

from __future__ import annotations

from .base import Source
from .breaker import BreakerState, CircuitBreaker, MemoryRecords, SpreadRule
from .chain import SourceChain
from .failures import Reason, Scope, failure_of
from .local import LocalMediaSource
from .models import DEFAULT_SOURCE_CHAIN, Query, QueryKind, SourceSettings, StreamInfo
from .operator import OperatorSources, operator_sources
from .policy import ALLOWED_HOSTS, check_track_url, check_url, classify_query
from .router import mirror_track, mix_for, resolve_query, stream_for
from .ytdlp import (
    SITE_EXTRACTORS,
    SoundCloudSource,
    YouTubeMusicSource,
    YouTubeSource,
    YtDlpSource,
    build_ytdl_options,
    map_ytdlp_error,
)

__all__ = [
    "ALLOWED_HOSTS",
    "DEFAULT_SOURCE_CHAIN",
    "SITE_EXTRACTORS",
    "BreakerState",
    "CircuitBreaker",
    "LocalMediaSource",
    "MemoryRecords",
    "OperatorSources",
    "Query",
    "QueryKind",
    "Reason",
    "Scope",
    "SoundCloudSource",
    "Source",
    "SourceChain",
    "SourceSettings",
    "SpreadRule",
    "StreamInfo",
    "YouTubeMusicSource",
    "YouTubeSource",
    "YtDlpSource",
    "build_ytdl_options",
    "check_track_url",
    "check_url",
    "classify_query",
    "failure_of",
    "map_ytdlp_error",
    "mirror_track",
    "mix_for",
    "operator_sources",
    "resolve_query",
    "stream_for",
]
