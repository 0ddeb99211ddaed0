"""The reaper brings music back after a voice task dies without cleaning up, and only then."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.dave_checks import privacy_code_problems
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.voice_stack import VoiceStack
from timmybot.launcher.local import LocalLauncher
from timmybot.models import LeaseState
from timmybot.reaper import reap

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def stack(make_stack: Callable[..., VoiceStack]) -> VoiceStack:
    return make_stack(TIMMYBOT_LEASE_TTL_S="4", TIMMYBOT_HEARTBEAT_S="1")


@pytest.fixture
def launcher(stack: VoiceStack, tmp_path: Path) -> Iterator[LocalLauncher]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TIMMYBOT_")}
    environ.update(stack.env)
    settings = dataclasses.replace(stack.settings, voice_task_log_dir=str(tmp_path / "launched"))
    local = LocalLauncher(stack.store, settings, environ=environ)
    yield local
    for pid in list(local._children):  # the test's own children: stop what is still running
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    local.wait_children(15)
    for log in (tmp_path / "launched").glob("voice_task-*.log"):
        guild_id = int(log.stem.split("-", 1)[1])
        problems = privacy_code_problems(stack.emulator, guild_id, [log.read_text(errors="replace")])
        assert not problems, problems


def _listen_and_queue(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, seconds: float) -> str:
    user = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, user, guild.voice_channel_id)
    gid = str(guild.id)
    stack.enqueue(
        gid,
        stack.tone_entry(440, seconds),
        stack.tone_entry(660, seconds),
        voice_channel_id=str(guild.voice_channel_id),
        text_channel_id=str(guild.text_channel_id),
    )
    return gid


def test_a_task_killed_with_sigkill_is_back_playing_the_same_track_after_one_reaper_pass(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, launcher: LocalLauncher
) -> None:
    gid = _listen_and_queue(stack, emulator, guild, 30)
    launcher.ensure_running(gid)
    stack.wait_for_audio(gid, since=0)
    playing = stack.wait_record(gid, lambda r: r.actual.now_playing is not None, what="first track")
    assert playing.actual.now_playing is not None
    holder_pid = int(str(stack.record(gid).lease.holder).split(":")[1])

    os.kill(holder_pid, signal.SIGKILL)  # no cleanup at all
    # the 4 s lease runs out (nothing renews it now)
    stack.wait_record(gid, lambda r: not r.lease.is_live(time.time()), timeout=10, what="the lease to expire")
    expired_at = time.monotonic()

    report = reap(stack.store, launcher, stack.settings)
    stack.wait_for_audio(gid, since=expired_at, timeout=30)
    record = stack.wait_record(gid, lambda r: r.lease.state is LeaseState.RUNNING, what="new lease")
    heard = stack.hear(gid, 1.0)

    assert report.relaunched == [gid]
    assert record.actual.now_playing is not None
    assert record.actual.now_playing.entry_id == playing.actual.now_playing.entry_id
    assert heard.dominant_hz is not None and abs(heard.dominant_hz - 440) < 15


def test_the_reaper_leaves_a_live_task_and_a_cleanly_stopped_guild_alone(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, launcher: LocalLauncher
) -> None:
    gid = _listen_and_queue(stack, emulator, guild, 30)
    launcher.ensure_running(gid)
    stack.wait_for_audio(gid, since=0)

    live = reap(stack.store, launcher, stack.settings)
    stack.store.stop(gid)
    stack.wait_record(gid, lambda r: r.lease.state is LeaseState.RELEASED, what="stopped")
    stopped = reap(stack.store, launcher, stack.settings)

    assert live.relaunched == [] and live.checked == 1
    assert stopped.relaunched == []
    assert launcher.launched == 1
    assert gid not in stack.store.active_guild_ids()
