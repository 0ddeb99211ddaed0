"""The DAVE group across a voice reconnect, as Discord keeps it: a 4015 is resumed in the same group
(no new commit, no new transition), a 4006 gets a fresh session and a new group."""

from __future__ import annotations

import time

import pytest

from tests.support.audio import analyse
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.voice_stack import VoiceStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

#: What makes a new group or a new epoch; none of it may follow a resumed 4015.
NEW_GROUP_EVENTS = ("mls_key_package", "mls_announce_commit_transition", "transition_executed", "sole_member_reset")


def _playing_to_a_listener(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle) -> tuple[str, int]:
    assert guild.voice_channel_id is not None
    listener = emulator.add_listener(guild.id, guild.voice_channel_id)
    gid = str(guild.id)
    stack.enqueue(gid, stack.tone_entry(440, 40), voice_channel_id=str(guild.voice_channel_id),
                  text_channel_id=str(guild.text_channel_id))  # fmt: skip
    stack.launch(gid)
    emulator.wait_for(lambda: len(emulator.heard(guild.id, listener)) >= 10, timeout=20, message="the tone")
    time.sleep(1)
    return gid, listener


def _listener_hears_the_tone(emulator: DiscordEmulator, guild: GuildHandle, listener: int, since: float) -> None:
    emulator.wait_for(lambda: len(emulator.heard(guild.id, listener, since=since)) >= 25, timeout=15,
                      message="the listener hearing the tone again")  # fmt: skip
    start = time.monotonic()
    time.sleep(1.0)
    heard = analyse(emulator.heard(guild.id, listener, since=start, until=time.monotonic()))
    assert heard.dominant_hz == pytest.approx(440, rel=0.02), heard


def test_after_a_4015_the_dave_group_is_resumed_with_no_new_commit_or_transition(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN the bot playing to a listener in an established group
    gid, listener = _playing_to_a_listener(stack, emulator, guild)
    channel = guild.voice_channel_id
    assert channel is not None
    before = emulator.dave_group(channel)
    assert before["established"]

    # WHEN the voice server crashes (4015) and the bot resumes
    closed_at = time.monotonic()
    assert emulator.close_voice(guild.id, 4015)
    emulator.wait_for(lambda: [e for e in emulator.dave_events(guild.id, "resume") if e.time > closed_at],
                      timeout=15, message="the bot resuming its DAVE membership")  # fmt: skip

    # THEN the listener hears the tone again in the same group: the same epoch and members, and no
    # key package, commit, transition or reset since the close
    _listener_hears_the_tone(emulator, guild, listener, closed_at)
    after = emulator.dave_group(channel)
    assert (after["epoch"], after["members"], after["leaves"]) == (before["epoch"], before["members"], before["leaves"])
    since = [e.kind for e in emulator.dave_events(guild.id) if e.time > closed_at]
    assert not [kind for kind in since if kind in NEW_GROUP_EVENTS], since
    assert "resume" in since and "connect" not in since
    assert [e for e in emulator.voice_events(int(gid), "resume") if e.time > closed_at]
    assert not [e for e in emulator.voice_events(int(gid), "identify") if e.time > closed_at]


def test_after_a_4006_a_new_dave_group_is_made(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN the bot playing to a listener in an established group
    gid, listener = _playing_to_a_listener(stack, emulator, guild)
    bot = emulator.bot_user_id

    # WHEN its voice session is closed with 4006 (it cannot be resumed)
    closed_at = time.monotonic()
    assert emulator.close_voice(guild.id, 4006)

    # THEN the bot is not resumed into the old group: it leaves it (the listener, alone, is reset),
    # connects afresh with a new key package, and a new commit takes it into a new group
    emulator.wait_for(
        lambda: [e for e in emulator.dave_events(guild.id, "mls_announce_commit_transition")
                 if e.time > closed_at and (e.user_id == bot or bot in e.data["joined"])],
        timeout=20, message="a new group with the bot",
    )  # fmt: skip
    _listener_hears_the_tone(emulator, guild, listener, closed_at)
    since = [e for e in emulator.dave_events(guild.id) if e.time > closed_at]
    kinds = [e.kind for e in since]
    assert "resume" not in kinds, kinds
    assert ("disconnect", bot) in [(e.kind, e.user_id) for e in since]
    assert ("sole_member_reset", listener) in [(e.kind, e.user_id) for e in since]
    assert ("connect", bot) in [(e.kind, e.user_id) for e in since]
    assert ("mls_key_package", bot) in [(e.kind, e.user_id) for e in since]
    assert [e for e in emulator.voice_events(int(gid), "identify") if e.time > closed_at]
    assert emulator.dave_group(guild.voice_channel_id or 0)["established"]
