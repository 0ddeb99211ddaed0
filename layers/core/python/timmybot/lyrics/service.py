"""The look-up rules and the store cache: signature first, then search picked by duration.

``find_lyrics`` asks the source by signature (LRCLIB matches the duration within about 2 s), and on
a miss searches by names and picks the record whose names match and whose duration fits: a video
may run longer than the song by up to ``slack_s`` (intros, outros, a spoken part) and shorter by
``EARLY_S`` at most. With no duration that fits, the closest matching record is taken for its
words, and marked as not in time (``LyricsResult.in_time``: the card shows synced lines only for
records within ``SYNC_TOLERANCE_S``). A free-text query (``/lyrics query:``) searches only.

``lookup`` caches every answer, hits for ``lyrics_cache_ttl_s`` and misses for
``lyrics_miss_ttl_s``, under ``keys.lyrics_pk(lookup_digest)``: the worker fills it for /lyrics,
the voice task reads (and, when the card shows synced lines, fills) it, and the api reads it for
the page buttons. A service that cannot be reached is not cached.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from timmybot.lyrics.models import Lyrics, LyricsQuery
from timmybot.lyrics.names import fold, names_match
from timmybot.store.keys import LYRICS_SK, lyrics_pk

if TYPE_CHECKING:
    from timmybot.lyrics.base import LyricsSource
    from timmybot.models import Track
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

EARLY_S = 5.0  # a video this much shorter than the record still fits (a faded ending)
SYNC_TOLERANCE_S = 3.0  # synced lines are used only for a record this close to the track's length
DEFAULT_SLACK_S = 30.0


@dataclass(frozen=True, slots=True)
class LyricsResult:
    """One look-up's answer, as cached: ``digest`` names its record (the page buttons carry it)."""

    digest: str
    asked: str
    lyrics: Lyrics | None
    how: str = ""  # "signature" or "search"; "" for a miss
    in_time: bool = False  # the record's duration fits the track's, so its synced lines follow it

    @property
    def found(self) -> bool:
        return self.lyrics is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "lyrics": self.lyrics.to_dict() if self.lyrics is not None else None,
            "how": self.how,
            "in_time": self.in_time,
        }

    @classmethod
    def from_dict(cls, digest: str, data: Mapping[str, Any]) -> LyricsResult:
        raw = data.get("lyrics")
        return cls(
            digest=digest,
            asked=str(data.get("asked") or ""),
            lyrics=Lyrics.from_dict(raw) if isinstance(raw, Mapping) else None,
            how=str(data.get("how") or ""),
            in_time=bool(data.get("in_time")),
        )


def lookup_digest(kind: str, *parts: str) -> str:
    """32 hex naming one look-up: ``("track", source, id)`` or ``("text", words)``."""
    return hashlib.sha256("\x00".join((kind, *parts)).encode()).hexdigest()[:32]


def track_digest(track: Track) -> str:
    return lookup_digest("track", track.source, track.source_id)


def text_digest(words: str) -> str:
    return lookup_digest("text", fold(words))


def find_lyrics(
    source: LyricsSource, query: LyricsQuery, *, slack_s: float = DEFAULT_SLACK_S
) -> tuple[Lyrics | None, str, bool]:
    """(record, how, in time) for ``query``; (None, "", False) when nothing fits."""
    if query.text is None:
        hit = source.get(query)
        if hit is not None and (hit.has_words or hit.instrumental):
            return hit, "signature", True
    pick = choose(query, source.search(query), slack_s=slack_s)
    if pick is None and query.text is None and query.artist:
        # By names found nothing: LRCLIB's free-text search also looks in the other fields.
        wider = LyricsQuery(text=f"{query.artist} {query.track}")
        pick = choose(query, source.search(wider), slack_s=slack_s)
    if pick is None:
        return None, "", False
    return pick, "search", _in_time(query, pick, SYNC_TOLERANCE_S)


def choose(query: LyricsQuery, candidates: Sequence[Lyrics], *, slack_s: float) -> Lyrics | None:
    """The candidate for ``query``: names that match, then the duration that fits best."""
    usable = [c for c in candidates if c.has_words or c.instrumental]
    if query.text is not None and not query.track:
        return usable[0] if usable else None
    matching = [c for c in usable if names_match(query, c.track_name, c.artist_name)]
    if query.text is not None and not query.artist:
        matching = matching or usable  # the user's own words: LRCLIB's order is the best guess
    if not matching:
        return None
    if query.duration_s is None:
        return matching[0]
    timed = [c for c in matching if c.duration_s is not None]
    fitting = [c for c in timed if _fits(query.duration_s, c.duration_s, slack_s)]
    pool = fitting or timed or matching
    return min(pool, key=lambda c: (_gap(query.duration_s, c.duration_s), c.synced is None))


def _gap(duration_s: int | None, record_s: float | None) -> float:
    if duration_s is None or record_s is None:
        return float("inf")
    return abs(duration_s - record_s)


def _fits(duration_s: float, record_s: float | None, slack_s: float) -> bool:
    if record_s is None:
        return False
    over = duration_s - record_s
    return -EARLY_S <= over <= slack_s


def _in_time(query: LyricsQuery, record: Lyrics, tolerance_s: float) -> bool:
    return query.duration_s is not None and _gap(query.duration_s, record.duration_s) <= tolerance_s


# ---------------------------------------------------------------------- the cache
def cached(store: Store, digest: str) -> LyricsResult | None:
    """The cached answer for ``digest``; None when absent, expired or unreadable."""
    record = store.get_record(lyrics_pk(digest), LYRICS_SK)
    if record is None:
        return None
    try:
        return LyricsResult.from_dict(digest, record)
    except (KeyError, TypeError, ValueError):
        _log.warning("lyrics cache record %s is malformed; ignoring it", digest)
        return None


def lookup(
    store: Store,
    source: LyricsSource,
    digest: str,
    query: LyricsQuery,
    *,
    hit_ttl_s: float,
    miss_ttl_s: float,
    slack_s: float = DEFAULT_SLACK_S,
) -> LyricsResult:
    """The cached answer, or a fresh one (then cached). ``LyricsUnavailableError`` propagates."""
    known = cached(store, digest)
    if known is not None:
        return known
    if query.usable:
        lyrics, how, in_time = find_lyrics(source, query, slack_s=slack_s)
    else:
        lyrics, how, in_time = None, "", False
    result = LyricsResult(digest=digest, asked=query.label, lyrics=lyrics, how=how, in_time=in_time)
    data = result.to_dict()
    ttl = hit_ttl_s if lyrics is not None else miss_ttl_s
    store.update_record(lyrics_pk(digest), LYRICS_SK, lambda _current: data, ttl_s=ttl)
    _log.info("lyrics %s: %s", digest, how or "none found")
    return result
