"""Keeping the voice connection: what each voice close means for the task, following a move, and
the health check each tick makes (a stuck connection gets a new voice client, with backoff until
the deadline). The voice client itself resumes and reconnects (``voice_client``); this decides
when the task leaves instead."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import aiohttp
import discord

from timmybot import metrics
from timmybot.config import Settings
from timmybot.models import GuildRecord
from timmybot.store.base import Store
from voice_task.connection import ChannelFullError, Connection, Health, NoVoiceChannelError
from voice_task.exits import ExitReason
from voice_task.player import Player
from voice_task.reconcile import Applied
from voice_task.sequencer import Sequencer
from voice_task.states import Lifecycle, Machine
from voice_task.voice_client import DAVE_REQUIRED, FINAL_CLOSES, RATE_LIMITED

_log = logging.getLogger(__name__)
T = TypeVar("T")

RECONNECTING_CARD_AFTER_S = 1.0


class WatchHost(Protocol):
    """What keeping the voice connection needs of the task."""

    settings: Settings
    store: Store
    guild_id: str
    record: GuildRecord | None
    applied: Applied
    connection: Connection
    player: Player
    sequencer: Sequencer
    lifecycle: Machine[Lifecycle]

    @property
    def exit_reason(self) -> ExitReason | None: ...

    def request_exit(self, reason: ExitReason) -> None: ...

    def wake(self) -> None: ...

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str, *, fatal: bool = False) -> asyncio.Task[Any]: ...

    async def io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    async def post_now_playing(self, status: str | None = None) -> None: ...


class VoiceWatch:
    def __init__(self, host: WatchHost) -> None:
        self.host = host
        self._lost_since: float | None = None

    def closed(self, code: int | None) -> None:
        """Every voice websocket close, by code (told by the voice client itself, not read from logs)."""
        _log.warning("the voice websocket closed with %s", code)
        metrics.emit(metrics.VOICE_CLOSE_CODE, dimensions={"code": str(code) if code is not None else "timeout"})
        if code == DAVE_REQUIRED:
            _log.error("Discord closed voice with 4017 (DAVE end-to-end encryption required): this build cannot "
                       "join voice; check the davey and discord.py versions. Not reconnecting.")  # fmt: skip
            self.host.request_exit(ExitReason.ERROR)
        elif code == RATE_LIMITED:
            # Not retried (each retry costs a voice session): leave with the track kept and where it
            # was, marked as given up so the reaper waits before relaunching; /play brings it back.
            _log.error("Discord closed voice with 4021 (rate limited): leaving, with the track kept")
            self.host.request_exit(ExitReason.VOICE_LOST)
        elif code not in FINAL_CLOSES and self.host.lifecycle.state is Lifecycle.IN_VOICE:
            self.host.lifecycle.move(Lifecycle.RECONNECTING, f"voice closed with {code}")
            self.host.spawn(self._reconnecting_card(), "reconnecting card")

    def check_voice(self, how: str) -> None:
        """After a recovery or a rejoin: discord.py's voice client must be ours, and no task of a
        discarded connection alive. Counted (``VoiceStaleTasks``, by whose client it is) and logged."""
        check = self.host.connection.voice_check()
        metrics.emit(metrics.VOICE_STALE_TASKS, check.stale_tasks,
                     dimensions={"client": "ours" if check.ours else "other"})  # fmt: skip
        if check.ok:
            _log.info("%s; %s", how, check)
        else:
            _log.error("%s, but %s", how, check)

    def recovered(self, seconds: float) -> None:
        self.check_voice(f"voice connection recovered in {seconds:.2f} s")
        if self.host.lifecycle.state is Lifecycle.RECONNECTING:
            self.host.lifecycle.move(Lifecycle.IN_VOICE, f"recovered in {seconds:.2f} s")
            self.host.spawn(self.host.post_now_playing(), "now-playing card")
        self.host.wake()

    async def _reconnecting_card(self) -> None:
        await asyncio.sleep(RECONNECTING_CARD_AFTER_S)
        if self.host.lifecycle.state is Lifecycle.RECONNECTING:
            await self.host.post_now_playing(status="🔄 Reconnecting…")

    async def bot_moved(self, channel_id: int | None) -> None:
        """Our own voice state changed: moved (follow, and record it); a kick shows as GONE."""
        record = self.host.record
        if channel_id is None or self.host.exit_reason is not None or record is None:
            return
        if record.voice_channel_id != str(channel_id):
            _log.info("moved to voice channel %s: following", channel_id)
            host = self.host
            host.record = await host.io(host.store.set_channels, host.guild_id, voice_channel_id=str(channel_id),
                                        text_channel_id=record.text_channel_id)  # fmt: skip

    async def keep(self, now: float) -> bool:
        """False while there is no usable voice connection (the tick then does nothing else)."""
        health = self.host.connection.health(now)
        if health is Health.CONNECTED:
            self._lost_since = None
            if self.host.lifecycle.state is Lifecycle.RECONNECTING:
                self.host.lifecycle.move(Lifecycle.IN_VOICE, "connected")
            return True
        if health is Health.GONE:
            _log.info("disconnected from voice by someone else: leaving")
            self.host.request_exit(ExitReason.DISCONNECTED)
        elif health is Health.GAVE_UP:
            self.host.request_exit(ExitReason.VOICE_LOST)
        elif health is Health.STUCK:
            await self._rejoin(now)
        return False

    async def _rejoin(self, now: float) -> None:
        """A stuck connection: a new voice client, retried with backoff until the deadline."""
        self._lost_since = self._lost_since or now
        if now - self._lost_since > self.host.settings.voice_reconnect_deadline_s:
            _log.error("voice connection stuck since %.0f s: giving up", now - self._lost_since)
            self.host.request_exit(ExitReason.VOICE_LOST)
            return
        async with self.host.sequencer.transition:
            self.host.player.detach()
            try:
                await self.host.connection.rejoin(self.host.record.voice_channel_id if self.host.record else None)
            # aiohttp's errors (a refused websocket upgrade) and discord.py's (a close while joining)
            # are as retryable as a timeout: the deadline above decides when to give up
            except (TimeoutError, OSError, aiohttp.ClientError, discord.DiscordException, NoVoiceChannelError,
                    ChannelFullError) as exc:  # fmt: skip
                _log.warning("rejoin failed: %s; trying again", exc)
                await asyncio.sleep(min(5.0, 1.0 + (now - self._lost_since) / 4))
                return
            self.host.player.reattach(paused=self.host.applied.paused)
        self.check_voice("rejoined voice")
