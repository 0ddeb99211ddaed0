"""The Source port: where tracks come from."""

from __future__ import annotations

import abc

from .models import Query, StreamInfo, Track


class Source(abc.ABC):
    """One way of finding tracks (metadata, in the worker) and their audio (at play time, in the voice task)."""

    #: Values of ``Track.source`` this adapter can stream.
    handles: frozenset[str] = frozenset()

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
