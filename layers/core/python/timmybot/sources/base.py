"""The Source port: where tracks come from.

A source declares what it can take — links of its own hosts (``accepts``), a text search
(``can_search``), a lookup by ISRC (``can_isrc``) — and the ``Track.source`` values it can
stream (``handles``). The chain (``timmybot.sources.chain``) tries sources in the configured order
and uses ``search`` for mirrors (title + artist, checked against the duration).
"""

from __future__ import annotations

import abc

from timmybot.errors import TrackNotFoundError
from timmybot.models import Track

from .models import Query, StreamInfo


class Source(abc.ABC):
    """One way of finding tracks (metadata, in the worker) and their audio (at play time, in the voice task)."""

    #: The source's name in ``SourceSettings.source_chain``, its breaker and its metrics.
    name: str = ""
    #: Values of ``Track.source`` this adapter can stream.
    handles: frozenset[str] = frozenset()
    #: It answers ``search`` (text search; also how the chain mirrors a track by title and artist).
    can_search: bool = False
    #: It answers ``find_by_isrc``.
    can_isrc: bool = False
    #: It answers ``mix`` (a radio of tracks like a seed: YouTube's ``list=RD<videoId>`` mixes).
    can_mix: bool = False

    def accepts(self, query: Query) -> bool:
        """Whether this source resolves ``query`` (a link of its hosts); searches go through ``search``."""
        return False

    @abc.abstractmethod
    def resolve(self, query: Query) -> list[Track]:
        """Metadata only: a link gives one track, a playlist up to ``playlist_cap``, a search one.

        Raises a ``SourceError`` subclass carrying the sentence for the user.
        """

    @abc.abstractmethod
    def stream(self, track: Track) -> StreamInfo:
        """A playable stream for ``track``, resolved now.

        The voice task calls it right before playing, and again if the stream answers 403 or
        ``StreamInfo.is_expired()``. Raises a ``SourceError`` subclass.
        """

    def stream_with(self, track: Track, *, quality: str = "high") -> StreamInfo:
        """``stream`` at a requester's quality ("high", or "data-saver": a capped bitrate); a source
        with one format to offer ignores it."""
        return self.stream(track)

    def search(self, terms: str, *, limit: int = 1) -> list[Track]:
        """Up to ``limit`` tracks for ``terms``, best first (metadata only). ``TrackNotFoundError`` if none."""
        raise TrackNotFoundError()

    def find_by_isrc(self, isrc: str, *, limit: int = 3) -> list[Track]:
        """Candidates for a recording's ISRC, best first; the chain still checks their duration."""
        return []

    def mixes(self, seed: Track) -> bool:
        """Whether ``mix`` takes ``seed`` as it is (otherwise the chain mirrors the seed here first)."""
        return self.can_mix and seed.source in self.handles

    def mix(self, seed: Track, *, limit: int = 10) -> list[Track]:
        """Up to ``limit`` tracks of the radio seeded by ``seed`` (one of this source's own tracks),
        the seed itself left out. Metadata only; ``TrackNotFoundError`` if there is no such radio."""
        raise TrackNotFoundError("I couldn't find a mix for that track.")
