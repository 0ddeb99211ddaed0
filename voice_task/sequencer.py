"""Track changes: which track plays next, and how a track's end, a skip or a failure leads there.

One change runs at a time (``transition``). Tracks that fail are tried one after another in a loop
(``_advance``), never by recursion, checking exit, stop and the failure limit between tries. A
natural end with the next track already warm is taken care of inside the audio source; here the
queue then follows (a pop fenced by the lease generation). The rest of the task is the ``Host``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from timmybot import metrics, text
from timmybot.config import Settings
from timmybot.errors import SourceError, TimmyError
from timmybot.models import GuildRecord, LoopMode, QueueEntry
from timmybot.playlists.dead import is_lasting, mark_failed
from timmybot.store.base import Store
from voice_task.audio import StreamFailure, classify_failure
from voice_task.autoplay import Autoplay
from voice_task.connection import Connection, Health
from voice_task.player import WARM_AHEAD_S, Player, Playing, SourceEvent
from voice_task.reconcile import Applied
from voice_task.states import PlaybackState

_log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_STREAM_RESTARTS = 2


class End(enum.Enum):
    """Why the track before the next one ended."""

    NATURAL = "natural"
    SKIPPED = "skipped"
    FAILED = "failed"
    NONE = "none"  # nothing was playing


class Host(Protocol):
    """What the sequencer needs of the task."""

    settings: Settings
    store: Store
    guild_id: str
    generation: int
    applied: Applied
    record: GuildRecord | None
    idle_since: float
    connection: Connection

    @property
    def exit_reason(self) -> Any: ...

    def clock(self) -> float: ...

    async def io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def adopt(self, record: GuildRecord) -> tuple[GuildRecord, bool]: ...

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str, *, fatal: bool = False) -> asyncio.Task[Any]: ...

    async def publish(self) -> None: ...

    async def notice(self, content: str) -> None: ...

    async def ping_requester(self, entry: QueueEntry) -> None: ...

    async def post_now_playing(self, status: str | None = None) -> None: ...


@dataclass
class Sequencer:
    host: Host
    player: Player
    autoplay: Autoplay
    transition: asyncio.Lock = field(default_factory=asyncio.Lock)
    advancing: asyncio.Task[None] | None = None
    loading: QueueEntry | None = None  # the entry being resolved (published as now playing)
    left_behind: tuple[QueueEntry, int] | None = None  # what a dead predecessor left playing, and where
    resume_position_ms: int | None = None
    recovered: bool = False  # what a dead predecessor left playing was looked at
    #: Plays noted in the guild history (``Actual.played_seq``, published with the task's state):
    #: the next start goes to ring slot ``played_seq % 50``. Set from the record at the claim.
    played_seq: int = 0
    #: The entry noted last: a loop-track replay is not noted again (a track a predecessor left and
    #: this task resumes may be: the history reads each entry once).
    last_noted: str | None = None
    _warming: bool = False
    _unheard: QueueEntry | None = None  # started, not yet counted: counted at its first frame (``heard``)
    _failures_in_a_row: int = 0

    def start_advance(self, finished: QueueEntry | None, end: End, *, restart: bool = False,
                       popped: QueueEntry | None = None) -> None:  # fmt: skip
        """Start the next track, one change at a time (a running change is replaced only on ``restart``).
        ``popped``: the entry already taken from the queue, to play without taking another."""
        running = self.advancing
        if running is not None and not running.done():
            if not restart:
                return
            running.cancel()

        async def advance() -> None:
            try:
                if running is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await running
                async with self.transition:
                    await self._advance(finished, end, popped)
            finally:
                if self.advancing is task:
                    self.advancing = None

        task = self.host.spawn(advance(), "advance", fatal=True)
        self.advancing = task

    async def _advance(self, finished: QueueEntry | None, end: End, popped: QueueEntry | None = None) -> None:
        """Play the next playable track. Tracks that fail are tried one after another in this loop
        (never by recursion), checking exit, stop and the failure limit between tries."""
        while self.host.exit_reason is None:
            record, _ = self.host.adopt(await self.host.io(self.host.store.get_guild, self.host.guild_id))
            if record.desired.stop_seq > self.host.applied.stop_seq:
                return  # the tick stops the task
            entry: QueueEntry | None
            if popped is not None:
                entry, position = popped, popped.start_ms
            else:
                entry, position = await self._next_entry(record, finished, end)
            popped = None
            if entry is None:
                if self.player.current is None or end is not End.NONE:
                    self.player.idle("nothing more to play")
                self.host.idle_since = self.host.clock()
                await self.host.publish()
                return
            self.player.machine.move(PlaybackState.RESOLVING, f"starting {entry.entry_id}")
            self.loading = entry
            try:
                stream = await self.player.resolve(entry, timeout_s=self._resolve_timeout_s)
            except (SourceError, TimeoutError) as exc:
                self.loading = None
                why = exc.user_message if isinstance(exc, SourceError) else "its source did not answer in time"
                if await self._failed(entry, why, lasting=is_lasting(exc)):
                    return
                finished, end = entry, End.FAILED
                continue
            self.loading = None
            if self.host.exit_reason is not None:
                return
            self.player.play(
                entry, stream, position, paused=self.host.applied.paused, reason=f"playing {entry.entry_id}"
            )
            self._started(entry)
            _log.info("playing %s at %s ms (volume %s)", entry.entry_id, position, self.player.volume)
            await self.host.publish()
            self.host.spawn(self.host.post_now_playing(), "now-playing card")
            self.host.spawn(self.prefetch(record), "prefetch")
            return

    async def _next_entry(self, record: GuildRecord, finished: QueueEntry | None,
                          end: End) -> tuple[QueueEntry | None, int]:  # fmt: skip
        if end is End.NATURAL and finished is not None and record.desired.loop is LoopMode.TRACK:
            return finished, 0
        if not self.recovered:
            self.recovered = True
            if self.left_behind is not None and finished is None and self.player.current is None:
                return self.left_behind
        requeue = end in (End.NATURAL, End.SKIPPED) and record.desired.loop is LoopMode.QUEUE
        popped = await self.host.io(
            self.host.store.pop_head, self.host.guild_id, self.host.generation, requeue_current=requeue
        )
        if popped is None and finished is not None and record.desired.autoplay:
            refill = await self.autoplay.refill(finished, generation=self.host.generation, now=self.host.clock())
            if refill.notice:
                await self.host.notice(text.fit("Autoplay stopped after **{title}**: {why}", text.IN_LINE,
                                            title=finished.title, why=refill.notice))  # fmt: skip
            if refill.entries:
                with contextlib.suppress(TimmyError):
                    await self.host.io(self.host.store.append_entries, self.host.guild_id, list(refill.entries),
                                   cap=self.host.settings.queue_cap)  # fmt: skip
                    popped = await self.host.io(self.host.store.pop_head, self.host.guild_id, self.host.generation)
        position = self.resume_position_ms or (popped.start_ms if popped is not None else 0)
        self.resume_position_ms = None
        return popped, position

    def _started(self, entry: QueueEntry) -> None:
        """A track began: the seed of the next mix, and a line in the guild's history (/back, /history):
        play number ``played_seq``, which the next publish writes (it follows every start). Its play
        is counted once its first audio goes out (``heard``)."""
        self.autoplay.note_played(entry)
        self._unheard = entry
        if entry.entry_id == self.last_noted:
            return  # the same entry again at once (loop track): one line, as the legacy history kept
        self.last_noted = entry.entry_id
        seq, self.played_seq = self.played_seq, self.played_seq + 1
        self.host.spawn(self._note_history(entry, seq), "guild history")

    def heard(self, playing: Playing | None = None) -> None:
        """A started track whose first audio frame went out: count one play of the platform it plays
        from (``TracksPlayed``, no other dimension) and ping its requester if they asked
        (/preferences notify). Called on every tick and when a stream ends; a track that fails
        before its first frame is never counted, and none is counted twice."""
        entry, playing = self._unheard, playing or self.player.current
        if entry is None or playing is None or playing.entry.entry_id != entry.entry_id or playing.source.frames == 0:
            return
        self._unheard = None
        source = playing.stream.source or entry.track.source or "unknown"
        metrics.emit(metrics.TRACKS_PLAYED, dimensions={"source": source})
        if entry.notify and entry.requester_id.isdigit():
            self.host.spawn(self.host.ping_requester(entry), "requester ping")

    async def _note_history(self, entry: QueueEntry, seq: int) -> None:
        try:
            await self.host.io(self.host.store.record_played, self.host.guild_id, entry, now=self.host.clock(),
                               seq=seq)  # fmt: skip
        except Exception:  # the history is a convenience: never let it stop the music
            _log.warning("could not note %s in the guild history", entry.entry_id, exc_info=True)

    async def _mark_dead(self, entry: QueueEntry) -> None:
        """A track a saved playlist's load queued is marked dead there, and its owner told."""
        try:
            notice = await self.host.io(mark_failed, self.host.store, entry)
        except Exception:  # a convenience: never let it stop the music
            _log.warning("could not mark %s dead in its playlist", entry.entry_id, exc_info=True)
            return
        if notice:
            await self.host.notice(notice)

    async def _failed(self, entry: QueueEntry, why: str, *, reason: str = "source", lasting: bool = False) -> bool:
        """A track could not be played: say so (and, when it will fail again, mark it dead in the saved
        playlist that queued it). True when it was the last failure allowed in a row (the guild is then
        paused, with the rest of the queue kept)."""
        self._failures_in_a_row += 1
        self.player.machine.move(PlaybackState.FAILED, f"{entry.entry_id}: {why}")
        metrics.emit(metrics.TRACKS_FAILED, dimensions={"reason": reason})
        _log.warning("track %s failed (%s in a row; stack depth %s): %s", entry.entry_id, self._failures_in_a_row,
                     len(inspect.stack(0)), why)  # fmt: skip
        await self.host.notice(text.fit("Skipped **{title}**: {why}", text.IN_LINE, title=entry.title, why=why))
        if lasting:
            self.host.spawn(self._mark_dead(entry), "playlist dead mark")
        if self._failures_in_a_row < self.host.settings.pause_after_failures:
            return False
        self._failures_in_a_row = 0
        await self.host.io(self.host.store.pause, self.host.guild_id)
        self.host.applied = replace(self.host.applied, paused=True)
        await self.host.notice(f"Paused after {self.host.settings.pause_after_failures} tracks failed in a row. "
                           "Use /resume to try the rest.")  # fmt: skip
        self.player.idle("paused after failures")
        await self.host.publish()
        return True

    async def skip(self) -> None:
        current = self.player.current
        if current is None:
            if self.advancing is not None:  # resolving: abandon that track, take the next
                self.start_advance(None, End.SKIPPED, restart=True)
            return
        warm, record = self.player.warm, self.host.record
        head = record.queue[0] if record is not None and record.queue else None
        if warm is None or warm.entry.entry_id != head or record is None:
            self.start_advance(current.entry, End.SKIPPED, restart=True)
            return
        async with self.transition:  # the next track is open already: switch to it at once
            popped = await self.host.io(self.host.store.pop_head, self.host.guild_id, self.host.generation,
                                    requeue_current=record.desired.loop is LoopMode.QUEUE)  # fmt: skip
            if popped is None or popped.entry_id != warm.entry.entry_id:
                self.player.drop_warm("the queue changed")
                if popped is None:
                    self.player.idle("the queue was emptied")
                    await self.host.publish()
                else:
                    self.start_advance(current.entry, End.SKIPPED, restart=True, popped=popped)
                return
            self.player.take_warm(popped)
            self._started(popped)
            await self.host.publish()
        self.host.spawn(self.host.post_now_playing(), "now-playing card")
        self.host.spawn(self.prefetch(self.host.record), "prefetch")

    @property
    def _resolve_timeout_s(self) -> float:
        return self.host.settings.source_socket_timeout_s + 30

    def source_event(self, event: SourceEvent) -> None:
        """The current stream ended (from the player thread, delivered on the loop)."""
        self.host.spawn(self._after_stream(event), "track end", fatal=True)

    async def _after_stream(self, event: SourceEvent) -> None:
        async with self.transition:
            current = self.player.current
            if current is None or current.source is not event.ended:
                return
            self.heard(current)
            if event.natural:
                self._failures_in_a_row = 0
            if event.started is not None:
                await self._chained(current.entry, event.started.entry_id)
                return
            if not event.natural:
                await self._stream_broke(current)
                return
        self.start_advance(current.entry, End.NATURAL)

    async def _chained(self, finished: QueueEntry, started_id: str) -> None:
        """The source went on to the warm next track: make the store agree (a fenced pop)."""
        warm = self.player.warm
        record = self.host.record
        loop_mode = record.desired.loop if record is not None else LoopMode.OFF
        if warm is None or warm.entry.entry_id != started_id:
            return
        if loop_mode is LoopMode.TRACK and started_id == finished.entry_id:
            self.player.chain(warm.source, finished, warm.stream)
        else:
            popped = await self.host.io(self.host.store.pop_head, self.host.guild_id, self.host.generation,
                                    requeue_current=loop_mode is LoopMode.QUEUE)  # fmt: skip
            if popped is None or popped.entry_id != started_id:
                _log.warning("the queue changed under the next track (%s, not %s): following the store",
                             popped.entry_id if popped else None, started_id)  # fmt: skip
                self.player.chain(warm.source, warm.entry, warm.stream)
                if popped is None:
                    self.player.idle("the queue was emptied")
                    await self.host.publish()
                else:
                    self.start_advance(None, End.NONE, restart=True, popped=popped)
                return
            self.player.chain(warm.source, popped, warm.stream)
            self._started(popped)
        await self.host.publish()
        self.host.spawn(self.host.post_now_playing(), "now-playing card")
        self.host.spawn(self.prefetch(self.host.record), "prefetch")

    async def _stream_broke(self, current: Playing) -> None:
        """A stream ended before its track: resolve it again and go on, or skip the track."""
        failure = classify_failure(current.source.stderr.text(), None)
        position = current.source.position_ms
        if failure is StreamFailure.GONE or current.restarts >= MAX_STREAM_RESTARTS:
            _log.warning("stream of %s failed (%s): %s", current.entry.entry_id, failure.value,
                         current.source.stderr.text()[-500:])  # fmt: skip
            if not await self._failed(current.entry, "the source stopped serving it", reason=f"stream_{failure.value}",
                                      lasting=failure is StreamFailure.GONE):  # fmt: skip
                self.start_advance(current.entry, End.FAILED)
            return
        _log.warning("stream of %s broke at %s ms (%s): resolving it again", current.entry.entry_id, position,
                     failure.value)  # fmt: skip
        try:
            current.stream = await self.player.resolve(current.entry, timeout_s=self._resolve_timeout_s)
        except (SourceError, TimeoutError):
            if not await self._failed(current.entry, "the source stopped serving it"):
                self.start_advance(current.entry, End.FAILED)
            return
        current.restarts += 1
        self.player.restart(position, reason=f"stream {failure.value}")

    def player_ended(self, token: int, error: Exception | None) -> None:
        """discord.py's audio player stopped on its own (an error, or a reconnect it waited out)."""
        if token != self.player.token or self.host.exit_reason is not None:
            return
        if self.player.machine.state in (PlaybackState.IDLE, PlaybackState.STOPPING):
            return
        _log.warning("the audio player stopped (%r): playing the track again from where it was", error)
        self.player.source = None
        self.host.spawn(self._replay_current(), "replay after the player stopped")

    async def _replay_current(self) -> None:
        for _ in range(int(self.host.settings.voice_reconnect_deadline_s)):
            if self.host.exit_reason is not None or self.player.current is None:
                return
            if self.host.connection.health(self.host.clock()) is Health.CONNECTED:
                async with self.transition:
                    self.player.reattach(paused=self.host.applied.paused)
                return
            await asyncio.sleep(1.0)

    def warm_ahead(self, record: GuildRecord) -> None:
        """A few seconds before the end, open the next track so the change is seamless."""
        current = self.player.current
        warm = self.player.warm
        if current is None:
            return
        loop_track = record.desired.loop is LoopMode.TRACK
        next_id = current.entry.entry_id if loop_track else (record.queue[0] if record.queue else None)
        if next_id is None and record.desired.loop is LoopMode.QUEUE:
            next_id = current.entry.entry_id
        if warm is not None and warm.entry.entry_id != next_id:
            self.player.drop_warm("the next entry changed")
        remaining = self.player.remaining_s()
        if (warm is None and next_id is not None and not self._warming and remaining is not None
                and remaining <= WARM_AHEAD_S and self.player.machine.state is PlaybackState.PLAYING):  # fmt: skip
            self._warming = True
            self.host.spawn(self._warm(next_id, current.entry), "warm next")

    async def _warm(self, entry_id: str, current: QueueEntry) -> None:
        try:
            if entry_id == current.entry_id:
                entry: QueueEntry | None = current
            else:
                entries = await self.host.io(self.host.store.get_entries, self.host.guild_id, [entry_id])
                entry = entries[0] if entries else None
            if entry is None:
                return
            stream = await self.player.resolve(entry, timeout_s=WARM_AHEAD_S * 2)
            if self.player.current is not None and self.player.warm is None:
                # Looping one track replays it whole; a track "play now" interrupted resumes where it was.
                self.player.warm_next(entry, stream, 0 if entry.entry_id == current.entry_id else entry.start_ms)
        except (SourceError, TimeoutError) as exc:
            _log.info("could not warm %s: %s", entry_id, exc)  # it is resolved again when it starts
        finally:
            self._warming = False

    async def prefetch(self, record: GuildRecord | None) -> None:
        """Resolve the next entry's stream early (a skip then only has to open it)."""
        if record is None or not record.queue:
            return
        entries = await self.host.io(self.host.store.get_entries, self.host.guild_id, [record.queue[0]])
        if entries:
            with contextlib.suppress(SourceError, TimeoutError):
                stream = await self.player.resolve(entries[0], timeout_s=60)
                self.player.prefetched(entries[0].entry_id, stream, url=entries[0].url)
