"""Mirroring: finding the same recording on another source, and the Spotify mirror cache.

A stand-in is looked for through the searching sources in chain order, skipping the excluded ones:
ISRC first where a source can (``Source.can_isrc``), taking the first hit whose title, artist and
duration agree (``same_recording``), then title + artist, taking the first candidate whose duration
is within the tolerance. A source that is unwell (a source-wide fault, or
its breaker open) is left for the next one; when none matches, the error shown is the one that
explains most (``best_error``). The match of a metadata-only (Spotify) track is cached for 7 days
under its Spotify id (``T#spotify#<id>`` / ``MIRROR``), in the chain's records.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from timmybot import text
from timmybot.errors import SourceError, SourceRestingError, TrackNotFoundError
from timmybot.models import Track
from timmybot.store.keys import MIRROR_SK, track_pk

from .base import Source
from .breaker import RecordStore
from .failures import failure_of

_log = logging.getLogger(__name__)

T = TypeVar("T")
#: Runs a lookup of a source behind its breaker: (source, operation, call) -> the call's result.
Guarded = Callable[[Source, str, Callable[[], list[Track]]], list[Track]]

MIRROR_CANDIDATES = 5
MIRROR_CACHE_TTL_S = 7 * 24 * 3600  # the track cache's TTL (BRIEF §4.7)


class MirrorNotFoundError(TrackNotFoundError):
    """No playable source has a recording matching a metadata-only (Spotify) track."""

    def __init__(self, title: str, artist: str | None) -> None:
        by = f" by {text.quote(artist, text.IN_SENTENCE)}" if artist else ""
        super().__init__(f"I couldn't find “{text.quote(title, text.IN_SENTENCE)}”{by} on any source I can play from.")


def mirror_pk(source: str, source_id: str) -> str:
    """The track-cache key of a metadata-only track; the mirror it played from is stored under it."""
    return track_pk(source, source_id)


def find_mirror(
    searchers: Iterable[Source],
    guarded: Guarded,
    *,
    title: str,
    artist: str | None,
    duration_s: int | None,
    isrc: str | None,
    tolerance_s: int,
    exclude: Sequence[str],
    then: Callable[[Source, Track], T],
    not_found: SourceError | None = None,
) -> T:
    """``then(source, match)`` for the first searching source (not in ``exclude``) with a match
    within ``tolerance_s``; a ``SourceError`` raised by ``then`` counts as that source failing.
    Every lookup goes through ``guarded``. No match anywhere: the error that explains most."""
    errors: list[SourceError] = []
    terms = f"{artist} {title}" if artist and artist.lower() not in title.lower() else title
    for source in searchers:
        if source.name in exclude:
            continue
        Pick = Callable[[Sequence[Track]], Track | None]
        by_text: Pick = functools.partial(closest, duration_s=duration_s, tolerance_s=tolerance_s)
        lookups: list[tuple[Callable[[], list[Track]], Pick]] = []
        if isrc and source.can_isrc:
            by_isrc: Pick = functools.partial(
                same_recording, title=title, artist=artist, duration_s=duration_s, tolerance_s=tolerance_s
            )
            lookups.append((isrc_lookup(source, isrc, MIRROR_CANDIDATES), by_isrc))
        lookups.append((searching(source, terms, MIRROR_CANDIDATES), by_text))
        for lookup, pick in lookups:
            try:
                candidates = guarded(source, "mirror", lookup)
                match = pick(candidates)
                if match is None:
                    continue
                return then(source, match)
            except SourceError as exc:
                errors.append(exc)
                if failure_of(exc).source_fault or isinstance(exc, SourceRestingError):
                    break  # this source is unwell: go to the next one
    raise best_error(errors, default=not_found or TrackNotFoundError("I couldn't find that track on any other source."))


def closest(candidates: Sequence[Track], duration_s: int | None, tolerance_s: int) -> Track | None:
    """The first candidate within ``tolerance_s`` of ``duration_s`` (the first of all when it is unknown)."""
    if duration_s is None:
        return candidates[0] if candidates else None
    for candidate in candidates:
        if candidate.duration_s is not None and abs(candidate.duration_s - duration_s) <= tolerance_s:
            return candidate
    return None


def same_recording(
    candidates: Sequence[Track], title: str, artist: str | None, duration_s: int | None, tolerance_s: int
) -> Track | None:
    """The first ISRC hit that really is the recording: its duration within ``tolerance_s`` (when the
    track's is known, the candidate's must be too), every word of the title (without its bracketed
    or dashed suffix, "(Remastered)", "- Live") in the candidate's song name or title, and a name of
    the first artist in its artist or title. An ISRC search can answer another song (LavaSrc #59)."""
    wanted_title = _words(_core_title(title))
    wanted_artist = _words(_first_artist(artist)) if artist else set()
    for candidate in candidates:
        if duration_s is not None and (
            candidate.duration_s is None or abs(candidate.duration_s - duration_s) > tolerance_s
        ):
            continue
        named = _words(f"{candidate.song or ''} {candidate.title}")
        if not wanted_title <= named:
            continue
        if wanted_artist and not _shares_a_name(wanted_artist, _words(f"{candidate.artist or ''} {candidate.title}")):
            continue
        return candidate
    return None


def _shares_a_name(wanted: set[str], found: set[str]) -> bool:
    """The artist agrees: a name of three letters or more in common ("Rick Astley" and "R. Astley")."""
    return any(len(word) >= 3 for word in wanted & found) or (wanted <= found and bool(wanted))


def _core_title(title: str) -> str:
    core = re.sub(r"[(\[][^)\]]*[)\]]", " ", title)
    return core.split(" - ", 1)[0] if " - " in core else core


def _first_artist(artist: str) -> str:
    return re.split(r",|&|\bfeat\.?|\bft\.?|\bx\b", artist, maxsplit=1, flags=re.IGNORECASE)[0]


def _words(value: str) -> set[str]:
    plain = "".join(c for c in unicodedata.normalize("NFKD", value.casefold()) if not unicodedata.combining(c))
    return set(re.findall(r"[^\W_]+", plain))


def cached_mirror(records: RecordStore, spotify_id: str) -> Track | None:
    """The mirror a Spotify track last played from, if the cache holds one (unreadable: None)."""
    try:
        record = records.get_record(mirror_pk("spotify", spotify_id), MIRROR_SK)
        return Track.from_dict(record) if record else None
    except Exception:
        _log.warning("mirror cache unreadable for spotify/%s", spotify_id, exc_info=True)
        return None


def remember_mirror(records: RecordStore, spotify_id: str, match: Track) -> None:
    """Keep ``match`` as the Spotify track's mirror for ``MIRROR_CACHE_TTL_S`` (a failed write is logged)."""
    data = match.to_dict()
    try:
        records.update_record(
            mirror_pk("spotify", spotify_id), MIRROR_SK, lambda _current: data, ttl_s=MIRROR_CACHE_TTL_S
        )
    except Exception:
        _log.warning("could not cache the mirror of spotify/%s", spotify_id, exc_info=True)


def recording_key(title: str, artist: str | None, isrc: str | None) -> str:
    """One recording, whichever source it is asked from: its ISRC, else artist and title."""
    return f"isrc:{isrc.upper()}" if isrc else f"recording:{(artist or '').casefold()}|{title.casefold()}"


def searching(source: Source, terms: str, limit: int) -> Callable[[], list[Track]]:
    return lambda: source.search(terms, limit=limit)


def isrc_lookup(source: Source, isrc: str, limit: int) -> Callable[[], list[Track]]:
    return lambda: source.find_by_isrc(isrc, limit=limit)


def best_error(errors: Sequence[SourceError], default: SourceError | None = None) -> SourceError:
    """The error to show when every source failed: a refusal explains more than "not found"."""
    for error in errors:
        if failure_of(error).source_fault:
            return error
    for error in errors:
        if not isinstance(error, SourceRestingError | TrackNotFoundError):
            return error
    for error in errors:
        if isinstance(error, SourceRestingError):
            return error
    if default is not None:
        return default
    return errors[0] if errors else TrackNotFoundError()
