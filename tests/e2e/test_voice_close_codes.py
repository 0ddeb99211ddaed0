"""Every voice close is counted by its code, from the voice client's own close handling (not from
discord.py's log records), and each code is followed as Discord means it: 4006 and 4014 get a
fresh voice session, 4015 a resume, 4021 ends the connection without a retry loop; and a reconnect
whose new sessions fail is retried until one holds."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.faults import RESUME_TOLERANCE_S, VoiceCheck, fault_outcome, play_sweep, voice_checks
from tests.support.voice_stack import VoiceStack
from timmybot.models import LeaseState

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]

# The reconnect test's sweep: cut 5 s in, back within 5 s, it still has 3 s or more to play from
# where it stopped (the long fault tests play 90 s for late failures).
SWEEP_S = 13.0


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
    gid, _ = _playing(stack, emulator, guild)
    time.sleep(1.0)
    task = stack.tasks[-1]
    identifies = len(emulator.voice_events(guild.id, "identify"))

    # WHEN Discord closes voice with 4021 (rate limited: do not reconnect)
    assert emulator.close_voice(guild.id, 4021)
    task.wait(timeout=30)

    # THEN it was counted, no new voice session was tried, and the task left with the track kept
    # at the head of the queue and where it was, marked as given up (no reaper relaunch loop)
    record = stack.record(gid)
    assert _close_metrics(task.log) == ["4021"]
    assert len(emulator.voice_events(guild.id, "identify")) == identifies
    assert "voice closed with 4021: not reconnecting" in task.log
    assert record.lease.state is LeaseState.RELEASED and record.lease.voice_gave_up_at is not None
    assert record.lease.resume is not None and record.queue[:1] == (record.lease.resume["entry_id"],)
    assert record.lease.resume["position_ms"] > 0


def test_a_reconnect_that_fails_twice_and_then_succeeds_keeps_playing_from_where_it_stopped(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN a listener hearing a SWEEP_S sweep (its frequency tells the position), a tone after it
    run = play_sweep(stack, emulator, guild, SWEEP_S, after_s=2)
    gid, after, task, started = run.gid, run.after, run.task, run.started

    # WHEN, 5 s in, the voice connection closes and the next two new voice sessions fail too
    time.sleep(max(0.0, started + 5.0 - time.monotonic()))
    emulator.refuse_voice_identifies(2)
    fault_at = time.monotonic()
    assert emulator.close_voice(guild.id, 4006)

    # THEN the third try gets it back, and the sweep goes on from where it stopped to its end
    stack.wait_record(gid, lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id
                      == after.entry_id, timeout=40, what="the track after the sweep")  # fmt: skip
    time.sleep(1.5)
    outcome = fault_outcome(emulator.packets(guild.id, since=started), fault_at)
    identifies = [e for e in emulator.voice_events(guild.id, "identify") if e.time >= fault_at]
    assert len(identifies) == 3, identifies
    # AND meanwhile the now-playing card said it was reconnecting
    cards = [json.dumps(r.json) for r in emulator.requests() if r.time >= fault_at and r.json is not None]
    assert any("Reconnecting" in card for card in cards), cards
    assert _close_metrics(task.log) == ["4006", "4006", "4006"]
    assert outcome.gap_s <= 5.0, outcome.describe()
    # (± 0.5 s: the first window after the fault is one window on from the last before it)
    assert abs(outcome.resume_error_s) <= RESUME_TOLERANCE_S, outcome.describe()
    assert outcome.last_sweep_s >= SWEEP_S - 1.5 and outcome.next_track_after_sweep, outcome.describe()
    assert task.process.poll() is None
    # AND once recovered, discord.py's voice client was the task's own and no task of a discarded
    # voice connection was alive
    assert voice_checks(task.log) == [VoiceCheck(stale_tasks=0, client="ours")], task.log[-3000:]


@pytest.mark.parametrize("op", [7, 9])
def test_after_a_new_gateway_session_the_voice_connection_is_back_and_a_later_close_recovered(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, op: int
) -> None:
    # GIVEN a task playing, whose gateway is told to reconnect (op 7: it resumes) or that its
    # session is invalid (op 9: it identifies again; Discord drops the old session's voice with a
    # 4014, and discord.py empties its voice-client cache)
    gid, _ = _playing(stack, emulator, guild)
    task = stack.tasks[-1]
    identifies = len(emulator.identifies())
    told = time.monotonic()
    assert emulator.gateway_op(guild.id, op) == 1

    # THEN the audio goes on (after an op 9, once the task has joined again)
    stack.wait_for_audio(gid, since=told + (6.0 if op == 9 else 1.0), timeout=20, packets=25)
    # WHEN the voice websocket then closes with 4006
    assert emulator.close_voice(guild.id, 4006)
    closed = time.monotonic()

    # THEN the voice connection comes back at once and the track plays on
    back = stack.wait_for_audio(gid, since=closed + 0.05, timeout=10, packets=25)
    assert back - closed < 2.0, task.log[-3000:]
    assert len(emulator.identifies()) == identifies + (1 if op == 9 else 0)
    assert _close_metrics(task.log) == (["4014", "4006"] if op == 9 else ["4006"])
    assert task.process.poll() is None
