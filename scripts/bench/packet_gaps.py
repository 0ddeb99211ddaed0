"""Benchmark: pacing of the Opus packets a discord.py client sends, measured by the loopback emulator.

Runs the Discord emulator and the minimal discord.py bot (a subprocess), plays a generated tone via
``FFmpegOpusAudio`` (codec copy) and prints the packet-gap distribution and the decoded tone.

    .venv/bin/python -m scripts.bench.packet_gaps [--seconds 10] [--freq 440]
"""

from __future__ import annotations

import argparse
import logging
import sys

from tests.support.audio import analyse
from tests.support.emulator import DiscordEmulator
from tests.support.media import tone_file
from tests.support.minimal_bot import MinimalBotProcess

_log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the tone played")
    parser.add_argument("--freq", type=float, default=440.0, help="frequency of the tone (Hz)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    path = tone_file(args.freq, args.seconds, "webm")
    with DiscordEmulator() as emulator:
        guild = emulator.add_guild("Bench")
        with MinimalBotProcess(emulator) as bot:
            bot.wait_event("ready", timeout=30)
            bot.command("join", guild=guild.id, channel=guild.voice_channel_id)
            bot.wait_event("joined", timeout=30)
            bot.command("play", guild=guild.id, path=path)
            started = bot.wait_event("playing")["t"]
            done = bot.wait_event("play_done", timeout=args.seconds + 30)
            bot.command("leave", guild=guild.id)
            bot.wait_event("left", timeout=15)
        result = analyse(emulator.packets(guild.id, since=started))

    expected = round(args.seconds / 0.020)
    print(f"tone: {args.freq:g} Hz, {args.seconds:g} s Opus/WebM via FFmpegOpusAudio(codec='copy')")
    print(f"packets: {result.packet_count} (expected ~{expected}); play error: {done['error']}")
    print(f"decoded: dominant {result.dominant_hz:.1f} Hz, level {result.rms_dbfs:.1f} dBFS, "
          f"{result.duration_s:.2f} s")  # fmt: skip
    print(f"packet gaps: {result.gaps.describe()}")
    print("reproduce: .venv/bin/python -m scripts.bench.packet_gaps "
          f"--seconds {args.seconds:g} --freq {args.freq:g}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
