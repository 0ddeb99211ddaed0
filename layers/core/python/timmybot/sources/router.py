"""Entry points: classify a /play argument, dispatch it to the right source, stream a queued track."""

from __future__ import annotations

import functools

from timmybot.errors import SourceError, SpotifyNotYetSupportedError, UnsupportedUrlError

from .base import Source
from .models import Query, QueryKind, SourceSettings, StreamInfo, Track
from .policy import classify_query


class SourceRouter:
    """Holds one adapter per source family; adapters are built on first use (yt-dlp stays unimported)."""

    def __init__(
        self,
        settings: SourceSettings,
        *,
        ytdlp: Source | None = None,
        local: Source | None = None,
    ) -> None:
        self._settings = settings
        self._ytdlp = ytdlp
        self._local = local

    @property
    def settings(self) -> SourceSettings:
        return self._settings

    def classify(self, text: str) -> Query:
        return classify_query(text, self._settings)

    def resolve_text(self, text: str) -> list[Track]:
        return self.resolve(self.classify(text))

    def resolve(self, query: Query) -> list[Track]:
        if query.kind.is_spotify:
            raise SpotifyNotYetSupportedError()
        if query.kind is QueryKind.LOCAL:
            return self._local_source().resolve(query)
        return self._ytdlp_source().resolve(query)

    def stream(self, track: Track) -> StreamInfo:
        if track.source == "spotify":
            raise SpotifyNotYetSupportedError()
        if track.source == "local":
            return self._local_source().stream(track)
        if track.source in {"youtube", "soundcloud"}:
            return self._ytdlp_source().stream(track)
        raise SourceError(f"I don't know how to play tracks from {track.source!r}.")

    def _ytdlp_source(self) -> Source:
        if self._ytdlp is None:
            from .ytdlp import YtDlpSource  # noqa: PLC0415 - cheap, but keeps this module tiny

            self._ytdlp = YtDlpSource(self._settings)
        return self._ytdlp

    def _local_source(self) -> Source:
        if not self._settings.allow_local_media:
            raise UnsupportedUrlError()
        if self._local is None:
            from .local import LocalMediaSource  # noqa: PLC0415

            self._local = LocalMediaSource(self._settings)
        return self._local


@functools.lru_cache(maxsize=8)
def default_router(settings: SourceSettings) -> SourceRouter:
    """One router per settings value and process (settings are frozen, hence hashable)."""
    return SourceRouter(settings)


def resolve_query(text: str, settings: SourceSettings) -> list[Track]:
    """Worker entry point: a /play argument to tracks (metadata only). Raises ``TimmyError`` subclasses."""
    return default_router(settings).resolve_text(text)


def stream_for(track: Track, settings: SourceSettings) -> StreamInfo:
    """Voice-task entry point: a fresh stream for a queued track. Raises ``SourceError`` subclasses."""
    return default_router(settings).stream(track)
