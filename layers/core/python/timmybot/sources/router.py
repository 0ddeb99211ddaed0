"""Entry points: classify a /play argument, resolve it through the chain, stream a queued track.

The worker calls ``resolve_query`` and the voice task ``stream_for``, each with the one
``SourceChain`` its process's bootstrap built over its Store (``SourceChain.over_store``).
``mirror_track`` is the entry point for mirroring a track known
only by its metadata (Spotify). Each names the guild that asks (``guild_id``), so a per-track
failure counts against a source only when it spreads across guilds (docs/SOURCES.md).
"""

from __future__ import annotations

import logging

from timmybot import netguard
from timmybot.errors import SourceError
from timmybot.models import Track

from .chain import SourceChain
from .models import StreamInfo

_log = logging.getLogger(__name__)


def resolve_query(text: str, chain: SourceChain, *, guild_id: str | None = None) -> list[Track]:
    """Worker entry point: a /play argument to tracks (metadata only). Raises ``TimmyError`` subclasses.

    A track found by a stand-in source has ``fallback_from`` set (the source that refused).
    """
    return chain.resolve_text(text, guild_id=guild_id)


def search_results(
    terms: str, chain: SourceChain, *, limit: int = 10, only: str | None = None, guild_id: str | None = None
) -> list[Track]:
    """Worker entry point of /search: up to ``limit`` results for ``terms``, in the source's order."""
    return chain.search_results(terms, limit=limit, only=only, guild_id=guild_id)


def stream_for(track: Track, chain: SourceChain, guild_id: str | None = None, quality: str = "high") -> StreamInfo:
    """Voice-task entry point: a fresh stream for a queued track. Raises ``SourceError`` subclasses.

    ``StreamInfo.source`` names the source that serves it; ``fallback_from`` is set when that is a
    stand-in for the track's own source. Whatever source produced it, the stream URL passes
    ``netguard.check_stream_url`` (https, no control characters, no refused IP literal) before
    FFmpeg may open it.
    """
    stream = chain.stream(track, guild_id=guild_id, quality=quality)
    try:
        netguard.check_stream_url(stream.stream_url)
    except netguard.StreamUrlRefused as exc:
        _log.warning("refused the %s stream of track %r: %s", stream.source or track.source, track.source_id, exc)
        raise SourceError("I couldn't get a playable stream for that track right now.") from None
    return stream


def mirror_track(
    title: str,
    artist: str | None,
    duration_s: int | None,
    isrc: str | None,
    chain: SourceChain,
    *,
    guild_id: str | None = None,
) -> Track:
    """The same recording on a playable source: ISRC first, then title + artist within ± the tolerance."""
    return chain.mirror(title, artist, duration_s, isrc, guild_id=guild_id)


def mix_for(seed: Track, chain: SourceChain, *, limit: int = 10, guild_id: str | None = None) -> list[Track]:
    """A radio around ``seed`` (YouTube mix), the seed left out; metadata only (worker and voice task)."""
    return chain.mix(seed, limit=limit, guild_id=guild_id)
