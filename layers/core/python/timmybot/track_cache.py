"""The track metadata cache in front of /play's resolves (BRIEF §4.7): 7 days, per link or query.

A /play of one track asks the sources for metadata once; the same link or query again within
``Settings.track_cache_ttl_s`` (7 days) is answered from the store, with no source call. An entry
past its TTL reads as absent, even before DynamoDB's TTL sweep deletes it (``Store._fresh``).

Keys (all of the registry's "track cache" kind, ``T#{source}#{id}`` / ``TRACK``):

- a YouTube link, or a Spotify track link: the track's own key (``youtube``/``spotify`` and its id),
  which every single-track resolve also writes;
- any other single-track link: ``T#link#<digest of the link>``;
- a search: ``T#search#<digest of the source order and the words>``, so a user whose preferred
  platform puts another source first does not get another user's answer.

Each lookup counts as a hit or a miss (``TrackCacheLookups``, dimension ``result``): the hit rate is
hits / (hits + misses), docs/ARCHITECTURE.md has the metric math.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from timmybot import metrics
from timmybot.models import Track
from timmybot.sources.models import Query, QueryKind
from timmybot.store.keys import TRACK_SK, track_pk

if TYPE_CHECKING:
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

HIT = "hit"
MISS = "miss"
#: The Query kinds whose id is the track's own cache key.
_OWN_KEYS = {QueryKind.YOUTUBE: "youtube", QueryKind.SPOTIFY_TRACK: "spotify"}


def cache_key(query: Query, order: Sequence[str]) -> tuple[str, str] | None:
    """Where the answer to ``query`` is cached (None: not cached, e.g. playlists and albums)."""
    own = _OWN_KEYS.get(query.kind)
    if own is not None and query.source_id:
        return own, query.source_id
    if query.kind is QueryKind.SEARCH:
        return "search", _digest(",".join(order), query.text.casefold())
    if query.kind in (QueryKind.SOUNDCLOUD, QueryKind.LOCAL):
        return "link", _digest(query.text)
    return None


def lookup(store: Store, query: Query, order: Sequence[str]) -> Track | None:
    """The cached track answering ``query``, or None (unreadable counts as a miss)."""
    key = cache_key(query, order)
    if key is None:
        return None
    try:
        track = _read(store, key)
    except Exception:
        _log.warning("track cache unreadable for %s", key[0], exc_info=True)
        track = None
    metrics.emit(metrics.TRACK_CACHE_LOOKUPS, dimensions={"result": HIT if track is not None else MISS})
    return track


def remember(store: Store, query: Query, order: Sequence[str], track: Track, *, ttl_s: float) -> None:
    """Keep ``track`` as the answer to ``query`` and under its own key; a failed write is logged."""
    try:
        store.put_cached_track(track, ttl_s=ttl_s)
        key = cache_key(query, order)
        if key is not None and key != track.cache_key:
            data = track.to_dict()
            store.update_record(track_pk(*key), TRACK_SK, lambda _current: data, ttl_s=ttl_s)
    except Exception:
        _log.warning("could not cache track %s/%s", track.source, track.source_id, exc_info=True)


def _read(store: Store, key: tuple[str, str]) -> Track | None:
    source, source_id = key
    if source in _OWN_KEYS.values():
        return store.get_cached_track(source, source_id)
    record = store.get_record(track_pk(source, source_id), TRACK_SK)
    return Track.from_dict(record) if record is not None else None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]
