"""A task-level rejoin that fails is retried with backoff until the deadline, never taken for a kick.

GIVEN a voice task (the real ``VoiceTask``, ``VoiceWatch``, ``Connection`` and ``Player``) playing a
      track on a voice connection that goes stuck (not connected, not reconnecting, still registered)
WHEN  the task rejoins and the new joins fail
THEN  while they fail it keeps retrying (no exit), and one that holds gets the track reattached once,
      with discord.py's voice client the task's own and no task of a discarded connection alive
AND   joins that keep failing end the task with VOICE_LOST once the deadline has passed
AND   a real kick (the voice client dropped from discord.py's cache by someone else) still leaves.

Discord is faked at its boundary only: real ``discord`` guild and channel objects in a client that
never logs in, and ``VoiceChannel.connect`` answering with a small stand-in for discord.py's voice
client (or raising as a refused voice session does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import aiohttp
import discord
import pytest

from timmybot.config import Settings
from timmybot.models import LeaseState, QueueEntry, Track
from timmybot.sources.models import StreamInfo
from timmybot.store import SQLiteStore
from voice_task.connection import STUCK_S, Health
from voice_task.exits import ExitReason
from voice_task.states import PlaybackState
from voice_task.task import VoiceTask

pytestmark = pytest.mark.slow  # started first: the file takes many seconds under xdist

GUILD = "111111111111111111"
CHANNEL = 222222222222222222


class FakeVoice:
    """Stands in for discord.py's voice client: connected or not, playing what it was given."""

    def __init__(self, channel: discord.VoiceChannel) -> None:
        self.channel = channel
        self.guild = channel.guild
        self.connected = True
        self.reconnecting = False
        self.gave_up = False
        self.plays = 0
        self.source: discord.AudioSource | None = None
        self._paused = False

    def is_connected(self) -> bool:
        return self.connected

    def is_playing(self) -> bool:
        return self.source is not None and not self._paused

    def is_paused(self) -> bool:
        return self.source is not None and self._paused

    def play(self, source: discord.AudioSource, *, after: Callable[[Exception | None], Any] | None = None) -> None:
        self.plays += 1
        self.source = source

    def stop(self) -> None:
        self.source = None

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def connection_tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset()

    async def disconnect(self, *, force: bool = False) -> None:
        self.connected = False
        self.source = None
        key, _ = self.channel._get_voice_client_key()
        if self.channel._state._get_voice_client(key) is cast(Any, self):
            self.channel._state._remove_voice_client(key)


class Discord:
    """A ``discord.Client`` that never logs in, holding one guild with one voice channel; joining it
    fails as many times as ``refuse`` says (a voice session that times out), then succeeds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.client = discord.Client(intents=discord.Intents(guilds=True, voice_states=True))
        state = self.client._connection
        guild = discord.Guild(data={"id": GUILD, "name": "guild"}, state=state)  # type: ignore[typeddict-item]
        data: Any = {"id": str(CHANNEL), "name": "voice", "type": 2, "position": 0, "guild_id": GUILD,
                     "bitrate": 64000, "user_limit": 0}  # fmt: skip
        self.channel = discord.VoiceChannel(state=state, guild=guild, data=data)
        guild._add_channel(self.channel)
        state._add_guild(guild)
        self.guild = guild
        self.refuse = 0
        self.error: Callable[[], Exception] = lambda: TimeoutError("the voice session did not answer")
        self.joins = 0
        self.clients: list[FakeVoice] = []
        fake = self

        async def connect(channel: discord.VoiceChannel, **kwargs: Any) -> FakeVoice:
            return await fake.connect(channel)

        monkeypatch.setattr(discord.VoiceChannel, "connect", connect)

    async def connect(self, channel: discord.VoiceChannel) -> FakeVoice:
        self.joins += 1
        await asyncio.sleep(0)
        if self.refuse > 0:
            self.refuse -= 1
            raise self.error()
        voice = FakeVoice(channel)
        key, _ = channel._get_voice_client_key()
        channel._state._add_voice_client(key, voice)  # type: ignore[arg-type]
        self.clients.append(voice)
        return voice


async def _playing_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, deadline_s: float
) -> tuple[VoiceTask, Discord]:
    store = SQLiteStore(tmp_path / "store.db")
    store.set_channels(GUILD, voice_channel_id=str(CHANNEL), text_channel_id=None)
    lease = store.acquire_lease(GUILD, holder="task", state=LeaseState.RUNNING, ttl_s=60)
    assert lease is not None
    task = VoiceTask(Settings(voice_reconnect_deadline_s=deadline_s, strict_states=True), store, GUILD,
                     generation=lease.generation, holder="task")  # fmt: skip
    task.record = store.get_guild(GUILD)
    fake = Discord(monkeypatch)
    task.connection.client = fake.client
    await task.connection.join(str(CHANNEL))
    url = "https://media.invalid/tone.webm"  # never read: the stand-in voice client pulls no frames
    entry = QueueEntry("e1", Track.from_stored({"title": "a tone", "url": url, "duration_s": 90}), "1", 0.0)
    task.player.machine.move(PlaybackState.RESOLVING, "test")
    task.player.play(entry, StreamInfo(url, local=True, duration_s=90), 0, paused=False, reason="test")
    assert fake.clients[0].plays == 1
    return task, fake


def _stuck(task: VoiceTask, fake: Discord, now: float) -> None:
    """The voice connection stops: not connected, not reconnecting, still registered, for STUCK_S."""
    fake.clients[-1].connected = False
    assert task.connection.health(now) is Health.RECONNECTING


def _close(task: VoiceTask) -> None:
    task.player.stop()
    task._store_pool.shutdown(wait=False)
    task._rest_pool.shutdown(wait=False)


JOIN_ERRORS: dict[str, Callable[[], Exception]] = {
    "timeout": lambda: TimeoutError("the voice session did not answer"),
    "websocket refused": lambda: aiohttp.ClientConnectionError("the voice websocket upgrade was refused"),
    "discord.py": lambda: discord.ClientException("Already connecting to a voice channel."),
}


@pytest.mark.parametrize("error", JOIN_ERRORS.values(), ids=JOIN_ERRORS.keys())
def test_a_rejoin_that_fails_twice_then_holds_keeps_the_task_and_reattaches_the_track_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Callable[[], Exception]
) -> None:
    asyncio.run(_fails_twice_then_holds(tmp_path, monkeypatch, error))


async def _fails_twice_then_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Callable[[], Exception]
) -> None:
    task, fake = await _playing_task(tmp_path, monkeypatch, deadline_s=60.0)
    try:
        now = 1_000.0
        _stuck(task, fake, now)
        fake.refuse = 2
        fake.error = error
        joins_before = fake.joins

        # WHEN the connection has been stuck for STUCK_S: the rejoin's first two joins fail
        now += STUCK_S
        for _ in range(4):
            await task.watch.keep(now)
            assert task.exit_reason is None, "a failed rejoin was taken for a kick"
            now += 1.0

        # THEN the third join held: three joins, the track reattached once on the new client
        assert fake.joins - joins_before == 3
        assert len(fake.clients) == 2 and task.connection.voice is cast(Any, fake.clients[1])
        assert fake.clients[1].plays == 1
        assert await task.watch.keep(now)
        check = task.connection.voice_check()
        assert check.ours and check.stale_tasks == 0, check
        assert task.exit_reason is None
    finally:
        _close(task)


def test_a_rejoin_that_keeps_failing_gives_up_on_voice_after_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_keeps_failing(tmp_path, monkeypatch))


async def _keeps_failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deadline_s = 3.0
    task, fake = await _playing_task(tmp_path, monkeypatch, deadline_s=deadline_s)
    try:
        now = 1_000.0
        _stuck(task, fake, now)
        fake.refuse = 1_000
        now += STUCK_S
        first = now
        while task.exit_reason is None and now - first <= deadline_s + 2:
            await task.watch.keep(now)
            if now - first <= deadline_s:
                assert task.exit_reason is None, "gave up (or left) before the deadline"
            now += 1.0
        assert task.exit_reason is ExitReason.VOICE_LOST
        assert fake.joins >= 3  # the initial join, then retries
        assert task.connection.voice is None
    finally:
        _close(task)


def test_a_kick_still_leaves_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_kicked(tmp_path, monkeypatch))


async def _kicked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task, fake = await _playing_task(tmp_path, monkeypatch, deadline_s=60.0)
    try:
        # WHEN someone disconnects the bot: discord.py drops its voice client from the cache
        await fake.clients[0].disconnect(force=True)
        # THEN the next check leaves, with no rejoin
        assert not await task.watch.keep(1_000.0)
        assert task.exit_reason is ExitReason.DISCONNECTED
        assert fake.joins == 1
    finally:
        _close(task)
