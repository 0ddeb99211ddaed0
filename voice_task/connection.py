"""The task's Discord side: the gateway session (every IDENTIFY through the shared budget), the
voice join, and the health of the voice connection.

The voice connection recovers by itself (``voice_client.ResilientConnection``: a 4015 is resumed,
anything else gets a fresh voice session at once, retried until ``voice_reconnect_deadline_s``).
This module only tells the task what happened, and rejoins from scratch in the one case the voice
client cannot see: stuck not connected, not reconnecting, for ``STUCK_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import discord

from timmybot.config import Settings
from timmybot.errors import BotRestingError
from timmybot.identify import IDENTIFY_WINDOW_S, IdentifyBudget
from voice_task.background import report_failure
from voice_task.reconcile import shard_of
from voice_task.voice_client import DaveVoiceClient, VoiceEvents

_log = logging.getLogger(__name__)

MAX_IDENTIFY_BACKOFF_S = 60.0
READY_TIMEOUT_S = 60.0
STUCK_S = 10.0  # not connected and not reconnecting this long: rejoin from scratch


class Health(enum.Enum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # the voice client is getting it back
    STUCK = "stuck"  # not connected, not reconnecting, still registered (or a rejoin under way): rejoin
    GAVE_UP = "gave_up"  # the voice client tried until its deadline
    GONE = "gone"  # disconnected by someone else (kicked, channel deleted)


#: The names discord.py gives its voice connection's asyncio tasks (``voice_state.py``).
VOICE_TASK_NAMES = frozenset({"Voice connector", "Voice websocket poller"})


@dataclass(frozen=True)
class VoiceCheck:
    """The voice connection after a recovery: ``ours`` is discord.py's voice client for the guild
    the task's own; ``stale_tasks`` counts tasks of a discarded connection still alive (0 when well)."""

    ours: bool
    stale_tasks: int

    @property
    def ok(self) -> bool:
        return self.ours and self.stale_tasks == 0

    def __str__(self) -> str:
        return f"voice client is ours: {self.ours}; tasks of a discarded voice connection alive: {self.stale_tasks}"


class ChannelFullError(Exception):
    def __init__(self, channel_id: int) -> None:
        super().__init__(f"voice channel {channel_id} is full")
        self.channel_id = channel_id


class NoVoiceChannelError(Exception):
    pass


@dataclass
class ConnectionEvents:
    """What the connection tells the task; each runs on the event loop."""

    on_voice_close: Callable[[int | None], None]
    on_transition: Callable[[], None]
    on_recovered: Callable[[float], None]
    on_bot_moved: Callable[[int | None], Awaitable[None]]
    on_change: Callable[[], None]  # any voice state in the guild changed: tick now
    on_identify_refused: Callable[[str], None]  # "resting" or "error": the task must leave


class Connection:
    def __init__(self, settings: Settings, guild_id: str, events: ConnectionEvents, *,
                 budget: IdentifyBudget | None = None,
                 gateway_limits: Callable[[], dict[str, Any]] | None = None,
                 run_blocking: Callable[..., Awaitable[Any]]) -> None:  # fmt: skip
        self.settings = settings
        self.guild_id = guild_id
        self.events = events
        self.budget = budget
        self.gateway_limits = gateway_limits
        self.run_blocking = run_blocking
        self.client: discord.Client | None = None
        self.voice: DaveVoiceClient | None = None
        self.client_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._identifies = 0
        self._lost_at: float | None = None
        # A rejoin left the old voice client and no join has held yet: no voice client, but not a
        # kick either, so ``health`` says STUCK (the watch retries with backoff) rather than GONE.
        self._rejoining = False

    # ------------------------------------------------------------------ the gateway
    async def connect(self) -> bool:
        """Log in and wait for READY; False if that failed (the reason is logged)."""
        intents = discord.Intents.none()
        intents.guilds = True
        intents.voice_states = True
        connection = self

        class _Client(discord.Client):
            async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
                await connection._before_identify(initial=initial)

            async def on_socket_event_type(self, event_type: str) -> None:
                # discord.py holds its READY back until no GUILD_CREATE has come for
                # ``guild_ready_timeout``; the task needs only its own guild, so it goes on as soon as
                # that one is in (this runs after the event was parsed: dispatch schedules it).
                guild = self.get_guild(int(connection.guild_id)) if event_type == "GUILD_CREATE" else None
                if guild is not None and not guild.unavailable:
                    connection._session_ready(self)

            async def on_ready(self) -> None:
                # Also when the guild never came (the bot was removed from it): the join then says so.
                connection._session_ready(self)

            async def on_voice_state_update(self, member: discord.Member, before: discord.VoiceState,
                                            after: discord.VoiceState) -> None:  # fmt: skip
                if self.user is not None and member.id == self.user.id and member.guild.id == int(connection.guild_id):
                    await connection.events.on_bot_moved(after.channel.id if after.channel else None)
                connection.events.on_change()

        self.client = _Client(
            intents=intents,
            shard_id=shard_of(self.guild_id, self.settings.shard_count),
            shard_count=self.settings.shard_count,
            chunk_guilds_at_startup=False,
            guild_ready_timeout=1.0,
        )
        self.client_task = asyncio.create_task(self.client.start(self.settings.discord_bot_token), name="gateway")
        # A gateway that fails is logged at once; its end, however it came, wakes the tick, whose
        # ``gateway_alive`` check then requests the task's exit (before READY, connect() fails).
        self.client_task.add_done_callback(report_failure(_log, "gateway"))
        self.client_task.add_done_callback(lambda _: self.events.on_change())
        ready = asyncio.create_task(self._ready.wait(), name="gateway ready")
        done, _ = await asyncio.wait({self.client_task, ready}, timeout=READY_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if ready in done:
            return True
        ready.cancel()
        if self.client_task in done and self.client_task.exception() is not None:
            _log.error("gateway connection failed: %r", self.client_task.exception())
        else:
            _log.error("gateway did not become ready in time")
        return False

    def _session_ready(self, client: discord.Client) -> None:
        """A session is up (the task's guild is in, or discord.py's READY came): stop counting identifies."""
        self._identifies = 0
        if not self._ready.is_set():
            _log.info("gateway ready on shard %s/%s with guilds %s", client.shard_id, client.shard_count,
                      sorted(str(g.id) for g in client.guilds))  # fmt: skip
            self._ready.set()

    async def _before_identify(self, *, initial: bool) -> None:
        """Every IDENTIFY (discord.py's re-identifies too) goes through the shared budget (BRIEF §4.4)."""
        self._identifies += 1
        if self._identifies > self.settings.identify_max_attempts:
            _log.error("gave up after %s identifies without a session", self._identifies - 1)
            self.events.on_identify_refused("error")
            raise RuntimeError("too many invalid sessions")
        if self._identifies > 1:
            backoff = min(MAX_IDENTIFY_BACKOFF_S, IDENTIFY_WINDOW_S * 2.0 ** (self._identifies - 2))
            _log.warning("identify attempt %s (initial=%s): backing off %.0f s", self._identifies, initial, backoff)
            await asyncio.sleep(backoff)
        if self.budget is None:
            return
        if self.gateway_limits is not None:
            try:
                limits = await self.run_blocking(self.gateway_limits)
                await self.run_blocking(self.budget.observe, limits)
            except Exception as exc:  # the budget still spaces identifies from what it knows
                _log.warning("could not read the gateway session limits: %s", exc)
        try:
            wait = await self.run_blocking(self.budget.reserve)
        except BotRestingError:
            _log.error("the identify budget is exhausted: not identifying")
            self.events.on_identify_refused("resting")
            raise
        if wait > 0:
            _log.info("waiting %.1f s for an identify slot", wait)
            await asyncio.sleep(wait)

    def gateway_alive(self) -> bool:
        return self.client_task is not None and not self.client_task.done()

    # ------------------------------------------------------------------ voice
    def channel(self, channel_id: str | None) -> discord.VoiceChannel | discord.StageChannel:
        guild = self.client.get_guild(int(self.guild_id)) if self.client is not None else None
        channel = guild.get_channel(int(channel_id)) if guild is not None and channel_id else None
        if not isinstance(channel, discord.VoiceChannel | discord.StageChannel):
            raise NoVoiceChannelError(f"voice channel {channel_id} of guild {self.guild_id} is not available")
        return channel

    async def join(self, channel_id: str | None) -> DaveVoiceClient:
        channel = self.channel(channel_id)
        me = self.client.user.id if self.client is not None and self.client.user is not None else None
        others = [uid for uid in channel.voice_states if uid != me]
        if channel.user_limit and len(others) >= channel.user_limit:
            raise ChannelFullError(channel.id)
        events = VoiceEvents(
            on_close=self.events.on_voice_close,
            on_transition=self.events.on_transition,
            on_recovered=self.events.on_recovered,
            reconnect_deadline_s=self.settings.voice_reconnect_deadline_s,
        )
        try:
            # reconnect=False: discord.py's own reconnect stays off; DaveVoiceClient owns it. The
            # timeout is also how long the player waits for a reconnect before it gives up a track.
            voice = await channel.connect(cls=functools.partial(DaveVoiceClient, events=events), self_deaf=True,
                                          timeout=max(30.0, self.settings.voice_reconnect_deadline_s),
                                          reconnect=False)  # fmt: skip
        except discord.ConnectionClosed as exc:
            self.events.on_voice_close(exc.code)
            raise
        self.voice = voice
        self._lost_at = None
        self._rejoining = False
        return voice

    def health(self, now: float) -> Health:
        voice = self.voice
        if voice is None:
            return Health.STUCK if self._rejoining else Health.GONE
        if voice.is_connected():
            self._lost_at = None
            return Health.CONNECTED
        if voice.gave_up:
            return Health.GAVE_UP
        if voice.reconnecting:  # (it puts itself back in discord.py's cache if a new session emptied it)
            return Health.RECONNECTING
        guild = self.client.get_guild(int(self.guild_id)) if self.client is not None else None
        if guild is not None and guild.voice_client is None:
            return Health.GONE
        if self._lost_at is None:
            self._lost_at = now
        return Health.STUCK if now - self._lost_at >= STUCK_S else Health.RECONNECTING

    async def rejoin(self, channel_id: str | None) -> DaveVoiceClient:
        """Leave and join again with a new voice client (a stuck connection). Until a join holds,
        the connection counts as stuck: a join that fails is retried, not taken for a kick."""
        self._rejoining = True
        await self._drop_voice()
        return await self.join(channel_id)

    async def leave(self) -> None:
        self._rejoining = False
        await self._drop_voice()

    async def _drop_voice(self) -> None:
        voice, self.voice = self.voice, None
        if voice is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(voice.disconnect(force=True), timeout=5)

    def listener_ids(self) -> tuple[str, ...]:
        """The humans in the bot's voice channel (the task publishes them for the control plane)."""
        voice, client = self.voice, self.client
        if voice is None or voice.channel is None or client is None or client.user is None:
            return ()
        ids = []
        for user_id in voice.channel.voice_states:
            member = voice.guild.get_member(user_id)
            if user_id != client.user.id and not (member is not None and member.bot):
                ids.append(str(user_id))
        return tuple(sorted(ids))

    def voice_check(self) -> VoiceCheck:
        """After a recovery: is discord.py's voice client for this guild ours, and how many tasks of
        a discarded voice connection are still alive (discord.py's connector and websocket poller
        tasks other than the current connection's own)?"""
        guild = self.client.get_guild(int(self.guild_id)) if self.client is not None else None
        voice = self.voice
        ours = voice is not None and guild is not None and guild.voice_client is voice
        own = voice.connection_tasks() if voice is not None else frozenset()
        stale = [t for t in asyncio.all_tasks()
                 if t.get_name() in VOICE_TASK_NAMES and not t.done() and t not in own]  # fmt: skip
        return VoiceCheck(ours=ours, stale_tasks=len(stale))

    async def close(self) -> None:
        await self.leave()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.close(), timeout=5)
        if self.client_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.client_task, timeout=5)
