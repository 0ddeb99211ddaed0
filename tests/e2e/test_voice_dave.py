"""The voice task under DAVE, heard through libdave listeners as Discord's clients hear it:
listeners joining and leaving mid-track, the bot left alone, a group ready late, privacy codes,
and a build without DAVE refused with 4017."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.support.audio import analyse, sweep_position, windows
from tests.support.dave_checks import bot_privacy_codes
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.voice_stack import VoiceStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

NO_DAVE = Path(__file__).resolve().parents[1] / "support" / "no_dave"


def _play(stack: VoiceStack, guild: GuildHandle, *entries: object) -> str:
    gid = str(guild.id)
    stack.enqueue(gid, *entries, voice_channel_id=str(guild.voice_channel_id),  # type: ignore[arg-type]
                  text_channel_id=str(guild.text_channel_id))  # fmt: skip
    stack.launch(gid)
    return gid


def _welcome_time(emulator: DiscordEmulator, guild: GuildHandle, user_id: int) -> float:
    commits = emulator.dave_events(guild.id, "mls_announce_commit_transition")
    events = [e for e in commits if user_id in e.data["joined"]]
    assert events, f"no welcome for {user_id}"
    return events[-1].time


def test_a_listener_who_joins_mid_track_hears_the_tone_within_a_second_of_its_welcome(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN a first listener hearing a 12 s tone
    emulator.add_listener(guild.id, guild.voice_channel_id)
    gid = _play(stack, guild, stack.tone_entry(440, 12))
    stack.wait_for_audio(gid, since=0)
    time.sleep(2)

    # WHEN a second listener joins mid-track
    second = emulator.add_listener(guild.id, guild.voice_channel_id, "second")
    emulator.wait_for(lambda: emulator.heard(guild.id, second), message="the second listener hearing anything")
    time.sleep(1.5)

    # THEN it hears the tone within 1 s of its welcome
    welcomed = _welcome_time(emulator, guild, second)
    heard = emulator.heard(guild.id, second)
    assert heard[0].time - welcomed <= 1.0
    assert analyse(heard).dominant_hz == pytest.approx(440, rel=0.02)


def test_a_listener_who_leaves_decrypts_none_of_the_next_epochs_frames(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN two listeners hearing a 12 s tone
    stays = emulator.add_listener(guild.id, guild.voice_channel_id, "stays")
    leaves = emulator.add_listener(guild.id, guild.voice_channel_id, "leaves")
    _play(stack, guild, stack.tone_entry(440, 12))
    emulator.wait_for(lambda: emulator.heard(guild.id, leaves), message="both listeners hearing")
    time.sleep(1)

    # WHEN one leaves the channel (its client keeps trying to decrypt what the bot sends)
    left_at = time.monotonic()
    emulator.set_member_voice(guild.id, leaves, None)
    commit = emulator.wait_for(
        lambda: [e for e in emulator.dave_events(guild.id, "mls_announce_commit_transition") if e.time > left_at],
        message="the removal's commit",
    )[0]
    executed = emulator.wait_for(
        lambda: [e for e in emulator.dave_events(guild.id, "transition_executed")
                 if e.time > left_at and e.data["transition_id"] == commit.data["transition_id"]],
        message="the removal's transition executed",
    )[0]  # fmt: skip
    assert leaves not in executed.data["members"] and stays in executed.data["members"]
    time.sleep(2)

    # THEN from the moment the removal's transition executed it decrypts nothing the bot sent,
    # while the other listener hears it all
    assert emulator.heard(guild.id, leaves, since=executed.time) == []
    after = emulator.heard(guild.id, stays, since=executed.time)
    assert len(after) >= 80 and analyse(after).dominant_hz == pytest.approx(440, rel=0.02)


def test_the_bot_left_alone_is_heard_again_when_a_listener_comes_back_and_the_track_went_on_from_there(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN a listener hearing a 20 s sweep
    stack.store.update_settings(str(guild.id), twenty_four_seven=True)
    listener = emulator.add_listener(guild.id, guild.voice_channel_id)
    gid = _play(stack, guild, stack.sweep_entry(20))
    stack.wait_for_audio(gid, since=0)
    time.sleep(3)

    # WHEN the listener leaves (the bot is alone: its group resets) and comes back 3 s later
    left_at = time.monotonic()
    emulator.set_member_voice(guild.id, listener, None)
    emulator.wait_for(lambda: emulator.dave_events(guild.id, "sole_member_reset"), message="the group reset")
    time.sleep(3)
    back_at = time.monotonic()
    emulator.set_member_voice(guild.id, listener, guild.voice_channel_id)
    stack.wait_for_audio(gid, since=back_at, timeout=10)
    time.sleep(2)

    # THEN it is heard again, from about where it was when the listener left (nobody missed anything)
    before = [w for w in windows(emulator.packets(guild.id, until=left_at)) if w.hz > 150]
    after = [w for w in windows(emulator.packets(guild.id, since=back_at)) if w.hz > 150]
    assert before and after
    assert abs(sweep_position(after[0].hz) - sweep_position(before[-1].hz)) <= 1.0
    assert after[0].time - back_at <= 2.0
    assert emulator.plaintext_frames(guild.id) == 0


def test_a_group_ready_late_costs_no_audio_the_track_starts_at_its_beginning(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN a call whose group becomes ready 1.5 s after the bot joins
    emulator.hold_dave_commits(guild.voice_channel_id, 1.5)  # type: ignore[arg-type]
    emulator.add_listener(guild.id, guild.voice_channel_id)

    # WHEN the bot joins and starts a sweep at once
    gid = _play(stack, guild, stack.sweep_entry(8))
    stack.wait_for_audio(gid, since=0, timeout=20)
    time.sleep(1)

    # THEN the first thing heard is the sweep's start, and nothing went out in plain text meanwhile
    first = next(w for w in windows(emulator.packets(guild.id)) if w.hz > 150)
    assert sweep_position(first.hz) <= 0.5
    assert emulator.plaintext_frames(guild.id) == 0
    record = stack.record(gid)
    assert record.actual.position_ms is not None


def test_after_each_transition_the_bot_logs_the_privacy_code_its_listeners_see(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN a bot playing to one listener
    first = emulator.add_listener(guild.id, guild.voice_channel_id)
    gid = _play(stack, guild, stack.tone_entry(440, 10))
    stack.wait_for_audio(gid, since=0)

    # WHEN a second listener joins and then the first leaves (two more transitions)
    emulator.add_listener(guild.id, guild.voice_channel_id, "second")
    emulator.wait_for(lambda: len(emulator.dave_events(guild.id, "transition_executed")) >= 2, message="epoch 2")
    emulator.set_member_voice(guild.id, first, None)
    emulator.wait_for(lambda: len(emulator.dave_events(guild.id, "transition_executed")) >= 3, message="epoch 3")
    stack.wait_for_audio(gid, since=time.monotonic())

    # THEN the bot logged three codes, each the one its listeners computed for that epoch, in order
    logged = bot_privacy_codes([stack.tasks[0].log])
    seen = list(dict.fromkeys(c.code for c in emulator.privacy_codes(guild.id)))
    assert len(logged) == 3 and logged == seen[: len(logged)]


def test_a_build_without_dave_is_refused_with_4017_once_and_exits_with_a_metric(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN a voice task whose discord.py offers no DAVE (a site hook in the test's environment)
    emulator.add_listener(guild.id, guild.voice_channel_id)
    gid = str(guild.id)
    stack.enqueue(gid, stack.tone_entry(440, 4), voice_channel_id=str(guild.voice_channel_id),
                  text_channel_id=str(guild.text_channel_id))  # fmt: skip
    task = stack.launch(gid, python_path=[NO_DAVE])

    # WHEN it tries to join in required mode
    code = task.wait(timeout=60)

    # THEN Discord's 4017 ends it after one try, loudly, with the close-code metric
    assert code == 1
    assert {e.data for e in emulator.voice_events(guild.id, "closed_by_server")} == {4017}
    assert len(emulator.voice_events(guild.id, "identify")) == 1
    assert re.search(r"metric=VoiceCloseCode value=1 code=4017", task.log)
    assert "DAVE end-to-end encryption required" in task.log
    assert len(emulator.identifies()) == 1
