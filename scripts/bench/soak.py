"""Chaos soak: the voice task plays for N minutes on the loopback Discord emulator, under DAVE,
while faults hit it at random, and a listener's decrypted audio says how well it held up.

A queue of 60 short tones, each its own frequency (300, 320, … 1480 Hz), loops (loop: queue), so
the order every track must be heard in is known. Every 10–40 s one fault, drawn from a shuffled
bag (every kind once, in a random order, before any kind repeats; so 12 faults cover them all):

| fault | what | its window (no audio expected) |
|---|---|---|
| 4006, 4015 | the voice websocket closed with that code | 1 s |
| 4014-move | an admin drags the bot to the other voice channel (a listener waits there) | 1 s |
| 4021 | voice closed "rate limited": the task leaves, track kept; a user's /play 1 s later | 1 s + a cold start, 6 s |
| op7, op9 | the gateway asks for a reconnect / says the session is invalid | 2 s |
| rest-429 | a burst of 429s on the channel's message routes | 1 s |
| media-403 | the next track's media answers 403 once, mid-file | 1 s |
| media-stall | the next track's media stalls for 3 s mid-file | the stall + 1 s |
| store-throttle | the SQLite store is locked by another writer for 2 s | 2 s + 1 s |
| sigterm | SIGTERM (a deploy, a Spot stop); the reaper (every 10 s) relaunches it | the reaper's interval + 5 s |
| listener | a listener joins or leaves the bot's channel (the DAVE group changes) | 1 s |

It reports: the share of time with audio outside the fault windows (from the first sound to the
end); the tracks heard in order, with any lost or heard twice; the longest silence after each kind
of fault; crashes (a traceback or an error exit in any task's log); the lease generations seen.
It exits 1 on a lost or repeated track, a crash, or audio under its share outside the fault windows.

    .venv/bin/python -m scripts.bench.soak [--minutes 10] [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scripts.bench._common import add_source_paths, percentile, print_header, print_reproduce, table

if TYPE_CHECKING:
    from tests.support.emulator import DiscordEmulator, GuildHandle
    from tests.support.media import MediaServer
    from tests.support.voice_stack import VoiceStack
    from timmybot.launcher.local import LocalLauncher

TONES_HZ = tuple(300 + 20 * i for i in range(60))
TONE_S = 4.0
FAULT_EVERY_S = (10.0, 40.0)
REAPER_EVERY_S = 10.0
STALL_S = 3.0
THROTTLE_S = 2.0
COLD_START_S = 5.0
AUDIBLE_DBFS = -40.0
BIN_S = 0.1
AUDIO_SHARE_TARGET = 0.97
BUDGETS_S = {
    "4006": 1.0, "4015": 1.0, "4014-move": 1.0, "4021": 1.0 + COLD_START_S, "op7": 2.0, "op9": 2.0,
    "rest-429": 1.0, "media-403": 1.0, "media-stall": STALL_S + 1.0, "store-throttle": THROTTLE_S + 1.0,
    "sigterm": REAPER_EVERY_S + 5.0, "listener": 1.0,
}  # fmt: skip


@dataclass
class Fault:
    kind: str
    at: float
    detail: str = ""

    @property
    def window_end(self) -> float:
        return self.at + BUDGETS_S[self.kind]


@dataclass
class Soak:
    stack: VoiceStack
    launcher: LocalLauncher
    guild: GuildHandle
    channels: tuple[int, int]
    names: dict[str, str]  # entry id -> media file name
    rng: random.Random
    extra_listener: int | None = None
    faults: list[Fault] = field(default_factory=list)
    generations: set[int] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def gid(self) -> str:
        return str(self.guild.id)

    @property
    def emulator(self) -> DiscordEmulator:
        return self.stack.emulator

    @property
    def media(self) -> MediaServer:
        return self.stack.media

    def next_name(self) -> str | None:
        queue = self.stack.record(self.gid).queue
        return self.names.get(queue[0]) if queue else None

    def bot_channel(self) -> int:
        return self.emulator.bot_voice_channel(self.guild.id) or self.channels[0]

    # ---------------------------------------------------------------------------------- faults
    def inject(self, kind: str) -> str:
        emulator, gid = self.emulator, self.guild.id
        if kind in ("4006", "4015"):
            return f"closed: {emulator.close_voice(gid, int(kind))}"
        if kind == "4014-move":
            here = self.bot_channel()
            there = self.channels[1] if here == self.channels[0] else self.channels[0]
            return f"moved to {there}: {emulator.move_bot(gid, there)}"
        if kind == "4021":
            closed = emulator.close_voice(gid, 4021)
            threading.Timer(1.0, self._replay).start()
            return f"closed: {closed}; /play again in 1 s"
        if kind in ("op7", "op9"):
            return f"sessions told: {emulator.gateway_op(gid, int(kind[2:]))}"
        if kind == "rest-429":
            text = self.guild.text_channel_id
            for method, path in (("POST", f"/channels/{text}/messages"), ("PATCH", None)):
                if path is not None:
                    emulator.rate_limit(method, path, times=5, retry_after=1.0)
            return "5 x 429 on the channel's messages"
        if kind == "media-403":
            name = self.next_name()
            if name is not None:
                self.media.fail_after(name, 4_000, 403, times=1)
            return f"next: {name}"
        if kind == "media-stall":
            name = self.next_name()
            if name is not None:
                self.media.stall(name, 4_000)
                threading.Timer(STALL_S, self.media.clear_faults).start()
            return f"next: {name}"
        if kind == "store-throttle":
            threading.Thread(target=self._lock_store, daemon=True).start()
            return f"locked {THROTTLE_S:g} s"
        if kind == "sigterm":
            holder = self.stack.record(self.gid).lease.holder or ""
            if holder.startswith("pid:"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(holder[4:]), signal.SIGTERM)
                return f"SIGTERM to {holder}"
            return f"no task to stop (holder {holder!r})"
        if kind == "listener":
            if self.extra_listener is None:
                self.extra_listener = emulator.add_listener(gid, self.bot_channel(), "visitor")
                return "a listener joined"
            emulator.set_member_voice(gid, self.extra_listener, None)
            self.extra_listener = None
            return "a listener left"
        raise ValueError(kind)

    def _replay(self) -> None:
        self.launcher.ensure_running(self.gid)

    def _lock_store(self) -> None:
        connection = sqlite3.connect(self.stack.db_path, timeout=30, isolation_level=None)
        try:
            connection.execute("BEGIN EXCLUSIVE")
            time.sleep(THROTTLE_S)
            connection.execute("COMMIT")
        finally:
            connection.close()

    # ---------------------------------------------------------------------------------- loops
    def reaper_loop(self) -> None:
        from timmybot.reaper import reap  # noqa: PLC0415

        while not self.stop.wait(REAPER_EVERY_S):
            with contextlib.suppress(Exception):
                reap(self.stack.store, self.launcher, self.stack.settings)

    def sample_loop(self) -> None:
        while not self.stop.wait(1.0):
            with contextlib.suppress(Exception):
                lease = self.stack.record(self.gid).lease
                if lease.generation:
                    self.generations.add(lease.generation)


# ------------------------------------------------------------------------------------ analysis
class FaultBag:
    """Fault kinds drawn without replacement: each round is every kind once, shuffled by ``rng``
    (a plain random choice left kinds out: 21 draws with seed 2026 never chose 4021)."""

    def __init__(self, kinds: Sequence[str], rng: random.Random) -> None:
        self._kinds = sorted(kinds)
        self._rng = rng
        self._left: list[str] = []

    def draw(self) -> str:
        if not self._left:
            self._left = list(self._kinds)
            self._rng.shuffle(self._left)
        return self._left.pop()


def audible_times(packets: Sequence[Any]) -> list[float]:
    from tests.support.audio import packet_levels  # noqa: PLC0415

    return [t for t, level in packet_levels(packets) if level > AUDIBLE_DBFS]


def audio_share(audible: Sequence[float], faults: Sequence[Fault], start: float, end: float) -> float:
    heard = {int((t - start) / BIN_S) for t in audible if start <= t < end}
    eligible = 0
    with_audio = 0
    for index in range(int((end - start) / BIN_S)):
        lo = start + index * BIN_S
        hi = lo + BIN_S
        if any(f.at < hi and lo < f.window_end for f in faults):
            continue
        eligible += 1
        with_audio += index in heard
    return with_audio / eligible if eligible else 0.0


def tracks_heard(packets: Sequence[Any]) -> list[int]:
    """The tone index of each run of audio, in order (runs shorter than 0.4 s are ignored)."""
    from tests.support.audio import windows  # noqa: PLC0415

    runs: list[list[int]] = []
    for window in windows(packets):
        nearest = min(range(len(TONES_HZ)), key=lambda i: abs(TONES_HZ[i] - window.hz))
        if abs(TONES_HZ[nearest] - window.hz) > 6:
            continue
        if runs and runs[-1][0] == nearest:
            runs[-1].append(nearest)
        else:
            runs.append([nearest])
    merged: list[int] = []
    for run in runs:
        if len(run) >= 2 and (not merged or merged[-1] != run[0]):
            merged.append(run[0])
    return merged


def order_problems(heard: Sequence[int]) -> tuple[int, int]:
    """(tracks lost, tracks heard twice) against the looping queue order."""
    lost = repeated = 0
    for before, after in itertools.pairwise(heard):
        step = (after - before) % len(TONES_HZ)
        if step == 1:
            continue
        if step == 0 or step > len(TONES_HZ) // 2:
            repeated += 1
        else:
            lost += step - 1
    return lost, repeated


def longest_silence_after(audible: Sequence[float], fault: Fault, until: float) -> float:
    times = [t for t in audible if fault.at - 1.0 <= t <= until]
    gaps = [b - a for a, b in itertools.pairwise(times) if b >= fault.at]
    return max(0.0, max(gaps, default=until - fault.at) - 0.02)


def crashes(log_dir: Path) -> list[str]:
    found = []
    for log in sorted(log_dir.glob("*.log")):
        text = log.read_text(errors="replace")
        if "Traceback (most recent call last)" in text or "exit reason: error" in text:
            found.append(log.name)
    return found


# ------------------------------------------------------------------------------------ running
def run(minutes: float, seed: int) -> int:
    add_source_paths()
    from tests.support.emulator import DiscordEmulator  # noqa: PLC0415
    from tests.support.media import MediaServer  # noqa: PLC0415
    from tests.support.voice_stack import VoiceStack  # noqa: PLC0415
    from timmybot.config import Settings  # noqa: PLC0415
    from timmybot.launcher.local import LocalLauncher  # noqa: PLC0415
    from timmybot.models import LoopMode  # noqa: PLC0415

    rng = random.Random(seed)
    with contextlib.ExitStack() as cleanup:
        emulator: DiscordEmulator = cleanup.enter_context(DiscordEmulator())
        media: MediaServer = cleanup.enter_context(MediaServer())
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="timmybot-soak-")))
        stack = VoiceStack(emulator, media, tmp, TIMMYBOT_TICK_S=str(Settings().tick_s), TIMMYBOT_IDLE_TIMEOUT_S="3600",
                           TIMMYBOT_ALONE_TIMEOUT_S="3600", TIMMYBOT_DATA_DIR=str(tmp))  # fmt: skip
        cleanup.callback(stack.close)
        logs = tmp / "tasks"
        settings = dataclasses.replace(stack.settings, voice_task_log_dir=str(logs))
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TIMMYBOT_")}
        environ.update(stack.env)
        launcher = LocalLauncher(stack.store, settings, environ=environ)
        guild = emulator.add_guild("Soak")
        other = emulator.add_channel(guild.id, "Soak two")
        emulator.add_listener(guild.id, guild.voice_channel_id, "listener-a")
        emulator.add_listener(guild.id, other, "listener-b")
        entries = [stack.tone_entry(hz, TONE_S) for hz in TONES_HZ]
        names = {e.entry_id: f"tone-{hz}-{TONE_S}.webm" for e, hz in zip(entries, TONES_HZ, strict=True)}
        soak = Soak(stack, launcher, guild, (guild.voice_channel_id, other), names, rng)
        stack.enqueue(soak.gid, *entries, voice_channel_id=str(guild.voice_channel_id),
                      text_channel_id=str(guild.text_channel_id))  # fmt: skip
        stack.store.set_loop(soak.gid, LoopMode.QUEUE)
        launcher.ensure_running(soak.gid)
        began = time.monotonic()
        first = stack.wait_for_audio(soak.gid, since=began, timeout=30)
        for loop in (soak.reaper_loop, soak.sample_loop):
            threading.Thread(target=loop, daemon=True).start()
        end = first + minutes * 60
        bag = FaultBag(list(BUDGETS_S), rng)
        while True:
            at = time.monotonic() + rng.uniform(*FAULT_EVERY_S)
            if at + 15 > end:
                break
            time.sleep(max(0.0, at - time.monotonic()))
            kind = bag.draw()
            fault = Fault(kind, time.monotonic())
            fault.detail = soak.inject(kind)
            soak.faults.append(fault)
            print(f"{fault.at - first:7.1f} s  {kind:<15} {fault.detail}", flush=True)
        time.sleep(max(0.0, end - time.monotonic()))
        soak.stop.set()
        packets = emulator.packets(guild.id, since=first - 1.0)
        stack.store.stop(soak.gid)
        time.sleep(2.0)
        launcher.wait_children(20)
        kept = Path(tempfile.mkdtemp(prefix="timmybot-soak-logs-"))
        for log in logs.glob("*.log"):
            shutil.copy(log, kept / log.name)
        print(f"note: the voice task logs are kept in {kept}")
        return report(soak, packets, (first, end), logs, minutes=minutes, seed=seed)


def report(soak: Soak, packets: Sequence[Any], span: tuple[float, float], logs: Path, *, minutes: float,
           seed: int) -> int:  # fmt: skip
    first, end = span
    audible = audible_times(packets)
    share = audio_share(audible, soak.faults, first, end)
    heard = tracks_heard(packets)
    lost, repeated = order_problems(heard)
    crashed = crashes(logs)
    rows = [["figure", "N", "result", "target", "verdict"]]
    rows.append(["audio outside fault windows", str(len(soak.faults)), f"{share * 100:.2f} %",
                 f"≥ {AUDIO_SHARE_TARGET * 100:g} %", _verdict(share >= AUDIO_SHARE_TARGET)])  # fmt: skip
    rows.append(["tracks heard in queue order", str(len(heard)), f"{lost} lost, {repeated} heard twice", "0 and 0",
                 _verdict(lost == repeated == 0)])  # fmt: skip
    rows.append(["crashes", "", str(len(crashed)) + (f" ({', '.join(crashed)})" if crashed else ""), "0",
                 _verdict(not crashed)])  # fmt: skip
    rows.append(["lease generations seen", str(len(soak.generations)), ", ".join(map(str, sorted(soak.generations))),
                 "", ""])  # fmt: skip
    following: dict[str, list[float]] = {}
    for fault, after in itertools.zip_longest(soak.faults, soak.faults[1:]):
        until = after.at if after is not None else end
        following.setdefault(fault.kind, []).append(longest_silence_after(audible, fault, until))
    for kind in sorted(following):
        values = following[kind]
        rows.append([f"  longest silence after {kind}", str(len(values)),
                     f"max {max(values) * 1000:.0f} ms, p50 {percentile(values, 50) * 1000:.0f} ms",
                     f"window {BUDGETS_S[kind]:g} s", ""])  # fmt: skip
    print()
    table(rows)
    print()
    print(f"note: {len(packets)} packets heard over {end - first:.0f} s; tones of {TONE_S:g} s, "
          f"{len(TONES_HZ)} in the looping queue; reaper every {REAPER_EVERY_S:g} s")  # fmt: skip
    print_reproduce(f".venv/bin/python -m scripts.bench.soak --minutes {minutes:g} --seed {seed}")
    return 1 if lost or repeated or crashed or share < AUDIO_SHARE_TARGET else 0


def _verdict(ok: bool) -> str:
    return "within target" if ok else "OVER target"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to play (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="the fault schedule's seed (default: random)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    print_header("soak: the voice task under random faults, heard through a libdave listener",
                 f"--minutes {args.minutes:g} --seed {seed}")  # fmt: skip
    return run(args.minutes, seed)


if __name__ == "__main__":
    sys.exit(main())
