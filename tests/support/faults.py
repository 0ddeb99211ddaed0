"""Long-track fault checks: where playback was when a fault hit, and where it came back.

A fault test plays a sweep (``media.sweep_file``: its frequency tells the position) and then a
low tone, injects a fault well into the sweep, and reads from what the listeners heard:
- the last sweep position heard before the fault and the first one after it;
- how long nothing was heard around it;
- that the sweep then plays to its end, and the next track follows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.support.audio import PacketLike, Window, sweep_position, windows
from tests.support.media import SWEEP_START_HZ

if TYPE_CHECKING:
    from tests.support.emulator import DiscordEmulator, GuildHandle
    from tests.support.voice_stack import VoiceStack, VoiceTaskProcess
    from timmybot.models import QueueEntry

#: The track after the sweep: below the sweep's lowest frequency, so the two can't be confused.
NEXT_TONE_HZ = 150
#: The audio in one analysis window (``audio.windows``: 10 packets of 20 ms). Two windows in a row
#: are this far apart in the sweep when nothing was skipped or repeated between them.
WINDOW_S = 10 * 0.02
#: How far from where it stopped playback may resume after a fault (issue 13: ± 0.5 s).
RESUME_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class FaultOutcome:
    before_s: float  # sweep position of the last window that began before the fault
    after_s: float  # sweep position of the first window that began after the fault
    gap_s: float  # arrival time between those two windows
    sweep_heard_s: float  # total sweep audio heard (packets x 20 ms)
    last_sweep_s: float  # the furthest sweep position heard
    next_track_after_sweep: bool  # the next tone was heard, after the sweep's last window
    heard_at: list[float]  # arrival time of each sweep window after the fault

    @property
    def resume_error_s(self) -> float:
        """How far from where it stopped the sweep came back: 0 when the first window after the
        fault follows the last one before it (one window on), + skipped, − repeated."""
        return self.after_s - self.before_s - WINDOW_S

    def describe(self) -> str:
        return (f"before {self.before_s:.2f} s, after {self.after_s:.2f} s "
                f"(resumed {self.resume_error_s:+.2f} s off), gap {self.gap_s:.2f} s, "
                f"sweep heard {self.sweep_heard_s:.1f} s up to {self.last_sweep_s:.1f} s, "
                f"next track after it: {self.next_track_after_sweep}")  # fmt: skip


def _is_sweep(window: Window) -> bool:
    return window.hz >= SWEEP_START_HZ - 10


def _is_next(window: Window) -> bool:
    return abs(window.hz - NEXT_TONE_HZ) < 10


def fault_outcome(packets: Sequence[PacketLike], fault_at: float) -> FaultOutcome:
    heard = windows(packets)
    sweep = [w for w in heard if _is_sweep(w)]
    before = [w for w in sweep if w.time < fault_at]
    after = [w for w in sweep if w.time >= fault_at]
    if not before or not after:
        raise AssertionError(f"the sweep was not heard on both sides of the fault: {len(before)}/{len(after)} windows")
    last_before, first_after = before[-1], after[0]
    nexts = [w for w in heard if _is_next(w)]
    return FaultOutcome(
        before_s=sweep_position(last_before.hz),
        after_s=sweep_position(first_after.hz),
        gap_s=first_after.time - last_before.time,
        sweep_heard_s=sum(w.packets for w in sweep) * 0.02,
        last_sweep_s=max(sweep_position(w.hz) for w in sweep),
        next_track_after_sweep=bool(nexts) and nexts[0].time > sweep[-1].time,
        heard_at=[w.time for w in after],
    )


@dataclass(frozen=True)
class SweepRun:
    gid: str
    sweep: QueueEntry
    after: QueueEntry  # the tone queued after the sweep
    task: VoiceTaskProcess
    started: float  # when the listener heard the first packet


def play_sweep(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, seconds: float, *,
               after_s: float) -> SweepRun:  # fmt: skip
    """A listener in the guild's channel, a ``seconds`` sweep with a ``NEXT_TONE_HZ`` tone after it,
    the voice task launched, and the sweep heard."""
    emulator.add_listener(guild.id, guild.voice_channel_id)
    gid = str(guild.id)
    sweep, after = stack.sweep_entry(seconds), stack.tone_entry(NEXT_TONE_HZ, after_s)
    stack.enqueue(gid, sweep, after, voice_channel_id=str(guild.voice_channel_id),
                  text_channel_id=str(guild.text_channel_id))  # fmt: skip
    task = stack.launch(gid)
    return SweepRun(gid, sweep, after, task, stack.wait_for_audio(gid, since=0, timeout=20))


@dataclass(frozen=True)
class VoiceCheck:
    """One ``VoiceStaleTasks`` metric the voice task emitted after a recovery or a rejoin."""

    stale_tasks: int  # tasks of a discarded voice connection still alive
    client: str  # "ours": discord.py's voice client for the guild is the task's own; else "other"


def voice_checks(log: str) -> list[VoiceCheck]:
    """The task's checks of its voice connection after each recovery and rejoin, from its metric
    lines (``metric=VoiceStaleTasks value=<n> client=<ours|other>``)."""
    found = re.findall(r"metric=VoiceStaleTasks value=(\d+) client=(\w+)", log)
    return [VoiceCheck(int(value), client) for value, client in found]
