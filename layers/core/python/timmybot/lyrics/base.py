"""The lyrics port: what a lyrics database must answer (``lrclib.LrclibClient`` is the adapter)."""

from __future__ import annotations

import abc

from timmybot.lyrics.models import Lyrics, LyricsQuery


class LyricsSource(abc.ABC):
    """A lyrics database. Methods raise ``LyricsUnavailableError`` when it cannot be reached."""

    @abc.abstractmethod
    def get(self, query: LyricsQuery) -> Lyrics | None:
        """The record matching the signature (track, artist, album, duration); None when none does."""

    @abc.abstractmethod
    def search(self, query: LyricsQuery) -> list[Lyrics]:
        """Records whose names resemble ``query``'s (its ``text`` when set), best first."""
