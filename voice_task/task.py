"""One guild's voice session: claim the lease, join, play the queue, reconcile, leave.

The task is level-triggered: each tick it reads the guild record and brings playback to the desired
state (BRIEF §1). It writes only its own "actual" state, always conditional on its lease generation,
so a stalled or superseded task can change nothing (BRIEF §4.3). The pieces:
- ``lease.LeaseKeeper`` renews the lease on a thread of its own;
- ``connection.Connection`` is the gateway session and the voice connection;
- ``player.Player`` opens sources and changes tracks (inside the audio source, at a natural end);
- ``autoplay.Autoplay`` refills an empty queue from a mix;
- this module orders them: the tick, track changes (one at a time, a loop, never recursion),
  timeouts, the published state and the messages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

from timmybot import metrics
from timmybot.config import Settings
from timmybot.errors import StaleGenerationError
from timmybot.identify import IdentifyBudget
from timmybot.models import Actual, GuildRecord, LeaseState, QueueEntry
from timmybot.sources.chain import SourceChain
from timmybot.store.base import Store
from voice_task.audio import ffmpeg_executable
from voice_task.autoplay import Autoplay
from voice_task.card import CardEditor
from voice_task.card_lyrics import CardLyrics
from voice_task.connection import ChannelFullError, Connection, ConnectionEvents, NoVoiceChannelError
from voice_task.exits import EXIT_MESSAGES, RESUMABLE, ExitReason
from voice_task.lease import LeaseKeeper, claim
from voice_task.notices import Notifier, now_playing_message, requester_ping_message
from voice_task.player import Player, SourceEvent
from voice_task.polling import only_heartbeat, playing_poll_s, same_picture
from voice_task.reconcile import Action, Applied, plan
from voice_task.sequencer import End, Sequencer
from voice_task.states import LIFECYCLE_MOVES, PLAYBACK_MOVES, Lifecycle, Machine, PlaybackState
from voice_task.voice_watch import VoiceWatch
from voice_task.wake import WakeListener

_log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")


class VoiceTask:
    def __init__(self, settings: Settings, store: Store, guild_id: str, *, generation: int | None, holder: str,
                 notifier: Notifier | None = None, budget: IdentifyBudget | None = None,
                 gateway_limits: Callable[[], dict[str, Any]] | None = None,
                 wake: WakeListener | None = None, sources: SourceChain | None = None,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.settings = settings
        self.store = store
        self.guild_id = guild_id
        self.generation = generation or 0
        self._launched_generation = generation
        self.holder = holder
        self.notifier = notifier
        self.clock = clock
        # The bootstrap's chain is over this same store; a task built without one (tests) gets that too.
        sources = sources or SourceChain.over_store(settings.source_settings(), store)
        self.card = CardEditor(
            self._send_card, self.clock, refresh_s=settings.card_refresh_s, min_edit_s=settings.card_min_edit_s
        )
        self._card_status: str | None = None
        self._wake_listener = wake
        self.lifecycle = Machine("lifecycle", Lifecycle.STARTING, LIFECYCLE_MOVES, strict=settings.strict_states)
        self.exit_reason: ExitReason | None = None
        self.applied = Applied(skip_seq=0, stop_seq=0, seek_seq=0, paused=False, volume=100)
        self.actual = Actual()
        self.record: GuildRecord | None = None  # the newest version the task has read or written
        self.stale_reads = 0  # eventually consistent reads older than ``record``, ignored
        self._read_consistently = True  # the next timer tick's read (after a stale one: strongly)
        self._wake = asyncio.Event()
        self._publishing = asyncio.Lock()
        self._store_pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="store")
        self._rest_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="rest")
        # LRCLIB look-ups for the card's lyrics: their own thread, so a slow one holds no store call.
        self._lyrics_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lyrics")
        self.card_lyrics = CardLyrics(settings, store, self._in_lyrics_pool)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.idle_since = clock()
        self._alone_since: float | None = None
        self.watch = VoiceWatch(self)
        self._lease_keeper: LeaseKeeper | None = None
        self.connection = Connection(settings, guild_id, ConnectionEvents(
            on_voice_close=self.watch.closed, on_transition=self._wake.set, on_recovered=self.watch.recovered,
            on_bot_moved=self.watch.bot_moved, on_change=self._wake.set, on_identify_refused=self._identify_refused,
        ), budget=budget, gateway_limits=gateway_limits, run_blocking=self.io)  # fmt: skip
        self.player = Player(
            sources=sources,
            ffmpeg=ffmpeg_executable(settings.ffmpeg_path),
            machine=Machine("playback", PlaybackState.IDLE, PLAYBACK_MOVES, strict=settings.strict_states),
            voice=lambda: self.connection.voice,
            on_event=self._source_event,
            on_player_end=self._player_ended,
            clock=clock,
            guild_id=guild_id,
        )
        self.autoplay = Autoplay(sources, run_blocking=self.io, guild_id=guild_id)
        self.sequencer = Sequencer(self, self.player, self.autoplay)

    def _source_event(self, event: SourceEvent) -> None:
        self.sequencer.source_event(event)

    def _player_ended(self, token: int, error: Exception | None) -> None:
        self.sequencer.player_ended(token, error)

    # ------------------------------------------------------------------ running
    async def run(self) -> ExitReason:
        if self._wake_listener is not None:
            await self._wake_listener.start(self._wake.set)
        if not await self._claim():
            await self._stop_listener()
            return ExitReason.LEASE_REFUSED
        loop = asyncio.get_running_loop()

        def lease_lost() -> None:
            loop.call_soon_threadsafe(self.request_exit, ExitReason.SUPERSEDED)

        self._lease_keeper = LeaseKeeper(
            self.store, self.guild_id, self.generation, ttl_s=self.settings.lease_ttl_s,
            every_s=self.settings.heartbeat_s, clock=self.clock, on_lost=lease_lost,
            wake=self._wake_listener.address if self._wake_listener is not None else None,
        )  # fmt: skip
        self._lease_keeper.start()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, self.request_exit, ExitReason.SIGTERM)
        try:
            await self._connect_and_join()
            if self.exit_reason is None:
                await self._loop()
        except StaleGenerationError:
            self.request_exit(ExitReason.SUPERSEDED)
        except Exception:
            _log.exception("voice task failed")
            self.request_exit(ExitReason.ERROR)
        finally:
            await self._shutdown()
        return self.exit_reason or ExitReason.ERROR

    def request_exit(self, reason: ExitReason) -> None:
        if self.exit_reason is None:
            _log.info("exit requested: %s", reason.value)
            self.exit_reason = reason
        self._wake.set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str, *, fatal: bool = False) -> asyncio.Task[Any]:
        """A background task, kept referenced; its failure is logged (and ends the task if fatal)."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if finished.cancelled():
                return
            error = finished.exception()
            if error is not None:
                _log.error("background task %s failed", name, exc_info=error)
                if fatal:
                    self.request_exit(ExitReason.ERROR)

        task.add_done_callback(done)
        return task

    async def io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking store call off the event loop, in the store's own pool."""
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._store_pool, call)

    async def _in_lyrics_pool(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._lyrics_pool, functools.partial(fn, *args))

    async def _rest(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._rest_pool, functools.partial(fn, *args))

    # ------------------------------------------------------------------ lease and connection
    async def _claim(self) -> bool:
        wake = self._wake_listener.address if self._wake_listener is not None else None
        claimed = await self.io(claim, self.store, self.guild_id, holder=self.holder,
                                launched_generation=self._launched_generation, ttl_s=self.settings.lease_ttl_s,
                                wake=wake)  # fmt: skip
        if claimed is None:
            _log.warning("lease for guild %s is held by another task: exiting", self.guild_id)
            return False
        self.generation, self.record, self.actual = claimed.lease.generation, claimed.record, claimed.record.actual
        self.sequencer.played_seq = claimed.record.actual.played_seq
        self.applied = claimed.applied
        self.player.volume = claimed.applied.volume
        self.player.filters = claimed.applied.filters
        self.sequencer.resume_position_ms = claimed.resume_position_ms
        self.sequencer.left_behind = claimed.left_behind
        self.lifecycle.move(Lifecycle.CLAIMED, f"lease generation {self.generation}")
        metrics.emit(metrics.TASKS_STARTED)
        return True

    async def _connect_and_join(self) -> None:
        self.lifecycle.move(Lifecycle.CONNECTING, "logging in")
        if not await self.connection.connect():
            self.request_exit(ExitReason.ERROR)
            return
        assert self.record is not None
        try:
            await self.connection.join(self.record.voice_channel_id)
        except ChannelFullError as full:
            _log.warning("voice channel %s is full", full.channel_id)
            await self.notice(f"I can't join <#{full.channel_id}>: the channel is full. Make room and /play again.")
            self.request_exit(ExitReason.DISCONNECTED)
            return
        except NoVoiceChannelError as missing:
            _log.error("%s", missing)
            self.request_exit(ExitReason.DISCONNECTED)
            return
        self.lifecycle.move(Lifecycle.IN_VOICE, "joined")

    def wake(self) -> None:
        self._wake.set()

    def _identify_refused(self, why: str) -> None:
        self.request_exit(ExitReason.RESTING if why == "resting" else ExitReason.ERROR)

    # ------------------------------------------------------------------ the reconcile loop
    async def _loop(self) -> None:
        interval = self.settings.tick_s
        woken = True  # the first tick reads strongly
        while self.exit_reason is None:
            self._wake.clear()  # before the tick: a hint that lands during it wakes the wait below at once
            # A tick something woke (a wake hint: a control, a /play) reads strongly, so it sees that
            # write at once. A timer tick only looks for what a missed hint would have told: an
            # eventually consistent read (half a read unit on DynamoDB) does, a moment later at worst.
            consistent = woken or self._read_consistently or self._wake_listener is None
            changed = await self._tick(consistent=consistent)
            if self.exit_reason is not None:
                break
            if changed or self._wake_listener is None:
                interval = self.settings.tick_s
            else:  # hints tell us about changes: poll seldom while nothing happens
                interval = min(interval * 2, self.settings.poll_max_s)
            if self.player.current is not None:
                interval = min(interval, playing_poll_s(self.player.remaining_s()))
            woken = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
                woken = True

    def adopt(self, record: GuildRecord) -> tuple[GuildRecord, bool]:
        """Keep ``record`` if it is at least as new as the newest the task knows; returns the record
        to act on and whether ``record`` was older (and so ignored). Versions only grow (every
        write bumps them and a guild record is never deleted), so an older version is a stale
        read: acting on it could undo a control already applied or see a superseded lease."""
        known = self.record
        if known is not None and record.version < known.version:
            return known, True
        self.record = record
        return record, False

    async def _tick(self, *, consistent: bool = True) -> bool:
        read = await self.io(self.store.get_guild, self.guild_id, consistent=consistent)
        previous = self.record
        record, stale = self.adopt(read)
        self._read_consistently = stale  # a replica behind: the next timer tick reads strongly
        if stale:
            self.stale_reads += 1
            _log.debug("ignored a stale read: version %s, %s known", read.version, record.version)
        changed = previous is None or (record.version != previous.version and not only_heartbeat(previous, record))
        now = self.clock()
        if record.lease.generation != self.generation or record.lease.state is not LeaseState.RUNNING:
            _log.warning("lease superseded (now generation %s)", record.lease.generation)
            self.request_exit(ExitReason.SUPERSEDED)
            return True
        if not self.connection.gateway_alive():
            _log.error("the gateway connection ended")
            self.request_exit(ExitReason.DISCONNECTED)
            return True
        if not await self.watch.keep(now):
            return changed
        for action in plan(record.desired, self.applied, playing=self.player.current is not None):
            await self._apply(action, record)
            if self.exit_reason is not None:
                return True
        idle = self.player.current is None and self.sequencer.advancing is None and not self.applied.paused
        if idle and (record.queue or not self.sequencer.recovered):
            self.sequencer.start_advance(None, End.NONE)
        self.sequencer.warm_ahead(record)
        self.sequencer.heard()
        if self._refresh_listeners() or changed:
            await self.publish()
        current = self.player.current
        self.card_lyrics.follow(current.entry if current else None, enabled=record.settings.lyrics_in_card)
        if self.card.due(playing=current is not None, paused=self.applied.paused):
            self.spawn(self.post_now_playing(), "now-playing card refresh")
        elif current is not None and self.card_lyrics.due(self.player.position_ms, paused=self.applied.paused):
            self.spawn(self.post_now_playing(), "now-playing card lyrics")  # the card editor keeps the pace
        self._check_timeouts(record, now)
        return changed

    async def _apply(self, action: Action, record: GuildRecord) -> None:
        desired = record.desired
        _log.info("apply %s", action.value)
        if action is Action.STOP:
            self.applied = replace(self.applied, stop_seq=desired.stop_seq)
            await self.io(self.store.clear_queue, self.guild_id)
            self.request_exit(ExitReason.STOPPED)
        elif action is Action.SKIP:
            self.applied = replace(self.applied, skip_seq=desired.skip_seq, seek_seq=desired.seek_seq)
            await self.sequencer.skip()
        elif action is Action.SEEK:
            self.applied = replace(self.applied, seek_seq=desired.seek_seq)
            self.player.restart(desired.seek_ms, reason="seek")
        elif action is Action.SET_VOLUME:
            self.applied = replace(self.applied, volume=desired.volume)
            self.player.volume = desired.volume
            self.player.drop_warm("the volume changed")
            self.player.restart(self.player.position_ms, reason=f"volume {desired.volume}")
        elif action is Action.SET_FILTERS:
            # The current track goes on from where the listeners are, with the new chain; the warm
            # next one is opened again with it.
            self.applied = replace(self.applied, filters=desired.filters)
            self.player.filters = desired.filters
            self.player.restart(self.player.position_ms, reason=f"filters {desired.filters.describe()}")
            self.player.rewarm("the filters changed")
        elif action is Action.PAUSE:
            self.applied = replace(self.applied, paused=True)
            if self.player.current is not None:
                self.player.pause()
        elif action is Action.RESUME:
            self.applied = replace(self.applied, paused=False)
            if self.player.current is not None:
                self.player.resume()
        await self.publish()
        if action in (Action.PAUSE, Action.RESUME, Action.SET_FILTERS):
            # The card says paused or playing, and which filters play.
            self.spawn(self.post_now_playing(), "now-playing card")

    # ------------------------------------------------------------------ state out
    def _refresh_listeners(self) -> bool:
        listeners = self.connection.listener_ids()
        if listeners == self.actual.listener_ids:
            return False
        self.actual = replace(self.actual, listener_ids=listeners)
        return True

    async def publish(self) -> None:
        """Write what the task is doing. One write at a time, each built just before it goes out:
        two writes in flight at once could land out of order, an older picture over a newer one."""
        async with self._publishing:
            current = self.player.current
            position = self.player.position_ms
            playing = current is not None and not self.applied.paused
            self.actual = replace(
                self.actual,
                now_playing=current.entry if current else self.sequencer.loading,
                started_at=self.clock() - position / 1000 / self.player.rate if playing else None,
                position_ms=position,
                rate=self.player.rate,
                paused=self.applied.paused,
                volume=self.applied.volume,
                applied_skip_seq=self.applied.skip_seq,
                applied_stop_seq=self.applied.stop_seq,
                applied_seek_seq=self.applied.seek_seq,
                listener_ids=self.connection.listener_ids(),
                played_seq=self.sequencer.played_seq,
            )
            if self.record is not None and same_picture(self.record.actual, self.actual):
                # Nothing a reader would see changed (a tick after our own heartbeat, say): no write.
                # Half the task's DynamoDB writes while playing were these (docs/COSTS.md).
                self.actual = self.record.actual
                return
            record = await self.io(self.store.write_actual, self.guild_id, self.generation, self.actual)
            self.adopt(record)
            self.actual = record.actual

    def _check_timeouts(self, record: GuildRecord, now: float) -> None:
        if record.settings.twenty_four_seven and self.settings.allow_24_7:
            return
        if self.player.current is not None or record.queue or self.sequencer.advancing is not None:
            self.idle_since = now
        if now - self.idle_since >= (record.settings.idle_timeout_s or self.settings.idle_timeout_s):
            self.request_exit(ExitReason.IDLE)
            return
        if self.connection.listener_ids():
            self._alone_since = None
        elif self._alone_since is None:
            self._alone_since = now
        elif now - self._alone_since >= self.settings.alone_timeout_s:
            self.request_exit(ExitReason.ALONE)

    # ------------------------------------------------------------------ messages
    async def post_now_playing(self, status: str | None = None) -> None:
        """Show the card (through the one card editor: at most one edit every 5 s)."""
        record = self.record
        current = self.player.current
        if self.notifier is None or current is None or record is None or not record.text_channel_id:
            return
        self._card_status = status
        if self.card.state.message_id is None and self.actual.message_channel_id == record.text_channel_id:
            self.card.adopt(self.actual.message_channel_id, self.actual.message_id)
        await self.card.show(record.text_channel_id, current.entry.entry_id)

    async def _send_card(self, channel_id: str, message_id: str | None) -> str | None:
        """Post or edit the card with what plays now (built at send time: a held edit shows the latest)."""
        record = self.record
        if self.notifier is None or record is None or self.player.current is None:
            return None
        playing = self.player.current.entry.entry_id
        lyrics = self.card_lyrics.window(playing, self.player.position_ms) if record.settings.lyrics_in_card else None
        body = now_playing_message(
            record.evolve(actual=self.actual), self.clock(), status=self._card_status, lyrics=lyrics
        )
        if message_id is not None:
            outcome = await self._rest(self.notifier.edit_card, channel_id, message_id, body)
            if outcome == "ok":
                return message_id
            if outcome == "gone":
                if self.actual.message_id == message_id:
                    self.actual = replace(self.actual, message_channel_id=None, message_id=None)
                    await self.publish()
                return CardEditor.GONE
        new_id = await self._rest(self.notifier.send, channel_id, body)
        if new_id and new_id != self.actual.message_id:
            self.actual = replace(self.actual, message_channel_id=channel_id, message_id=new_id)
            await self.publish()
        return new_id

    async def notice(self, content: str) -> None:
        record = self.record
        if self.notifier is not None and record is not None and record.text_channel_id:
            await self._rest(self.notifier.send, record.text_channel_id, {"content": content})

    async def ping_requester(self, entry: QueueEntry) -> None:
        record = self.record
        if self.notifier is not None and record is not None and record.text_channel_id:
            await self._rest(self.notifier.send, record.text_channel_id, requester_ping_message(entry))

    async def _announce_exit(self, reason: ExitReason) -> None:
        message = EXIT_MESSAGES.get(reason)
        if self.notifier is None or message is None or not self.actual.message_id or not self.actual.message_channel_id:
            return
        try:
            await self._rest(self.notifier.edit, self.actual.message_channel_id, self.actual.message_id,
                             {"content": message, "embeds": [], "components": []})  # fmt: skip
        except Exception:
            _log.warning("could not edit the now-playing card on exit", exc_info=True)

    # ------------------------------------------------------------------ leaving
    async def _shutdown(self) -> None:
        self.lifecycle.move(Lifecycle.LEAVING, (self.exit_reason or ExitReason.ERROR).value)
        reason = self.exit_reason or ExitReason.ERROR
        position, current = self.player.position_ms, self.player.current
        self.player.machine.move(PlaybackState.STOPPING, reason.value)
        for task in list(self._tasks):
            task.cancel()
        self.card.close()  # a held card edit must not land on top of the exit message
        self.card_lyrics.close()
        self.player.stop()
        if self._lease_keeper is not None:
            self._lease_keeper.stop()
        if reason is not ExitReason.SUPERSEDED:
            resume = position if reason in RESUMABLE and current is not None else None
            with contextlib.suppress(StaleGenerationError):
                await self.io(self.store.release_lease, self.guild_id, generation=self.generation,
                               resume_position_ms=resume, voice_gave_up=reason is ExitReason.VOICE_LOST)  # fmt: skip
        await self.connection.leave()
        await self._announce_exit(reason)
        await self.connection.close()
        await self._stop_listener()
        self._store_pool.shutdown(wait=False)
        self._rest_pool.shutdown(wait=False)
        self._lyrics_pool.shutdown(wait=False, cancel_futures=True)
        self.lifecycle.move(Lifecycle.DONE, reason.value)
        _log.info("voice task for guild %s exits: %s", self.guild_id, reason.value)
        metrics.emit(metrics.TASK_EXITS, dimensions={"reason": reason.value})

    async def _stop_listener(self) -> None:
        if self._wake_listener is not None:
            with contextlib.suppress(Exception):
                await self._wake_listener.stop()
