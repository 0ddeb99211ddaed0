"""Voice connection faults: closes the task recovers from, kicks it leaves on, 4017 it never loops on."""

from __future__ import annotations

import time

import pytest

from tests.support.audio import analyse
from tests.support.emulator import ChannelType, DiscordEmulator, GuildHandle
from tests.support.voice_stack import VoiceStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _playing(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, seconds: float = 40) -> str:
    user = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, user, guild.voice_channel_id)
    gid = str(guild.id)
    stack.enqueue(
        gid,
        stack.tone_entry(440, seconds),
        voice_channel_id=str(guild.voice_channel_id),
        text_channel_id=str(guild.text_channel_id),
    )
    stack.launch(gid)
    stack.wait_for_audio(gid, since=0)
    return gid


@pytest.mark.parametrize("code", [4006, 4015])
def test_a_voice_close_mid_track_reconnects_and_the_same_tone_is_heard_again(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, code: int
) -> None:
    gid = _playing(stack, emulator, guild)
    time.sleep(1)

    emulator.close_voice(guild.id, code)
    closed_at = time.monotonic()

    # What is heard after the new voice session's identify (4006) or resume (4015) is the new connection.
    def back() -> list[float]:
        return [
            e.time for e in emulator.voice_events(guild.id) if e.kind in ("identify", "resume") and e.time > closed_at
        ]

    emulator.wait_for(lambda: bool(back()), timeout=25, message="a new voice session after the close")
    stack.wait_for_audio(gid, since=back()[0], timeout=25)
    heard = stack.hear(gid, 1.0)

    assert heard.dominant_hz is not None and abs(heard.dominant_hz - 440) < 15, heard
    assert stack.tasks[0].process.poll() is None
    record = stack.record(gid)
    assert record.actual.now_playing is not None


def test_being_disconnected_by_a_moderator_leaves_cleanly(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    gid = _playing(stack, emulator, guild)

    emulator.set_member_voice(guild.id, emulator.bot_user_id, None)
    code = stack.tasks[0].wait(timeout=20)

    assert code == 0
    assert "exits: disconnected" in stack.tasks[0].log
    assert not stack.record(gid).lease.is_live(time.time())


def test_dave_required_close_is_logged_loudly_and_never_loops(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    gid = _playing(stack, emulator, guild)
    voice_identifies_before = len(emulator.voice_events(guild.id, "identify"))

    emulator.close_voice(guild.id, 4017)
    code = stack.tasks[0].wait(timeout=30)
    log = stack.tasks[0].log

    assert code != 0 or "exits: error" in log
    assert "4017" in log and "DAVE" in log
    assert "metric=VoiceCloseCode value=1 code=4017" in log
    assert len(emulator.voice_events(guild.id, "identify")) - voice_identifies_before <= 1
    assert not stack.record(gid).lease.is_live(time.time())


def test_a_full_channel_gets_its_own_sentence_and_the_task_leaves(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    small = emulator.add_channel(guild.id, "Tiny", ChannelType.GUILD_VOICE, user_limit=1)
    user = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, user, small)
    gid = str(guild.id)
    stack.enqueue(
        gid, stack.tone_entry(440, 5), voice_channel_id=str(small), text_channel_id=str(guild.text_channel_id)
    )

    task = stack.launch(gid)
    code = task.wait(timeout=30)
    notices = [m.content or "" for m in emulator.messages(guild.text_channel_id)]

    assert code == 0
    assert any("channel is full" in text for text in notices), notices
    assert emulator.bot_voice_channel(guild.id) is None


def test_being_moved_to_another_channel_follows_the_move_and_keeps_playing(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    other = emulator.add_channel(guild.id, "Other", ChannelType.GUILD_VOICE)
    gid = _playing(stack, emulator, guild)
    follower = emulator.add_listener(guild.id, other, "follower")

    # Discord's move: the bot's voice state, a voice server update with a new token, a close 4014.
    moved_at = time.monotonic()
    assert emulator.move_bot(guild.id, other)
    record = stack.wait_record(gid, lambda r: r.voice_channel_id == str(other), what="the new channel recorded")
    emulator.wait_for(lambda: len(emulator.heard(guild.id, follower, since=moved_at)) >= 10, timeout=15,
                      message="the follower in the new channel hearing the bot")  # fmt: skip
    time.sleep(0.3)
    start = time.monotonic()
    time.sleep(1.0)
    followed = analyse(emulator.heard(guild.id, follower, since=start, until=time.monotonic()))
    heard = stack.hear(gid, 1.0, settle=0)

    assert emulator.bot_voice_channel(guild.id) == other
    assert record.voice_channel_id == str(other)
    assert [e for e in emulator.voice_events(guild.id, "identify") if e.time > moved_at], "no new voice session"
    assert followed.dominant_hz is not None and abs(followed.dominant_hz - 440) < 15, followed
    assert heard.dominant_hz is not None and abs(heard.dominant_hz - 440) < 15, heard
    assert stack.tasks[0].process.poll() is None


def test_setting_the_bots_voice_state_while_it_is_connected_is_a_whole_move(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    """A test that only sets the bot's voice state gets Discord's move too, so the frames of the
    stale session are never credited to the old channel's listener."""
    other = emulator.add_channel(guild.id, "Other", ChannelType.GUILD_VOICE)
    gid = _playing(stack, emulator, guild)
    follower = emulator.add_listener(guild.id, other, "follower")

    moved_at = time.monotonic()
    emulator.set_member_voice(guild.id, emulator.bot_user_id, other)
    stack.wait_record(gid, lambda r: r.voice_channel_id == str(other), what="the new channel recorded")
    emulator.wait_for(lambda: len(emulator.heard(guild.id, follower, since=moved_at)) >= 10, timeout=15,
                      message="the follower in the new channel hearing the bot")  # fmt: skip

    assert [e for e in emulator.voice_events(guild.id, "identify") if e.time > moved_at], "no new voice session"
    heard = stack.hear(gid, 1.0)
    assert heard.dominant_hz is not None and abs(heard.dominant_hz - 440) < 15, heard
