"""The player: one long-lived audio source per voice connection, tracks opened and changed inside it.

``QueueSource`` is what discord.py's audio player reads, frame by frame, on its own thread. It
holds the current ``TrackSource`` and, near a track's end, the already-open next one: when the
current stream ends naturally it switches to the next within the same ``read()``, so there is no
gap between tracks (the queue pop happens on the event loop right after, fenced by the lease
generation). When a stream ends early (a 403, a reset) it does not switch: it yields silence
frames and tells the loop, which decides (resolve again and continue, or skip the track).

``Player`` runs on the event loop: it resolves streams in a bounded executor of its own (a hung
resolve never starves the store calls or the lease heartbeat), opens sources, swaps them for a
seek, a volume or filter change or a skip, keeps at most one warm next source, and reports the position
the listeners have heard.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import discord

from timmybot.filters import Filters
from timmybot.models import QueueEntry
from timmybot.sources import stream_for
from timmybot.sources.chain import SourceChain
from timmybot.sources.models import StreamInfo
from voice_task.audio import OPUS_SILENCE, StderrTail, TrackSource, build_source, channel_bitrate_kbps
from voice_task.states import Machine, PlaybackState
from voice_task.voice_client import dave_ready

_log = logging.getLogger(__name__)

#: How long before a track's end the next one is opened (FFmpeg connected, first bytes buffered).
WARM_AHEAD_S = 5.0
#: The longest the source yields silence while the loop decides what follows an ended stream.
DECISION_WAIT_S = 30.0
RESOLVE_WORKERS = 4


_URL_KEY = "url:"  # a prefetched stream also serves another entry of the same track


@dataclass(frozen=True)
class SourceEvent:
    """The current stream ended (told from the player thread): ``started`` is the next track it
    switched to (a natural end with a warm next), else None; ``natural`` False: the stream broke."""

    ended: TrackSource
    started: TrackSource | None
    natural: bool


class QueueSource(discord.AudioSource):
    """The audio source discord.py plays for as long as tracks follow each other."""

    def __init__(self, first: TrackSource, on_event: Callable[[SourceEvent], None]) -> None:
        self._lock = threading.Lock()
        self._current: TrackSource | None = first
        self._next: TrackSource | None = None
        self._finished = False
        self._waiting_since: float | None = None
        self._on_event = on_event

    def is_opus(self) -> bool:
        return True

    @property
    def current(self) -> TrackSource | None:
        return self._current

    @property
    def next(self) -> TrackSource | None:
        return self._next

    def read(self) -> bytes:
        with self._lock:
            if self._finished:
                return b""
            current = self._current
        if current is None:
            return self._waiting()
        frame = current.read()
        if frame:
            return frame
        with self._lock:
            if self._current is not current:  # swapped by the loop meanwhile
                return OPUS_SILENCE
            natural = current.ended_naturally()
            started = self._next if natural else None
            self._current, self._next = started, None
            self._waiting_since = None if started else time.monotonic()
        self._on_event(SourceEvent(current, started, natural))
        if started is not None:
            return started.read() or OPUS_SILENCE
        return OPUS_SILENCE

    def _waiting(self) -> bytes:
        since = self._waiting_since or time.monotonic()
        self._waiting_since = since
        if time.monotonic() - since > DECISION_WAIT_S:
            _log.warning("nothing to play for %.0f s: ending the source", DECISION_WAIT_S)
            return b""
        return OPUS_SILENCE

    def set_current(self, source: TrackSource | None) -> TrackSource | None:
        """Play ``source`` from the next frame on; returns the one it replaces (to clean up)."""
        with self._lock:
            old, self._current = self._current, source
            self._waiting_since = None
        return old

    def set_next(self, source: TrackSource | None) -> TrackSource | None:
        with self._lock:
            old, self._next = self._next, source
        return old

    def finish(self) -> None:
        """End the source: the next read returns nothing and discord.py's player stops."""
        with self._lock:
            self._finished = True

    def cleanup(self) -> None:
        with self._lock:
            sources = [s for s in (self._current, self._next) if s is not None]
            self._current = self._next = None
        for source in sources:
            source.cleanup()


@dataclass
class Playing:
    entry: QueueEntry
    stream: StreamInfo
    source: TrackSource
    restarts: int = 0


@dataclass
class Warm:
    entry: QueueEntry
    stream: StreamInfo
    source: TrackSource


@dataclass
class Player:
    """Sources and streams for one guild's voice task (event-loop side)."""

    sources: SourceChain
    ffmpeg: str
    machine: Machine[PlaybackState]
    voice: Callable[[], discord.VoiceClient | None]
    on_event: Callable[[SourceEvent], None]  # called on the event loop
    on_player_end: Callable[[int, Exception | None], None]  # discord.py's after-callback, on the loop
    clock: Callable[[], float] = time.time
    guild_id: str | None = None  # the guild it plays for: named to the sources' breakers
    current: Playing | None = None
    warm: Warm | None = None
    volume: int = 100
    filters: Filters = field(default_factory=Filters)
    source: QueueSource | None = None
    _resolved: dict[str, StreamInfo] = field(default_factory=dict)
    _token: int = 0
    _pool: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(RESOLVE_WORKERS, thread_name_prefix="resolve")
    )

    # ------------------------------------------------------------------ streams
    async def resolve(self, entry: QueueEntry, *, timeout_s: float) -> StreamInfo:
        """The entry's stream: a prefetched one if still fresh, else resolved in the resolve pool."""
        stream = self._resolved.pop(entry.entry_id, None)
        if stream is None and entry.url:  # the same track queued again ("play now" of the next one, /back)
            stream = self._resolved.pop(_URL_KEY + entry.url, None)
        if stream is not None and not stream.is_expired(self.clock()):
            return stream
        track = entry.track
        loop = asyncio.get_running_loop()
        quality = entry.quality or "high"  # the requester's (/preferences), stamped when queued
        future = loop.run_in_executor(self._pool, stream_for, track, self.sources, self.guild_id, quality)
        return await asyncio.wait_for(future, timeout=timeout_s)

    def prefetched(self, entry_id: str, stream: StreamInfo, *, url: str = "") -> None:
        self._resolved = {entry_id: stream}  # only the next one is worth keeping
        if url:
            self._resolved[_URL_KEY + url] = stream

    def open(self, entry: QueueEntry, stream: StreamInfo, position_ms: int) -> TrackSource:
        stderr = StderrTail()
        duration = entry.duration_s or stream.duration_s
        ffmpeg = build_source(stream, position_ms=position_ms, volume=self.volume, executable=self.ffmpeg,
                              stderr=stderr, filters=self.filters,
                              bitrate_kbps=channel_bitrate_kbps(self._channel_bitrate()))  # fmt: skip
        return TrackSource(ffmpeg, start_ms=position_ms, may_send=lambda: dave_ready(self.voice()),
                           entry_id=entry.entry_id, duration_ms=duration * 1000 if duration else None,
                           stderr=stderr, rate=self.filters.rate)  # fmt: skip

    def _channel_bitrate(self) -> int | None:
        """The voice channel's bitrate in bits per second (None: not connected or not known)."""
        voice = self.voice()
        bitrate = getattr(getattr(voice, "channel", None), "bitrate", None)
        return bitrate if isinstance(bitrate, int) else None

    # ------------------------------------------------------------------ what plays
    def play(self, entry: QueueEntry, stream: StreamInfo, position_ms: int, *, paused: bool, reason: str) -> None:
        """Make ``entry`` the current track, from ``position_ms``: in the running source if there is
        one, else in a new source handed to discord.py's player."""
        source = self.open(entry, stream, position_ms)
        self._drop_warm_if(lambda warm: warm.entry.entry_id == entry.entry_id)
        self.current = Playing(entry, stream, source)
        self._swap_in(source)
        self._track_started(paused, reason)

    def _swap_in(self, source: TrackSource) -> None:
        if self.source is not None and self._source_running():
            old = self.source.set_current(source)
            if old is not None and old is not source:
                old.cleanup()
        else:
            self._start_source(source)

    def chain(self, source: TrackSource, entry: QueueEntry, stream: StreamInfo) -> None:
        """The source already switched to ``source`` (a warm next) inside ``read()``."""
        self.current = Playing(entry, stream, source)
        if self.warm is not None and self.warm.source is source:
            self.warm = None
        self.machine.move(PlaybackState.PLAYING, f"next track {entry.entry_id} started")

    def take_warm(self, entry: QueueEntry) -> None:
        """Switch to the warm next track now (a skip): it is open already, so the change is immediate."""
        warm = self.warm
        assert warm is not None and self.source is not None
        old = self.source.set_current(warm.source)
        self.source.set_next(None)
        if old is not None and old is not warm.source:
            old.cleanup()
        self.chain(warm.source, entry, warm.stream)

    def restart(self, position_ms: int, *, reason: str) -> None:
        """The current track again from ``position_ms`` (a seek, a volume or filter change, an expired stream)."""
        current = self.current
        if current is None:
            return
        duration = current.entry.duration_s or current.stream.duration_s
        if duration:
            position_ms = min(position_ms, max(0, duration * 1000 - 500))
        source = self.open(current.entry, current.stream, position_ms)
        current.source = source
        self._swap_in(source)
        _log.info("restarted %s at %s ms (%s)", current.entry.entry_id, position_ms, reason)

    def warm_next(self, entry: QueueEntry, stream: StreamInfo, position_ms: int = 0) -> None:
        """Open the next track ahead of time, from ``position_ms`` (at most one warm source)."""
        self.drop_warm("another next track")
        source = self.open(entry, stream, position_ms)
        self.warm = Warm(entry, stream, source)
        if self.source is not None:
            old = self.source.set_next(source)
            if old is not None and old is not source:
                old.cleanup()
        _log.info("next track %s is warm", entry.entry_id)

    def rewarm(self, why: str) -> None:
        """Open the warm next track again (its sound changed), from where it was to start."""
        warm = self.warm
        if warm is None or (self.source is not None and self.source.next is not warm.source):
            return  # none, or the source is switching to it right now (the loop hears of it next)
        self.warm_next(warm.entry, warm.stream, warm.source.start_ms)
        _log.info("reopened the warm next track %s (%s)", warm.entry.entry_id, why)

    def drop_warm(self, why: str) -> None:
        warm, self.warm = self.warm, None
        if warm is None:
            return
        if self.source is not None:
            self.source.set_next(None)
        warm.source.cleanup()
        _log.info("dropped the warm next track %s (%s)", warm.entry.entry_id, why)

    def _drop_warm_if(self, test: Callable[[Warm], bool]) -> None:
        if self.warm is not None and test(self.warm):
            warm, self.warm = self.warm, None
            if self.source is not None:
                self.source.set_next(None)
            if self.current is None or warm.source is not self.current.source:
                warm.source.cleanup()

    def idle(self, reason: str) -> None:
        """Nothing more to play: end the source (discord.py's player stops)."""
        self.current = None
        self.drop_warm(reason)
        if self.source is not None:
            self.source.finish()
            self.source = None
        self.machine.move(PlaybackState.IDLE, reason)

    def stop(self) -> None:
        """The task is leaving: silence, and no after-callback that would start anything."""
        self._token += 1
        voice = self.voice()
        if voice is not None and (voice.is_playing() or voice.is_paused()):
            voice.stop()
        self.drop_warm("stopping")
        if self.source is not None:
            self.source.cleanup()
            self.source = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def detach(self) -> None:
        """The voice client is being replaced: its player must not report anything."""
        self._token += 1
        voice = self.voice()
        if voice is not None and (voice.is_playing() or voice.is_paused()):
            voice.stop()
        self.source = None

    def reattach(self, *, paused: bool) -> None:
        """On a new voice client: the current track again where the listeners last heard it."""
        current = self.current
        if current is None:
            return
        self.restart(current.source.position_ms, reason="new voice connection")
        self._pause_state(paused, "new voice connection")

    # ------------------------------------------------------------------ pause and position
    def pause(self) -> None:
        voice = self.voice()
        if voice is not None and voice.is_playing():
            voice.pause()
        self._pause_state(True, "paused")

    def resume(self) -> None:
        voice = self.voice()
        if voice is not None and voice.is_paused():
            voice.resume()
        self._pause_state(False, "resumed")

    def _track_started(self, paused: bool, reason: str) -> None:
        """A track was just opened (from resolving): it plays, or waits paused as applied."""
        voice = self.voice()
        if paused and voice is not None and voice.is_playing():
            voice.pause()
        self.machine.move(PlaybackState.PAUSED if paused else PlaybackState.PLAYING, reason)

    def _pause_state(self, paused: bool, reason: str) -> None:
        if self.machine.state not in (PlaybackState.PLAYING, PlaybackState.PAUSED):
            return  # no track to pause or resume (between tracks, one that failed): the next starts as applied
        voice = self.voice()
        if paused and voice is not None and voice.is_playing():
            voice.pause()
        self.machine.move(PlaybackState.PAUSED if paused else PlaybackState.PLAYING, reason)

    @property
    def position_ms(self) -> int:
        return self.current.source.position_ms if self.current is not None else 0

    def remaining_s(self) -> float | None:
        """Wall-clock seconds until the current track ends (at its rate: 3:00 at 1.5× is 2:00)."""
        current = self.current
        if current is None or not current.source.duration_ms:
            return None
        return max(0.0, (current.source.duration_ms - current.source.position_ms) / 1000 / current.source.rate)

    @property
    def rate(self) -> float:
        """Seconds of the current track played per second of wall time."""
        return self.current.source.rate if self.current is not None else self.filters.rate

    # ------------------------------------------------------------------ discord.py's player
    def _source_running(self) -> bool:
        voice = self.voice()
        return voice is not None and (voice.is_playing() or voice.is_paused())

    def _start_source(self, first: TrackSource) -> None:
        voice = self.voice()
        if voice is None:
            raise discord.ClientException("Not connected to voice.")
        loop = asyncio.get_running_loop()
        self._token += 1  # the previous source's callbacks, if any, are stale from here on
        token = self._token
        if voice.is_playing() or voice.is_paused():
            voice.stop()

        def event(ev: SourceEvent) -> None:  # player thread
            _to_loop(loop, self._deliver, token, ev)

        def after(error: Exception | None) -> None:  # player thread
            _to_loop(loop, self.on_player_end, token, error)

        self.source = QueueSource(first, event)
        if self.warm is not None:
            self.source.set_next(self.warm.source)
        voice.play(self.source, after=after)

    def _deliver(self, token: int, event: SourceEvent) -> None:
        if token == self._token:
            self.on_event(event)

    @property
    def token(self) -> int:
        return self._token


def _to_loop(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object) -> None:
    """Hand a player-thread callback to the task's loop; once the loop has closed (the task is
    exiting, and discord.py's player thread reports the source's end late) there is nobody to tell."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        if not loop.is_closed():
            raise
        _log.debug("player callback after the loop closed: dropped")
