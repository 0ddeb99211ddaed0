"""The source chain: which source serves a request, and who stands in when it refuses.

Sources are tried in ``SourceSettings.source_chain`` order (default: YouTube → YouTube Music →
SoundCloud), per kind of request:

- a link goes to the one source that takes its host. If that source refuses in a way another
  source might not (bot check, sign-in, 403, timeout, breaker open...), the chain mirrors the
  track through the others by title and artist — when it knows them (the track cache); when even
  the metadata is blocked, the user reads that source's sentence;
- a search goes to each searching source in order until one finds something;
- a stream (play time) goes to the source that found the track; if it refuses, the chain mirrors
  the track (ISRC first where a source can, then title + artist with the duration within
  ``mirror_tolerance_s``) and streams the stand-in;
- ``mirror`` finds a track by title, artist, duration and ISRC;
- a Spotify link resolves to metadata only (``timmybot.library.spotify_links``, the app's token): Spotify gives no
  audio. At play time a ``spotify`` track is mirrored (ISRC first, then title + artist within the
  tolerance) and the match is kept in the track cache for 7 days under the Spotify id
  (``T#spotify#<id>`` / ``MIRROR``), so the next play of that track costs no search. No match is a
  ``MirrorNotFoundError`` whose sentence names the track;
- ``mix`` gives a radio around a seed track (YouTube's ``list=RD<videoId>`` mixes), mirroring the
  seed onto a mixing source first when it comes from elsewhere.

Every call goes through the source's circuit breaker; every failure logs an operator hint and
emits a metric (``failures.report_failure``). Callers name the guild that asks (``guild_id``): a
per-track failure is kept as evidence of (track, guild), and counts against the source only when it
spreads across tracks and guilds (``breaker.SpreadRule``, docs/SOURCES.md). A track or stream
that came from a stand-in says so: ``Track.fallback_from`` / ``StreamInfo.fallback_from`` name the source that refused.

How a stand-in is found and the mirror cache live in ``mirroring``; sources are built from their
names by ``factories``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from timmybot.errors import (
    SourceError,
    SourceRestingError,
    TrackNotFoundError,
    UnsupportedUrlError,
)
from timmybot.models import Track, source_label

from .base import Source
from .breaker import CircuitBreaker, RecordStore, SpreadRule
from .factories import build_source, chain_names
from .failures import Reason, Scope, failure_of, report_failure
from .mirroring import (
    MirrorNotFoundError,
    best_error,
    cached_mirror,
    find_mirror,
    recording_key,
    remember_mirror,
    searching,
)
from .models import Query, QueryKind, SourceSettings, StreamInfo, is_test_source_name
from .policy import classify_query

if TYPE_CHECKING:
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

T = TypeVar("T")
TrackCache = Callable[[str, str], "Track | None"]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Ask:
    """What was asked for (a track key: a link, a search, a track id) and by which guild (None:
    unknown): the evidence a per-track failure leaves in the breaker."""

    track: str
    guild: str | None = None


class SourceChain:
    """The sources of one settings value, in order, each behind its circuit breaker.

    ``records`` holds the breaker state and the Spotify mirror cache: the process's one Store (so
    every Lambda and voice task shares it), or ``MemoryRecords`` for this process only.
    ``track_cache`` answers "what do we know about (source, id)" when a link's own source refuses
    (the Store's ``get_cached_track``; None: nothing is known). Both come from the process's
    bootstrap (``SourceChain.over_store``). ``sources`` (tests) replaces the sources named by the
    settings; the named ones are built on first use, so building a chain imports no yt-dlp.
    """

    def __init__(
        self,
        settings: SourceSettings,
        records: RecordStore,
        track_cache: TrackCache | None = None,
        *,
        sources: Sequence[Source] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._settings = settings
        self._sources: list[Source] | None = list(sources) if sources is not None else None
        self._records = records
        self._track_cache = track_cache
        self._clock = clock
        self._breaker: CircuitBreaker | None = None

    @classmethod
    def over_store(
        cls,
        settings: SourceSettings,
        store: Store,
        *,
        sources: Sequence[Source] | None = None,
        clock: Clock = time.time,
    ) -> SourceChain:
        """The chain whose breaker records and track cache are ``store``: what each bootstrap builds."""
        return cls(settings, store, store.get_cached_track, sources=sources, clock=clock)

    @property
    def settings(self) -> SourceSettings:
        return self._settings

    @property
    def sources(self) -> list[Source]:
        if self._sources is None:
            self._sources = [build_source(name, self._settings) for name in chain_names(self._settings)]
        return self._sources

    def preferring(self, first: str | None) -> SourceChain:
        """This chain with the source named ``first`` tried first (a user's preferred platform), the
        rest in the operator's order; the same breaker and records. Itself when ``first`` is None or
        not in the chain: a preference never adds a source the operator left out."""
        names = [source.name for source in self.sources]
        if first is None or first not in names or names[0] == first:
            return self
        view = SourceChain(
            self._settings,
            self._records,
            self._track_cache,
            sources=sorted(self.sources, key=lambda source: source.name != first),
            clock=self._clock,
        )
        view._breaker = self.breaker
        return view

    @property
    def breaker(self) -> CircuitBreaker:
        if self._breaker is None:
            self._breaker = CircuitBreaker(
                self._records,
                threshold=self._settings.breaker_threshold,
                cooldown_s=self._settings.breaker_cooldown_s,
                trial_timeout_s=max(60.0, self._settings.socket_timeout_s * 4),
                spread=SpreadRule(
                    tracks=self._settings.breaker_spread_tracks,
                    guilds=self._settings.breaker_spread_guilds,
                    window_s=self._settings.breaker_spread_window_s,
                ),
                clock=self._clock,
            )
        return self._breaker

    # -- entry points -------------------------------------------------------------------------------

    def classify(self, text: str) -> Query:
        return classify_query(text, self._settings)

    def resolve_text(self, text: str, *, guild_id: str | None = None) -> list[Track]:
        return self.resolve(self.classify(text), guild_id=guild_id)

    def resolve(self, query: Query, *, guild_id: str | None = None) -> list[Track]:
        """Metadata for a classified /play argument (worker), asked for by ``guild_id``."""
        if query.kind.is_spotify:
            from timmybot.library.spotify_links import resolve_link  # noqa: PLC0415 - spotipy only where a link needs it

            if query.source_id is None:
                raise UnsupportedUrlError()
            return resolve_link(query.kind.value.removeprefix("spotify_"), query.source_id, self._settings)
        if query.kind is QueryKind.SEARCH:
            return [self.search(query.text, guild_id=guild_id)]
        source = self._accepting(query)
        ask = Ask(f"{query.kind.value}:{query.source_id or query.text}", guild_id)
        try:
            return self._guarded(source, "resolve", lambda: source.resolve(query), ask)
        except SourceError as exc:
            if not failure_of(exc).fallback:
                raise
            known = self._known_metadata(source.name, query)
            if known is None:
                raise
            _log.info(
                "link of %s refused (%s); mirroring %r through the chain", source.name, type(exc).__name__, known.title
            )
            try:
                stand_in = self._mirror(
                    known.title,
                    known.artist,
                    known.duration_s,
                    known.isrc,
                    exclude=(source.name,),
                    then=lambda _source, track: track,
                    ask=ask,
                )
            except SourceError:
                raise exc from None
            return [replace(stand_in, fallback_from=source.name)]

    def search(self, terms: str, *, guild_id: str | None = None) -> Track:
        """The first searching source, in chain order, that finds ``terms``."""
        first: str | None = None
        errors: list[SourceError] = []
        ask = Ask(f"search:{terms.casefold()}", guild_id)
        for source in self._searchers():
            first = first or source.name
            try:
                tracks = self._guarded(source, "search", searching(source, terms, 1), ask)
            except SourceError as exc:
                failure = failure_of(exc)
                if not failure.fallback and failure.reason is not Reason.NOT_FOUND:
                    raise
                errors.append(exc)
                continue
            track = tracks[0]
            return track if source.name == first else replace(track, fallback_from=first)
        raise best_error(errors)

    def search_results(
        self, terms: str, *, limit: int = 10, only: str | None = None, guild_id: str | None = None
    ) -> list[Track]:
        """Up to ``limit`` results for ``terms`` (/search's picker), in the source's order: from the
        first searching source, in chain order, that finds any (or only from ``only``, a chain name),
        each behind its breaker like ``search``. ``TrackNotFoundError`` if none."""
        errors: list[SourceError] = []
        ask = Ask(f"search:{terms.casefold()}", guild_id)
        searchers = [s for s in self._searchers() if only is None or s.name == only]
        if only is not None and not searchers:
            raise TrackNotFoundError(f"{source_label(only)} isn't one of the sources I search here.")
        first = searchers[0].name if searchers else None
        for source in searchers:
            try:
                tracks = self._guarded(source, "search", searching(source, terms, limit), ask)
            except SourceError as exc:
                failure = failure_of(exc)
                if not failure.fallback and failure.reason is not Reason.NOT_FOUND:
                    raise
                errors.append(exc)
                continue
            if tracks:
                found = tracks[:limit]
                return found if source.name == first else [replace(t, fallback_from=first) for t in found]
        raise best_error(errors, TrackNotFoundError())

    def mirror(
        self,
        title: str,
        artist: str | None,
        duration_s: int | None,
        isrc: str | None = None,
        *,
        exclude: Sequence[str] = (),
        guild_id: str | None = None,
    ) -> Track:
        """A track of another source for the same recording: ISRC first where a source can, then
        title + artist with the duration within ``mirror_tolerance_s``. ``TrackNotFoundError`` if none."""
        ask = Ask(recording_key(title, artist, isrc), guild_id)
        return self._mirror(
            title, artist, duration_s, isrc, exclude=exclude, then=lambda _source, track: track, ask=ask
        )

    def mix(self, seed: Track, *, limit: int = 10, guild_id: str | None = None) -> list[Track]:
        """Up to ``limit`` tracks of a radio around ``seed`` (metadata; the seed left out)."""
        mixers = [source for source in self.sources if source.can_mix]
        if not mixers:
            raise TrackNotFoundError("None of the sources I use can make a mix.")
        ask = Ask(f"{seed.source}:{seed.source_id}", guild_id)
        candidates = [seed]
        if seed.source == "spotify":
            mirrored = cached_mirror(self._records, seed.source_id)
            if mirrored is not None:
                candidates.insert(0, mirrored)
        for candidate in candidates:
            for source in mixers:
                if source.mixes(candidate):
                    return self._guarded(source, "mix", _mixing(source, candidate, limit), ask)
        others = tuple(source.name for source in self.sources if not source.can_mix)
        return self._mirror(
            seed.title,
            seed.artist,
            seed.duration_s,
            seed.isrc,
            exclude=others,
            then=lambda s, t: self._guarded(s, "mix", _mixing(s, t, limit), ask),
            ask=ask,
        )

    def stream(self, track: Track, *, guild_id: str | None = None, quality: str = "high") -> StreamInfo:
        """A fresh stream for a queued track (voice task of ``guild_id``) at its requester's ``quality``;
        a stand-in's stream if its source refuses."""
        ask = Ask(f"{track.source}:{track.source_id}", guild_id)
        if track.source == "spotify":
            return self._stream_mirrored(track, ask, quality)
        source = self._handler(track.source)
        try:
            info = self._guarded(source, "stream", lambda: source.stream_with(track, quality=quality), ask)
            return replace(info, source=source.name, fallback_from=None)
        except SourceError as exc:
            if not failure_of(exc).fallback:
                raise
            try:
                stand_in, info = self._mirror(
                    track.title,
                    track.artist,
                    track.duration_s,
                    track.isrc,
                    exclude=(source.name,),
                    then=lambda s, t: (t, self._guarded(s, "stream", lambda: s.stream_with(t, quality=quality), ask)),
                    ask=ask,
                )
            except SourceError as mirror_error:
                _log.info("no stand-in for %r (%s): %s", track.title, source.name, type(mirror_error).__name__)
                raise exc from None
            _log.info("playing %r from %s instead of %s", track.title, stand_in.source, source.name)
            return replace(info, source=stand_in.source, fallback_from=source.name)

    # -- internals ---------------------------------------------------------------------------------

    def _stream_mirrored(self, track: Track, ask: Ask, quality: str) -> StreamInfo:
        """A metadata-only track's audio: its cached mirror, else a fresh mirror (then cached)."""
        exclude: tuple[str, ...] = ()
        cached = cached_mirror(self._records, track.source_id)
        if cached is not None:
            source = next((s for s in self.sources if cached.source in s.handles), None)
            if source is not None:
                try:
                    info = self._guarded(source, "stream", lambda: source.stream_with(cached, quality=quality), ask)
                    return replace(info, source=source.name, fallback_from=None)
                except SourceError as exc:
                    _log.info("cached mirror of %r failed (%s): mirroring again", track.title, type(exc).__name__)
                    if failure_of(exc).source_fault or isinstance(exc, SourceRestingError):
                        exclude = (source.name,)
        match, info = self._mirror(
            track.title,
            track.artist,
            track.duration_s,
            track.isrc,
            exclude=exclude,
            then=lambda s, t: (
                t,
                replace(self._guarded(s, "stream", lambda: s.stream_with(t, quality=quality), ask), source=s.name),
            ),
            not_found=MirrorNotFoundError(track.title, track.artist),
            ask=ask,
        )
        remember_mirror(self._records, track.source_id, match)
        _log.info("mirrored %s track %s to %s %s", track.source, track.source_id, match.source, match.source_id)
        return replace(info, fallback_from=None)

    def _accepting(self, query: Query) -> Source:
        for source in self.sources:
            if source.accepts(query):
                return source
        raise UnsupportedUrlError()

    def _handler(self, track_source: str) -> Source:
        for source in self.sources:
            if track_source in source.handles:
                return source
        if track_source == "local" or (is_test_source_name(track_source) and not self._settings.allow_local_media):
            raise UnsupportedUrlError()
        raise SourceError(f"I don't know how to play tracks from {track_source!r}.")

    def _searchers(self) -> Iterator[Source]:
        return (source for source in self.sources if source.can_search)

    def _guarded(self, source: Source, operation: str, call: Callable[[], T], ask: Ask) -> T:
        """``call`` behind ``source``'s breaker: skipped while open; failures reported and counted,
        source-wide ones at once, per-track ones as evidence of ``ask`` (``failures.Scope``)."""
        if not self.breaker.allow(source.name):
            _log.info("source %s skipped (%s): its breaker is open", source.name, operation)
            raise SourceRestingError(
                f"{source_label(source.name)} keeps refusing me, so I'm giving it a few minutes' rest. "
                "Try a search or another link."
            )
        try:
            result = call()
        except SourceError as exc:
            failure = report_failure(source.name, exc, operation=operation)
            if failure.scope is Scope.SOURCE:
                self.breaker.record_failure(source.name, failure.reason.value)
            elif failure.scope is Scope.TRACK:
                self.breaker.record_track_failure(source.name, failure.reason.value, track=ask.track, guild=ask.guild)
            raise
        self.breaker.record_success(source.name)
        return result

    def _mirror(
        self,
        title: str,
        artist: str | None,
        duration_s: int | None,
        isrc: str | None,
        *,
        exclude: Sequence[str],
        then: Callable[[Source, Track], T],
        ask: Ask,
        not_found: SourceError | None = None,
    ) -> T:
        return find_mirror(
            self._searchers(),
            lambda source, operation, call: self._guarded(source, operation, call, ask),
            title=title,
            artist=artist,
            duration_s=duration_s,
            isrc=isrc,
            tolerance_s=self._settings.mirror_tolerance_s,
            exclude=exclude,
            then=then,
            not_found=not_found,
        )

    def _known_metadata(self, source: str, query: Query) -> Track | None:
        """What we already know about a link (the track cache), for mirroring it when its source refuses."""
        if query.source_id is None:
            return None
        if self._track_cache is None:
            return None
        try:
            return self._track_cache(source, query.source_id)
        except Exception:
            _log.warning("track cache unreadable for %s/%s", source, query.source_id, exc_info=True)
            return None


def _mixing(source: Source, seed: Track, limit: int) -> Callable[[], list[Track]]:
    return lambda: source.mix(seed, limit=limit)
