"""One guild's voice session: claim the lease, join, play the queue, reconcile, leave.

The task is level-triggered: every tick it reads the guild record and brings playback to the
desired state (BRIEF §1). It writes only its own "actual" state, always conditional on its lease
generation, so a stalled or superseded task can change nothing (BRIEF §4.3).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import functools
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ParamSpec, TypeVar

import discord

from timmybot import metrics, personal, text
from timmybot.config import Settings
from timmybot.errors import BotRestingError, SourceError, StaleGenerationError, TimmyError
from timmybot.identify import IDENTIFY_WINDOW_S, IdentifyBudget
from timmybot.models import Actual, GuildRecord, LeaseState, LoopMode, QueueEntry
from timmybot.sources import stream_for
from timmybot.sources.models import StreamInfo, Track
from timmybot.store.base import Store
from voice_task.audio import (
    StderrTail,
    StreamFailure,
    TrackSource,
    build_source,
    classify_failure,
    ffmpeg_executable,
)
from voice_task.notices import Notifier, now_playing_message
from voice_task.reconcile import Action, Applied, plan, shard_of
from voice_task.voice_client import DAVE_REQUIRED, DaveVoiceClient, VoiceEvents, dave_ready

_log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")

MAX_FAILURES_IN_A_ROW = 3
VOICE_STUCK_S = 10.0  # not connected and not reconnecting this long: rejoin from scratch
MAX_REJOINS = 3  # rejoins without a stable minute in between before giving up (never loop)
STABLE_VOICE_S = 60.0
MAX_IDENTIFY_BACKOFF_S = 60.0
MAX_STREAM_RESTARTS = 2
MAX_AUTOPLAY_MISSES = 3  # autoplay batches in a row that never started playing before autoplay gives up
AUTOPLAY_MEMORY = 50  # tracks autoplay will not pick again
AUTOPLAY_REQUESTER = "autoplay"
EARLY_END_TOLERANCE_S = 3.0


class ExitReason(enum.StrEnum):
    STOPPED = "stopped"  # /stop
    IDLE = "idle"  # nothing queued or played for idle_timeout
    ALONE = "alone"  # no human in the channel for alone_timeout
    SUPERSEDED = "superseded"  # another task holds the lease now
    LEASE_REFUSED = "lease_refused"  # could not claim the lease at start
    SIGTERM = "sigterm"  # Spot interruption or deploy: saved a resume point
    RESTING = "resting"  # the daily identify budget is spent
    DISCONNECTED = "disconnected"  # kicked from voice / channel gone
    ERROR = "error"


EXIT_MESSAGES: dict[ExitReason, str] = {
    ExitReason.STOPPED: "Stopped and left the channel.",
    ExitReason.IDLE: "Left the channel: nothing was queued for a while.",
    ExitReason.ALONE: "Left the channel: nobody was listening.",
    ExitReason.SIGTERM: "Restarting the player; music resumes in a moment.",
    ExitReason.RESTING: "Left the channel: the bot is resting to stay within Discord's daily connection limit.",
    ExitReason.DISCONNECTED: "Left the channel: I was disconnected.",
    ExitReason.ERROR: "The player hit an error and left.",
}


class Lifecycle(enum.Enum):
    STARTING = "starting"
    CLAIMED = "claimed"
    CONNECTING = "connecting"
    IN_VOICE = "in_voice"
    LEAVING = "leaving"
    DONE = "done"


@dataclass
class Playing:
    entry: QueueEntry
    stream: StreamInfo
    started_at: float  # wall-clock time at which position 0 would have played
    paused_position_ms: int | None = None
    restarts: int = 0
    play_token: int = 0
    stderr: StderrTail = field(default_factory=StderrTail)
    source: TrackSource | None = None


class VoiceTask:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        guild_id: str,
        *,
        generation: int | None,
        holder: str,
        notifier: Notifier | None = None,
        budget: IdentifyBudget | None = None,
        gateway_limits: Callable[[], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.guild_id = guild_id
        self.generation = generation or 0
        self._launched_generation = generation
        self.holder = holder
        self.notifier = notifier
        self.budget = budget
        self.gateway_limits = gateway_limits
        self.clock = clock
        self._identify_attempts = 0
        self._client_task: asyncio.Task[None] | None = None
        self._voice_lost_at: float | None = None
        self._voice_close_code: int | None = None
        self._rejoins = 0
        self._voice_up_since = clock()
        self.state = Lifecycle.STARTING
        self.exit_reason: ExitReason | None = None
        self.applied = Applied(skip_seq=0, stop_seq=0, seek_seq=0, paused=False, volume=100)
        self.actual = Actual()
        self.current: Playing | None = None
        self.client: discord.Client | None = None
        self.voice: discord.VoiceClient | None = None
        self._wake = asyncio.Event()
        self._play_token = 0
        self._skip_requested = False
        self._failures_in_a_row = 0
        self._prefetched: dict[str, StreamInfo] = {}
        self._last_renew = 0.0
        self._idle_since = clock()
        self._alone_since: float | None = None
        self._ffmpeg = ffmpeg_executable(settings.ffmpeg_path)
        self._record: GuildRecord | None = None
        self._ready = asyncio.Event()
        self._resume_position_ms: int | None = None
        # Track changes (the tick starting the next track, a track ending on the player thread, a
        # rejoin) run one at a time: two of them racing would both pick "the next track".
        self._transition = asyncio.Lock()
        self._recovered = False  # the first advance replays a track a dead predecessor left playing
        self._played: collections.deque[tuple[str, str]] = collections.deque(maxlen=AUTOPLAY_MEMORY)
        self._last_played: Track | None = None
        self._autoplay_misses = 0
        self._autoplay_seq = 0

    # ------------------------------------------------------------------ lifecycle
    def _set_state(self, state: Lifecycle) -> None:
        _log.info("lifecycle %s -> %s", self.state.value, state.value)
        self.state = state

    async def run(self) -> ExitReason:
        if not await self._claim():
            return ExitReason.LEASE_REFUSED
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, self.request_exit, ExitReason.SIGTERM)
        client_task: asyncio.Task[None] | None = None
        try:
            client_task = await self._connect()
            if client_task is None:
                return self.exit_reason or ExitReason.ERROR
            await self._join()
            if self.exit_reason is None:
                await self._loop()
        except StaleGenerationError:
            self.exit_reason = ExitReason.SUPERSEDED
        except Exception:
            _log.exception("voice task failed")
            self.exit_reason = ExitReason.ERROR
        finally:
            await self._shutdown(client_task)
        return self.exit_reason or ExitReason.ERROR

    def request_exit(self, reason: ExitReason) -> None:
        if self.exit_reason is None:
            _log.info("exit requested: %s", reason.value)
            self.exit_reason = reason
        self._wake.set()

    async def _claim(self) -> bool:
        ttl = self.settings.lease_ttl_s
        if self._launched_generation is not None:
            generation = self._launched_generation
            lease = await self._call(
                self.store.claim_lease, self.guild_id, generation=generation, holder=self.holder, ttl_s=ttl
            )
        else:
            lease = await self._call(
                self.store.acquire_lease, self.guild_id, holder=self.holder, state=LeaseState.RUNNING, ttl_s=ttl
            )
        if lease is None:
            _log.warning("lease for guild %s is held by another task: exiting", self.guild_id)
            return False
        self.generation = lease.generation
        self._last_renew = self.clock()
        record = await self._call(self.store.get_guild, self.guild_id)
        self._record = record
        self.actual = record.actual
        self.applied = Applied(
            skip_seq=record.actual.applied_skip_seq,
            stop_seq=record.actual.applied_stop_seq,
            seek_seq=record.actual.applied_seek_seq,
            paused=False,
            volume=record.desired.volume,
        )
        if lease.resume and record.queue and record.queue[0] == lease.resume.get("entry_id"):
            self._resume_position_ms = int(lease.resume.get("position_ms", 0))
        self._set_state(Lifecycle.CLAIMED)
        metrics.emit(metrics.TASKS_STARTED)
        _log.info("claimed lease generation %s for guild %s", self.generation, self.guild_id)
        return True

    async def _connect(self) -> asyncio.Task[None] | None:
        self._set_state(Lifecycle.CONNECTING)
        intents = discord.Intents.none()
        intents.guilds = True
        intents.voice_states = True
        shard_count = self.settings.shard_count
        task = self

        class _Client(discord.Client):
            async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
                await task._before_identify(initial=initial)

            async def on_ready(self) -> None:
                task._identify_attempts = 0
                guild_ids = sorted(str(g.id) for g in self.guilds)
                _log.info("gateway ready on shard %s/%s with guilds %s", self.shard_id, self.shard_count, guild_ids)
                task._ready.set()

            async def on_voice_state_update(
                self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
            ) -> None:
                if self.user is not None and member.id == self.user.id and member.guild.id == int(task.guild_id):
                    await task._bot_voice_moved(after.channel.id if after.channel else None)
                task._wake.set()

        self.client = _Client(
            intents=intents,
            shard_id=shard_of(self.guild_id, shard_count),
            shard_count=shard_count,
            chunk_guilds_at_startup=False,
            guild_ready_timeout=1.0,
        )
        client_task = asyncio.create_task(self.client.start(self.settings.discord_bot_token))
        self._client_task = client_task
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({client_task, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if client_task in done and client_task.exception() is not None:
                _log.error("gateway connection failed: %r", client_task.exception())
            else:
                _log.error("gateway did not become ready in time")
            self.exit_reason = ExitReason.ERROR
            return None if client_task.done() else client_task
        return client_task

    async def _before_identify(self, *, initial: bool) -> None:
        """Every IDENTIFY (discord.py's re-identifies too) goes through the shared budget (BRIEF §4.4)."""
        self._identify_attempts += 1
        if self._identify_attempts > self.settings.identify_max_attempts:
            _log.error("gave up after %s identifies without a session", self._identify_attempts - 1)
            self.request_exit(ExitReason.ERROR)
            raise RuntimeError("too many invalid sessions")
        if self._identify_attempts > 1:
            backoff = min(MAX_IDENTIFY_BACKOFF_S, IDENTIFY_WINDOW_S * 2.0 ** (self._identify_attempts - 2))
            _log.warning(
                "identify attempt %s (initial=%s): backing off %.0f s", self._identify_attempts, initial, backoff
            )
            await asyncio.sleep(backoff)
        if self.budget is None:
            return
        if self.gateway_limits is not None:
            try:
                limits = await asyncio.to_thread(self.gateway_limits)
                await asyncio.to_thread(self.budget.observe, limits)
            except Exception as exc:  # the budget still spaces identifies from what it knows
                _log.warning("could not read the gateway session limits: %s", exc)
        try:
            wait = await asyncio.to_thread(self.budget.reserve)
        except BotRestingError:
            _log.error("the identify budget is exhausted: not identifying")
            self.request_exit(ExitReason.RESTING)
            raise
        if wait > 0:
            _log.info("waiting %.1f s for an identify slot", wait)
            await asyncio.sleep(wait)

    async def _join(self) -> None:
        assert self.client is not None and self._record is not None
        guild = self.client.get_guild(int(self.guild_id))
        channel_id = self._record.voice_channel_id
        channel = guild.get_channel(int(channel_id)) if guild and channel_id else None
        if not isinstance(channel, discord.VoiceChannel | discord.StageChannel):
            _log.error("voice channel %s of guild %s is not available", channel_id, self.guild_id)
            self.exit_reason = ExitReason.DISCONNECTED
            return
        others = [uid for uid in channel.voice_states if self.client.user is None or uid != self.client.user.id]
        if channel.user_limit and len(others) >= channel.user_limit:
            _log.warning("voice channel %s is full (%s/%s)", channel.id, len(others), channel.user_limit)
            await self._notice(f"I can't join <#{channel.id}>: the channel is full. Make room and /play again.")
            self.exit_reason = ExitReason.DISCONNECTED
            return
        events = VoiceEvents(
            on_close=self._voice_closed,
            on_transition=self._wake.set,
            on_recovered=self._voice_recovered,
            reconnect_deadline_s=self.settings.voice_reconnect_deadline_s,
        )
        try:
            # reconnect=False: discord.py's own reconnect stays off; DaveVoiceClient owns it. The
            # timeout is also how long the player waits for a reconnect before it gives up a track.
            self.voice = await channel.connect(
                cls=functools.partial(DaveVoiceClient, events=events),
                self_deaf=True,
                timeout=max(30.0, self.settings.voice_reconnect_deadline_s),
                reconnect=False,
            )
        except discord.ConnectionClosed as exc:
            self._voice_closed(exc.code)
            raise
        self._set_state(Lifecycle.IN_VOICE)

    async def _shutdown(self, client_task: asyncio.Task[None] | None) -> None:
        self._set_state(Lifecycle.LEAVING)
        reason = self.exit_reason or ExitReason.ERROR
        position = self._position_ms()
        current = self.current
        self.current = None
        if self.voice is not None:
            self._play_token += 1  # ignore the after-callback of the final stop
            with contextlib.suppress(Exception):
                self.voice.stop()
        if reason is not ExitReason.SUPERSEDED:
            resume = position if reason is ExitReason.SIGTERM and current is not None else None
            with contextlib.suppress(StaleGenerationError):
                await self._call(
                    self.store.release_lease, self.guild_id, generation=self.generation, resume_position_ms=resume
                )
        if self.voice is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.voice.disconnect(force=True), timeout=5)
        await self._announce_exit(reason)
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.close(), timeout=5)
        if client_task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(client_task, timeout=5)
        self._set_state(Lifecycle.DONE)
        _log.info("voice task for guild %s exits: %s", self.guild_id, reason.value)
        metrics.emit(metrics.TASK_EXITS, dimensions={"reason": reason.value})

    # ------------------------------------------------------------------ the reconcile loop
    async def _loop(self) -> None:
        tick = self.settings.tick_s
        while self.exit_reason is None:
            await self._tick()
            if self.exit_reason is not None:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=tick)

    async def _tick(self) -> None:
        record = await self._call(self.store.get_guild, self.guild_id)
        self._record = record
        now = self.clock()
        if record.lease.generation != self.generation or record.lease.state is not LeaseState.RUNNING:
            _log.warning("lease superseded (now generation %s)", record.lease.generation)
            self.request_exit(ExitReason.SUPERSEDED)
            return
        if now - self._last_renew >= self.settings.heartbeat_s:
            if not await self._call(
                self.store.renew_lease, self.guild_id, generation=self.generation, ttl_s=self.settings.lease_ttl_s
            ):
                self.request_exit(ExitReason.SUPERSEDED)
                return
            self._last_renew = now
        if self._client_task is not None and self._client_task.done():
            _log.error("the gateway connection ended")
            self.request_exit(ExitReason.DISCONNECTED)
            return
        if self.voice is None:
            self.request_exit(ExitReason.DISCONNECTED)
            return
        if not await self._voice_healthy(now):
            return

        changed = False
        for action in plan(record.desired, self.applied, playing=self.current is not None):
            changed |= await self._apply(action, record)
            if self.exit_reason is not None:
                return
        if self.current is None and not self._transition.locked():
            async with self._transition:
                if self.current is None:
                    fresh = await self._call(self.store.get_guild, self.guild_id)
                    changed |= await self._advance(fresh, finished=False)
        changed |= self._refresh_listeners()
        if changed:
            await self._publish()
        self._check_timeouts(record, now)

    # ------------------------------------------------------------------ voice connection health
    def _voice_closed(self, code: int | None) -> None:
        """Every voice websocket close, by code (from the voice client itself, not from logs)."""
        self._voice_close_code = code
        _log.warning("the voice websocket closed with %s", code)
        metrics.emit(metrics.VOICE_CLOSE_CODE, dimensions={"code": str(code) if code is not None else "timeout"})
        if code == DAVE_REQUIRED:
            _log.error(
                "Discord closed voice with 4017 (DAVE end-to-end encryption required): this build cannot join "
                "voice; check the davey and discord.py versions. Not reconnecting."
            )
            self.request_exit(ExitReason.ERROR)

    def _voice_recovered(self, seconds: float) -> None:
        _log.info("voice connection recovered in %.2f s", seconds)
        self._wake.set()

    async def _voice_healthy(self, now: float) -> bool:
        """False while the voice connection is down; rejoins from scratch if discord.py can't recover."""
        assert self.voice is not None
        if self.voice.is_connected():
            if self._voice_lost_at is not None:
                _log.info("voice connection back after %.1f s", now - self._voice_lost_at)
                self._voice_lost_at = None
                self._voice_up_since = now
            if now - self._voice_up_since >= STABLE_VOICE_S:
                self._rejoins = 0
            return True
        guild = self.client.get_guild(int(self.guild_id)) if self.client is not None else None
        if guild is not None and guild.voice_client is None:
            # discord.py dropped the voice client: an external disconnect (a moderator, a deleted channel).
            _log.info("disconnected from voice by someone else: leaving")
            self.request_exit(ExitReason.DISCONNECTED)
            return False
        if self._voice_lost_at is None:
            self._voice_lost_at = now
            _log.warning("voice connection lost (last close code %s)", self._voice_close_code)
            return False
        if isinstance(self.voice, DaveVoiceClient) and self.voice.reconnecting:
            return False  # the voice client is getting it back, until its deadline
        if now - self._voice_lost_at < VOICE_STUCK_S:
            return False
        await self._rejoin()
        return False

    async def _rejoin(self) -> None:
        """Leave and join again with a fresh connection, then continue the track where it was."""
        async with self._transition:
            await self._rejoin_now()

    async def _rejoin_now(self) -> None:
        assert self.voice is not None and self._record is not None
        self._rejoins += 1
        if self._rejoins > MAX_REJOINS:
            _log.error("voice connection lost %s times in a row (last close code %s): giving up", self._rejoins - 1,
                       self._voice_close_code)  # fmt: skip
            self.request_exit(ExitReason.DISCONNECTED)
            return
        current = self.current
        position = self._position_ms()
        self._play_token += 1  # the old player's after-callback must not advance the queue
        self.current = None
        _log.warning("rejoining voice (attempt %s) at %s ms", self._rejoins, position)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.voice.disconnect(force=True), timeout=5)
        self.voice = None
        try:
            await self._join()
        except (TimeoutError, discord.ClientException) as exc:
            _log.warning("rejoin failed: %s", exc)
            self._voice_lost_at = self.clock()
            return
        self._voice_lost_at = None
        self._voice_up_since = self.clock()
        if current is not None:
            await self._start(current.entry, position_ms=position)

    async def _bot_voice_moved(self, channel_id: int | None) -> None:
        """Our own voice state changed: kicked (leave cleanly) or moved (follow, and record it)."""
        if self.state is not Lifecycle.IN_VOICE or self.exit_reason is not None:
            return
        if channel_id is None:
            return  # our own reconnect flow, or a kick: _voice_healthy tells them apart
        record = self._record
        if record is not None and record.voice_channel_id != str(channel_id):
            _log.info("moved to voice channel %s: following", channel_id)
            await self._call(
                self.store.set_channels,
                self.guild_id,
                voice_channel_id=str(channel_id),
                text_channel_id=record.text_channel_id,
            )

    async def _apply(self, action: Action, record: GuildRecord) -> bool:
        desired = record.desired
        _log.info("apply %s", action.value)
        if action is Action.STOP:
            self.applied = replace(self.applied, stop_seq=desired.stop_seq)
            await self._call(self.store.clear_queue, self.guild_id)
            self.request_exit(ExitReason.STOPPED)
            return True
        if action is Action.SKIP:
            self.applied = replace(self.applied, skip_seq=desired.skip_seq, seek_seq=desired.seek_seq)
            if self.current is not None and self.voice is not None:
                self._skip_requested = True
                self.voice.stop()  # the after-callback advances
            return True
        if action is Action.SEEK:
            self.applied = replace(self.applied, seek_seq=desired.seek_seq)
            if self.current is not None:
                await self._restart_current(desired.seek_ms)
            return True
        if action is Action.SET_VOLUME:
            self.applied = replace(self.applied, volume=desired.volume)
            if self.current is not None:
                await self._restart_current(self._position_ms())
            return True
        if action is Action.PAUSE:
            self.applied = replace(self.applied, paused=True)
            if self.current is not None and self.voice is not None:
                self.current.paused_position_ms = self._position_ms()
                self.voice.pause()
            return True
        if action is Action.RESUME:
            self.applied = replace(self.applied, paused=False)
            if self.current is not None and self.voice is not None:
                position = self.current.paused_position_ms or 0
                self.current.paused_position_ms = None
                self.current.started_at = self.clock() - position / 1000
                self.voice.resume()
            return True
        return False

    # ------------------------------------------------------------------ tracks
    async def _advance(self, record: GuildRecord, *, finished: bool, replay: bool = False) -> bool:
        """Start the next track; returns True if the actual state changed."""
        if replay and self.current is not None:
            entry = self.current.entry
            await self._start(entry, position_ms=0)
            return True
        requeue = finished and record.desired.loop is LoopMode.QUEUE
        recovering = not self._recovered
        self._recovered = True
        if recovering and record.actual.now_playing is not None and not finished and self.current is None:
            # A previous task died mid-track (no clean release): play that track again.
            entry = record.actual.now_playing
            position = 0
            if record.actual.started_at is not None and record.actual.updated_at:
                position = max(0, int((record.actual.updated_at - record.actual.started_at) * 1000))
            await self._start(entry, position_ms=position)
            return True
        if not record.queue and record.actual.now_playing is None:
            return False
        popped = await self._call(self.store.pop_head, self.guild_id, self.generation, requeue_current=requeue)
        fresh = await self._call(self.store.get_guild, self.guild_id)
        if popped is None and await self._autoplay(record.actual.now_playing, fresh):
            popped = await self._call(self.store.pop_head, self.guild_id, self.generation)
            fresh = await self._call(self.store.get_guild, self.guild_id)
        self._record = fresh
        self.actual = fresh.actual
        if popped is None:
            self.current = None
            self._idle_since = self.clock()
            return True
        position = self._resume_position_ms or 0
        self._resume_position_ms = None
        await self._start(popped, position_ms=position)
        return True

    async def _autoplay(self, finished: QueueEntry | None, record: GuildRecord) -> bool:
        """The queue ran out: with autoplay on, queue the next track of the YouTube mix seeded by the
        last track played. Gives up after ``MAX_AUTOPLAY_MISSES`` batches that never played."""
        if not record.desired.autoplay or finished is None:
            return False
        if self._autoplay_misses >= MAX_AUTOPLAY_MISSES:
            _log.info("autoplay: %s batches in a row did not play; waiting for a track to play", MAX_AUTOPLAY_MISSES)
            return False
        self._autoplay_misses += 1
        try:
            seed = self._last_played or Track.from_dict(finished.track)
            tracks = await asyncio.to_thread(
                personal.autoplay_tracks, seed, self.settings, exclude=frozenset(self._played)
            )
        except (SourceError, KeyError, ValueError) as exc:
            _log.info("autoplay found nothing after %s: %s", finished.entry_id, type(exc).__name__)
            why = exc.user_message if isinstance(exc, SourceError) else "that track can't seed a mix"
            await self._notice(text.fit("Autoplay stopped after **{title}**: {why}", text.IN_LINE, title=finished.title,
                                        why=why))
            return False
        if not tracks:
            title = text.quote(finished.title, text.IN_SENTENCE)
            await self._notice(f"Autoplay stopped after **{title}**: its mix has nothing new.")
            return False
        self._autoplay_seq += 1
        now = self.clock()
        entries = [
            QueueEntry(
                entry_id=f"autoplay-{self.generation}-{int(now * 1000)}-{self._autoplay_seq}-{n}",
                track=track.to_dict(),
                requester_id=AUTOPLAY_REQUESTER,
                added_at=now,
            )
            for n, track in enumerate(tracks)
        ]
        try:
            await self._call(self.store.append_entries, self.guild_id, entries, cap=self.settings.queue_cap)
        except TimmyError as exc:
            _log.info("autoplay could not queue: %s", type(exc).__name__)
            return False
        _log.info("autoplay queued %s track(s) after %s", len(entries), finished.entry_id)
        return True

    async def _start(self, entry: QueueEntry, *, position_ms: int) -> None:
        assert self.voice is not None
        try:
            stream = self._prefetched.pop(entry.entry_id, None)
            if stream is None or stream.is_expired(self.clock()):
                stream = await self._resolve(entry)
        except SourceError as exc:
            await self._track_failed(entry, exc.user_message)
            return
        self._play_token += 1
        token = self._play_token
        loop = asyncio.get_running_loop()
        stderr = StderrTail()
        source = self._track_source(stream, position_ms, stderr)

        def after(error: Exception | None) -> None:
            loop.call_soon_threadsafe(self._on_track_end, token, error)

        if self.voice.is_playing() or self.voice.is_paused():
            self._play_token += 1
            token = self._play_token
            self.voice.stop()
        self.voice.play(source, after=after)
        self.current = Playing(
            entry=entry, stream=stream, started_at=self.clock() - position_ms / 1000, play_token=token, stderr=stderr,
            source=source,
        )  # fmt: skip
        if self.applied.paused:
            self.current.paused_position_ms = position_ms
            self.voice.pause()
        self._skip_requested = False
        self._note_played(entry)
        _log.info("playing %s at %s ms (volume %s)", entry.entry_id, position_ms, self.applied.volume)
        await self._publish()
        await self._post_now_playing()
        self._prefetch_next()

    def _note_played(self, entry: QueueEntry) -> None:
        """Autoplay's memory: the seed for the next mix, and tracks not to pick again."""
        try:
            track = Track.from_dict(entry.track)
        except (KeyError, TypeError, ValueError):
            return
        self._last_played = track
        self._autoplay_misses = 0
        if track.cache_key not in self._played:
            self._played.append(track.cache_key)

    async def _resolve(self, entry: QueueEntry) -> StreamInfo:
        track = Track.from_dict(entry.track)
        return await asyncio.to_thread(stream_for, track, self.settings.source_settings())

    def _prefetch_next(self) -> None:
        record = self._record
        if record is None or not record.queue:
            return
        next_id = record.queue[0]
        if next_id in self._prefetched:
            return

        async def prefetch() -> None:
            try:
                entries = await self._call(self.store.get_entries, self.guild_id, [next_id])
                if entries:
                    self._prefetched[next_id] = await self._resolve(entries[0])
            except SourceError as exc:
                _log.info("prefetch of %s failed: %s", next_id, exc)

        asyncio.get_running_loop().create_task(prefetch())

    async def _restart_current(self, position_ms: int) -> None:
        """Swap the running FFmpeg for one at ``position_ms`` with the current volume (seek, volume)."""
        current = self.current
        if current is None or self.voice is None:
            return
        stream = current.stream
        if stream.is_expired(self.clock()):
            stream = await self._resolve(current.entry)
            current.stream = stream
        duration = current.entry.duration_s or stream.duration_s
        if duration:
            position_ms = min(position_ms, max(0, duration * 1000 - 500))
        current.stderr = StderrTail()
        source = self._track_source(stream, position_ms, current.stderr)
        current.source = source
        old = self.voice.source
        self.voice.source = source  # AudioPlayer.set_source: swaps without firing the after-callback
        if self.applied.paused:
            self.voice.pause()
            current.paused_position_ms = position_ms
        if old is not None:
            old.cleanup()
        current.started_at = self.clock() - position_ms / 1000

    def _track_source(self, stream: StreamInfo, position_ms: int, stderr: StderrTail) -> TrackSource:
        ffmpeg = build_source(
            stream, position_ms=position_ms, volume=self.applied.volume, executable=self._ffmpeg, stderr=stderr
        )
        return TrackSource(ffmpeg, start_ms=position_ms, may_send=lambda: dave_ready(self.voice))

    def _on_track_end(self, token: int, error: Exception | None) -> None:
        if token != self._play_token or self.exit_reason is not None:
            return
        asyncio.get_running_loop().create_task(self._handle_track_end(error))

    async def _handle_track_end(self, error: Exception | None) -> None:
        async with self._transition:
            await self._track_ended(error)

    async def _track_ended(self, error: Exception | None) -> None:
        current = self.current
        if current is None:
            return
        skipped = self._skip_requested
        self._skip_requested = False
        record = await self._call(self.store.get_guild, self.guild_id)
        self._record = record
        failure = None if skipped else self._stream_failure(current, error)
        if failure is StreamFailure.GONE or (failure is not None and current.restarts >= MAX_STREAM_RESTARTS):
            _log.warning("stream of %s failed (%s): %s", current.entry.entry_id, failure.value, current.stderr.text())
            await self._track_failed(current.entry, "the source stopped serving it", reason=f"stream_{failure.value}")
            return
        if failure is not None:
            position = self._position_ms()
            _log.warning(
                "stream of %s broke at %s ms (%s): resolving it again", current.entry.entry_id, position, failure
            )
            try:
                stream = await self._resolve(current.entry)
            except SourceError as exc:
                await self._track_failed(current.entry, exc.user_message)
                return
            restarts = current.restarts + 1
            self._prefetched[current.entry.entry_id] = stream
            self.current = None
            await self._start(current.entry, position_ms=position)
            if self.current is not None:
                self.current.restarts = restarts
            return
        self._failures_in_a_row = 0
        replay = not skipped and record.desired.loop is LoopMode.TRACK
        self.current = None if not replay else current
        await self._advance(record, finished=True, replay=replay)
        self._wake.set()

    def _stream_failure(self, current: Playing, error: Exception | None) -> StreamFailure | None:
        """None when the track simply ended; otherwise why its stream broke."""
        stderr = current.stderr.text()
        duration = current.entry.duration_s or current.stream.duration_s
        if error is None and "Server returned" not in stderr and "HTTP error" not in stderr:
            if not duration:
                return None
            remaining_ms = duration * 1000 - self._position_ms()
            if remaining_ms <= min(EARLY_END_TOLERANCE_S * 1000, duration * 250):
                return None
        return classify_failure(stderr, error)

    async def _track_failed(self, entry: QueueEntry, why: str, *, reason: str = "source") -> None:
        self._failures_in_a_row += 1
        metrics.emit(metrics.TRACKS_FAILED, dimensions={"reason": reason})
        _log.warning("track %s failed (%s in a row): %s", entry.entry_id, self._failures_in_a_row, why)
        await self._notice(text.fit("Skipped **{title}**: {why}", text.IN_LINE, title=entry.title, why=why))
        self.current = None
        if self._failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            self._failures_in_a_row = 0
            await self._call(self.store.update_desired, self.guild_id, paused=True)
            await self._notice(
                f"Paused after {MAX_FAILURES_IN_A_ROW} tracks failed in a row. Use /resume to try the rest."
            )
            record = await self._call(self.store.get_guild, self.guild_id)
            self.applied = replace(self.applied, paused=True)
            await self._advance(record, finished=True)
            return
        record = await self._call(self.store.get_guild, self.guild_id)
        await self._advance(record, finished=True)

    # ------------------------------------------------------------------ state out
    def _position_ms(self) -> int:
        current = self.current
        if current is None:
            return 0
        if current.paused_position_ms is not None:
            return current.paused_position_ms
        if current.source is not None:
            return current.source.position_ms  # frames sent, so a stall or a DAVE hold does not move it
        return max(0, int((self.clock() - current.started_at) * 1000))

    def _listener_ids(self) -> tuple[str, ...]:
        if self.voice is None or self.voice.channel is None or self.client is None or self.client.user is None:
            return ()
        me = self.client.user.id
        ids = []
        guild = self.voice.guild
        for user_id in self.voice.channel.voice_states:
            if user_id == me:
                continue
            member = guild.get_member(user_id)
            if member is not None and member.bot:
                continue
            ids.append(str(user_id))
        return tuple(sorted(ids))

    def _refresh_listeners(self) -> bool:
        listeners = self._listener_ids()
        if listeners == self.actual.listener_ids:
            return False
        self.actual = replace(self.actual, listener_ids=listeners)
        return True

    async def _publish(self) -> None:
        current = self.current
        self.actual = replace(
            self.actual,
            now_playing=current.entry if current else None,
            started_at=self.clock() - self._position_ms() / 1000
            if current and current.paused_position_ms is None
            else None,
            position_ms=self._position_ms(),
            paused=self.applied.paused,
            volume=self.applied.volume,
            applied_skip_seq=self.applied.skip_seq,
            applied_stop_seq=self.applied.stop_seq,
            applied_seek_seq=self.applied.seek_seq,
            listener_ids=self._listener_ids(),
        )
        record = await self._call(self.store.write_actual, self.guild_id, self.generation, self.actual)
        self._record = record
        self.actual = record.actual

    def _check_timeouts(self, record: GuildRecord, now: float) -> None:
        if record.settings.twenty_four_seven and self.settings.allow_24_7:
            return
        if self.current is not None or record.queue:
            self._idle_since = now
        idle_timeout = record.settings.idle_timeout_s or self.settings.idle_timeout_s
        if now - self._idle_since >= idle_timeout:
            self.request_exit(ExitReason.IDLE)
            return
        if self._listener_ids():
            self._alone_since = None
        elif self._alone_since is None:
            self._alone_since = now
        elif now - self._alone_since >= self.settings.alone_timeout_s:
            self.request_exit(ExitReason.ALONE)

    # ------------------------------------------------------------------ messages
    async def _post_now_playing(self) -> None:
        record = self._record
        if self.notifier is None or self.current is None or record is None or not record.text_channel_id:
            return
        body = now_playing_message(record.evolve(actual=self.actual), self.clock())
        message_id = self.actual.message_id if self.actual.message_channel_id == record.text_channel_id else None
        new_id = await asyncio.to_thread(self.notifier.upsert, record.text_channel_id, message_id, body)
        if new_id and new_id != message_id:
            self.actual = replace(self.actual, message_channel_id=record.text_channel_id, message_id=new_id)
            await self._publish()

    async def _notice(self, text: str) -> None:
        record = self._record
        if self.notifier is None or record is None or not record.text_channel_id:
            return
        await asyncio.to_thread(self.notifier.send, record.text_channel_id, {"content": text})

    async def _announce_exit(self, reason: ExitReason) -> None:
        message = EXIT_MESSAGES.get(reason)
        if self.notifier is None or message is None or not self.actual.message_id or not self.actual.message_channel_id:
            return
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                self.notifier.edit,
                self.actual.message_channel_id,
                self.actual.message_id,
                {"content": message, "embeds": [], "components": []},
            )

    # ------------------------------------------------------------------ helpers
    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking store call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)


def holder_id() -> str:
    """The lease holder: the ECS task ARN in Fargate, else host:pid."""
    arn = os.environ.get("ECS_CONTAINER_METADATA_URI_V4", "")
    if arn:
        return f"ecs:{arn.rsplit('/', 1)[-1]}"
    return f"pid:{os.getpid()}"
