"""GIVEN the voice benchmark WHEN it runs with --quick THEN it exits 0 and prints every figure line.

A smoke test only: the figures' values are never compared with the BRIEF's targets here (a noisy
machine would make that flaky); the script itself reports them.
"""

from __future__ import annotations

import ctypes.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.bench, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
FIGURE = r"\d+(\.\d+)? ms"
LATENCY = rf"p50 {FIGURE}, p95 {FIGURE}, max {FIGURE}"
CPU = r"\d+\.\d+ s \(median; ffmpeg \d+\.\d+ s \+ python \d+\.\d+ s for \d+\.\d+ s of audio\)"
VERDICT = r"(within|OVER) target"


def test_quick_run_exits_zero_and_prints_every_figure() -> None:
    # WHEN the voice benchmark runs at smoke size, as run_all runs it
    result = subprocess.run(
        [sys.executable, "-m", "scripts.bench.voice", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )

    # THEN it succeeds and prints the header, every figure of the table, and how to reproduce it
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-4000:]
    patterns = [
        r"^machine: \d+ cores, .*python 3\.",
        rf"^CPU / audio min: our copy path \(Opus/WebM, vol 100\)\s+1\s+{CPU}(; \d+\.\d+× common)?$",
        rf"^CPU / audio min: our re-encode, no filter \(MP3, vol 100\)\s+1\s+{CPU}",
        rf"^CPU / audio min: our re-encode \(MP3, vol 50\)\s+1\s+{CPU}",
        rf"^  our re-encode with Nightcore \(MP3, vol 100\)\s+1\s+{CPU}",
        rf"^  our re-encode with Karaoke \(MP3, vol 100\)\s+1\s+{CPU}",
        rf"^  our re-encode with 1\.5× speed \(MP3, vol 100\)\s+1\s+{CPU}",
        rf"^filter change → new sound's first packet \(wake hint\)\s+3\s+{LATENCY}\s+p95 ≤ 250 ms \(the skip "
        rf"budget\)\s+{VERDICT}$",
        r"^note: ours \(re-encode\): .* 128 kbps .* complexity 10, FEC at 5 % expected loss$",
        rf"^cold start → first packet \(python -m voice_task\)\s+1\s+p50 {FIGURE}, max {FIGURE}\s+≤ 5 s\s+{VERDICT}$",
        rf"^/play → first packet, warm task\s+2\s+{LATENCY}\s+≤ 1\.5 s \(p95\)\s+{VERDICT}$",
        rf"^  of which the api's deferred answer \(type 5\)\s+2\s+{LATENCY}$",
        rf"^baseline: store enqueue → first packet, warm task\s+2\s+{LATENCY}$",
        rf"^skip → next track's first packet \(wake hint\)\s+3\s+{LATENCY}\s+p95 ≤ 250 ms\s+{VERDICT}$",
        rf"^  the same, media 150 ms to first byte\s+3\s+{LATENCY}\s+p95 ≤ 250 ms\s+{VERDICT}$",
        rf"^baseline: skip seen at the next poll \(no hint\)\s+3\s+{LATENCY}$",
        rf"^play now, prefetched track \(media 150 ms to first byte\)\s+2\s+{LATENCY}\s+p95 ≤ 250 ms \(the skip "
        rf"budget\)\s+{VERDICT}$",
        rf"^play now, not prefetched \(media 150 ms to first byte\)\s+2\s+{LATENCY}\s+≤ 1\.5 s \(p95, the /play "
        rf"budget\)\s+{VERDICT}$",
        rf"^/skipto 10, not prefetched \(media 150 ms to first byte\)\s+2\s+{LATENCY}\s+≤ 1\.5 s \(p95, the /play "
        rf"budget\)\s+{VERDICT}$",
        rf"^baseline: skip to the prefetched next track, same media\s+2\s+{LATENCY}$",
        rf"^track to track, natural end \(silence beyond the files'\)\s+3\s+{LATENCY}\s+p95 ≤ 60 ms\s+{VERDICT}$",
        rf"^  baseline: the files' own quiet at each change\s+3\s+{LATENCY}$",
        rf"^packet gaps, steady playback \(copy path\)\s+\d+\s+p50 {FIGURE}, p95 {FIGURE}, p99 {FIGURE}, "
        rf"max {FIGURE}, \d+\.\d% within 20±5 ms\s+99% within\s+{VERDICT}$",
        r"^peak RSS \(VmHWM\) of the voice task\s+1\s+\d+\.\d MiB \(RSS now \d+\.\d MiB\)",
        rf"^reconnect gap after 4006 \(silence heard\)\s+2\s+{LATENCY}\s+p95 ≤ 1 s\s+{VERDICT}$",
        rf"^reconnect gap after 4015 \(silence heard\)\s+2\s+{LATENCY}\s+p95 ≤ 1 s\s+{VERDICT}$",
        rf"^reconnect gap after op 31 \(silence heard\)\s+2\s+{LATENCY}\s+p95 ≤ 10 s\s+{VERDICT}$",
        r"^note: reconnect baseline: the longest packet gap in 1 s of steady playback before the faults was ",
        r"^reproduce with: \.venv/bin/python -m scripts\.bench\.voice --plays 2 --skips 3 --changes 3 --cold 1 "
        r"--gap-seconds 5 --cpu-runs 1 --faults 2 --controls 2 --filter-changes 3 --bitrate 128\s+or\s+"
        r"python3 scripts/dev\.py bench --quick$",
    ]
    if ctypes.util.find_library("opus"):
        patterns += [
            rf"^CPU / audio min: common pipeline \(baseline, vol 50\)\s+1\s+{CPU}$",
            rf"^ratio copy / common\s+\d+\.\d+\s+≤ 0\.25\s+{VERDICT}$",
            rf"^ratio re-encode \(no filter\) / common\s+\d+\.\d+\s+≤ 0\.8\s+{VERDICT}$",
            r"^ratio re-encode \(vol 50\) / common \(vol 50\)\s+\d+\.\d+\s+\(none\)$",
            r"^quality: decoded error vs source \(chord \+ harmonics \+ noise\)\s+1 each\s+ours -?\d+\.\d+ dB, "
            rf"common -?\d+\.\d+ dB \(ours [-+]\d+\.\d+ dB\)\s+ours ≤ common \+ 1 dB\s+{VERDICT}$",
            r"^note: common: .* 128 kbps, 20 ms frames, application audio, complexity \d+ .* FEC at 15% expected loss",
        ]
    else:  # without root the script cannot install libopus0: it says so instead of failing
        patterns += [
            r"^note: the common pipeline is unavailable: ",
            r"^CPU / audio min: common pipeline \(baseline, vol 50\)\s+-\s+unavailable: ",
        ]
    for pattern in patterns:
        assert re.search(pattern, out, re.MULTILINE), f"no line matching {pattern!r} in:\n{out}"
    # AND nothing else was left unmeasured
    assert "FAIL" not in out, out
