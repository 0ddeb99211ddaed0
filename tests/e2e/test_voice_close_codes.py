"""Every voice close is counted by its code, from the voice client's own close handling (not from
discord.py's log records), and each code is followed as Discord means it: 4006 and 4014 get a
fresh voice session, 4015 a resume, 4021 ends the connection without a retry loop."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.media import MediaServer
from tests.support.voice_stack import VoiceStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def stack(emulator: DiscordEmulator, media_server: MediaServer, tmp_path: Path) -> Iterator[VoiceStack]:
    voice_stack = VoiceStack(emulator, media_server, tmp_path)
    yield voice_stack
    voice_stack.close()


def _playing(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle) -> tuple[str, float]:
    emulator.add_listener(guild.id, guild.voice_channel_id)
    gid = str(guild.id)
    stack.enqueue(gid, stack.tone_entry(440, 20), voice_channel_id=str(guild.voice_channel_id),
                  text_channel_id=str(guild.text_channel_id))  # fmt: skip
    stack.launch(gid)
    return gid, stack.wait_for_audio(gid, since=0, timeout=20)


def _close_metrics(log: str) -> list[str]:
    return re.findall(r"metric=VoiceCloseCode value=1 code=(\w+)", log)


@pytest.mark.parametrize("code", [4006, 4014, 4015])
def test_a_recoverable_close_is_counted_once_and_the_track_goes_on(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, code: int
) -> None:
    gid, _ = _playing(stack, emulator, guild)
    time.sleep(1.0)
    task = stack.tasks[-1]

    # WHEN Discord closes the voice websocket with the code
    assert emulator.close_voice(guild.id, code)
    closed = time.monotonic()

    # THEN the close is counted once, by its code, and the tone is heard again within a second
    stack.wait_for_audio(gid, since=closed + 0.05, timeout=10)
    back = stack.wait_for_audio(gid, since=closed + 0.05, timeout=10, packets=25)
    assert back - closed < 2.0
    assert _close_metrics(task.log) == [str(code)]
    assert task.process.poll() is None


def test_4021_is_counted_and_ends_the_connection_without_a_retry_loop(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _gid, _ = _playing(stack, emulator, guild)
    task = stack.tasks[-1]
    identifies = len(emulator.voice_events(guild.id, "identify"))

    # WHEN Discord closes voice with 4021 (rate limited: do not reconnect)
    assert emulator.close_voice(guild.id, 4021)
    task.wait(timeout=30)

    # THEN it was counted, no new voice session was tried, and the task left
    assert _close_metrics(task.log) == ["4021"]
    assert len(emulator.voice_events(guild.id, "identify")) == identifies
    assert "voice closed with 4021: not reconnecting" in task.log
