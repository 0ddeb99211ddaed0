"""Scale to zero and survive being stopped: idle and alone exits, 24/7, SIGTERM with resume."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.voice_stack import VoiceStack
from timmybot.models import LeaseState

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def stack(make_stack: Callable[..., VoiceStack]) -> VoiceStack:
    return make_stack(TIMMYBOT_IDLE_TIMEOUT_S="2", TIMMYBOT_ALONE_TIMEOUT_S="2")


def _channels(guild: GuildHandle) -> dict[str, str]:
    return {"voice_channel_id": str(guild.voice_channel_id), "text_channel_id": str(guild.text_channel_id)}


def _listener(emulator: DiscordEmulator, guild: GuildHandle) -> int:
    user = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, user, guild.voice_channel_id)
    return user


def _last_edit(emulator: DiscordEmulator, guild: GuildHandle) -> str:
    edits = [m for m in emulator.messages(guild.text_channel_id) if m.action == "edit"]
    return (edits[-1].content or "") if edits else ""


def test_idle_exit_leaves_releases_the_lease_and_exits_zero(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listener(emulator, guild)
    gid = str(guild.id)
    stack.enqueue(gid, stack.tone_entry(440, 1.5), **_channels(guild))
    task = stack.launch(gid)
    stack.wait_for_audio(gid, since=0)

    code = task.wait(timeout=20)
    record = stack.record(gid)

    assert code == 0
    assert "exits: idle" in task.log
    assert emulator.bot_voice_channel(guild.id) is None
    assert record.lease.state is LeaseState.RELEASED
    assert "nothing was queued" in _last_edit(emulator, guild)


def test_alone_exit_when_no_human_is_left_in_the_channel(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    listener = _listener(emulator, guild)
    gid = str(guild.id)
    stack.enqueue(gid, stack.tone_entry(440, 30), **_channels(guild))
    task = stack.launch(gid)
    stack.wait_for_audio(gid, since=0)

    emulator.set_member_voice(guild.id, listener, None)
    code = task.wait(timeout=20)

    assert code == 0
    assert "exits: alone" in task.log
    assert emulator.bot_voice_channel(guild.id) is None
    assert not stack.record(gid).lease.is_live(time.time())
    assert "nobody was listening" in _last_edit(emulator, guild)


def test_24_7_mode_prevents_both_exits(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle) -> None:
    gid = str(guild.id)
    stack.store.update_settings(gid, twenty_four_seven=True)
    stack.enqueue(gid, stack.tone_entry(440, 1), **_channels(guild))  # nobody in the channel, short track
    task = stack.launch(gid)
    # Alone, the bot is the sole member of its DAVE call and nobody can hear it: the track is loaded
    # and held until a listener joins.
    stack.wait_record(gid, lambda r: r.actual.now_playing is not None, what="the track to start")

    time.sleep(5)  # well past both 2 s timeouts

    assert task.process.poll() is None
    assert emulator.bot_voice_channel(guild.id) == guild.voice_channel_id
    assert stack.record(gid).lease.state is LeaseState.RUNNING


def test_sigterm_mid_track_saves_the_position_and_the_next_task_resumes_there(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listener(emulator, guild)
    gid = str(guild.id)
    entry = stack.tone_entry(440, 30)
    stack.enqueue(gid, entry, **_channels(guild))
    first = stack.launch(gid)
    stack.wait_for_audio(gid, since=0)
    time.sleep(4)

    stopped_at = time.monotonic()
    first.signal(signal.SIGTERM)
    code = first.wait(timeout=10)
    saved = stack.record(gid)

    assert code == 0 and time.monotonic() - stopped_at < 10
    assert saved.lease.state is LeaseState.RELEASED
    assert saved.lease.resume is not None and saved.lease.resume["entry_id"] == entry.entry_id
    assert saved.queue[0] == entry.entry_id
    position_s = saved.lease.resume["position_ms"] / 1000
    assert 3 <= position_s <= 6

    stack.launch(gid)
    resumed_at = stack.wait_for_audio(gid, since=time.monotonic())
    record = stack.wait_record(gid, lambda r: r.actual.now_playing is not None, what="resumed track")
    heard = stack.hear(gid, 1.0)
    elapsed = time.monotonic() - resumed_at

    assert record.actual.now_playing is not None and record.actual.now_playing.entry_id == entry.entry_id
    assert record.actual.position_at(time.time()) / 1000 == pytest.approx(position_s + elapsed, abs=2.0)
    assert heard.dominant_hz is not None and abs(heard.dominant_hz - 440) < 15
