"""Benchmark: the CPU a track's FFmpeg source costs after FFmpeg has exited, before the track ends.

FFmpeg writes a track into its pipe faster than it plays and exits seconds before the end; from
then on discord.py's stderr reader thread reads nothing, at once, until the source is cleaned up.
This process opens a real ``discord.FFmpegOpusAudio`` (codec copy, real FFmpeg) on a generated
tone, waits until FFmpeg has exited, then measures this process's CPU over a window in which
nobody reads the track (the seconds a real track still plays). Interleaved in the same run, the
baseline: the same source with a plain sink for stderr, which is what the reader does without
``voice_task.audio.StderrTail``'s pause at end of file.

    .venv/bin/python -m scripts.bench.track_end_cpu [--window 2] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench._common import add_source_paths, median, print_header, print_reproduce, table

add_source_paths()

import discord  # noqa: E402 - after the source paths

from tests.support.media import tone_file  # noqa: E402
from voice_task.audio import StderrTail, ffmpeg_executable  # noqa: E402


class _PlainSink:
    """What discord.py's reader writes to when nothing paces it: a sink that returns at once (it has
    no ``fileno``, so discord.py pipes stderr through its reader thread, as for ``StderrTail``)."""

    def write(self, data: bytes) -> int:
        return len(data)


def _cpu_after_exit(sink: object, path: Path, window_s: float) -> float:
    """CPU-seconds this process used over ``window_s`` after FFmpeg exited, nobody reading the track."""
    source = discord.FFmpegOpusAudio(str(path), codec="copy", executable=ffmpeg_executable(), stderr=sink)  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 30
        while source._process.poll() is None and time.monotonic() < deadline:  # the one way to see FFmpeg exit
            time.sleep(0.01)
        time.sleep(0.2)  # the reader has seen the end of stderr
        start = time.process_time()
        time.sleep(window_s)
        return time.process_time() - start
    finally:
        source.cleanup()
        time.sleep(0.3)  # the reader leaves its loop before the next measurement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=2.0, help="seconds measured after FFmpeg exits")
    parser.add_argument("--runs", type=int, default=3, help="measurements of each kind, interleaved")
    parser.add_argument("--quick", action="store_true", help="one run of a 0.5 s window")
    args = parser.parse_args(argv)
    if args.quick:
        args.window, args.runs = 0.5, 1
    print_header(
        "track-end CPU: FFmpeg's stderr reader after FFmpeg exits", f"{args.runs} runs of a {args.window} s window"
    )
    path = tone_file(440, 2.0)
    paced: list[float] = []
    plain: list[float] = []
    for _ in range(args.runs):
        paced.append(_cpu_after_exit(StderrTail(), path, args.window))
        plain.append(_cpu_after_exit(_PlainSink(), path, args.window))
    paced_share, plain_share = median(paced) / args.window, median(plain) / args.window
    table([
        ["stderr sink", "median CPU over the window", "share of one core"],
        ["StderrTail (the voice task's)", f"{median(paced):.3f} s", f"{paced_share:.1%}"],
        ["plain sink (baseline, same run)", f"{median(plain):.3f} s", f"{plain_share:.1%}"],
    ])  # fmt: skip
    ratio = plain_share / paced_share if paced_share > 0 else float("inf")
    print(f"figure: a track's end takes {paced_share:.1%} of a core; the baseline {plain_share:.1%} ({ratio:.0f}x)")
    print_reproduce(f".venv/bin/python scripts/bench/track_end_cpu.py --window {args.window} --runs {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
