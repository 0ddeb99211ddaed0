"""GIVEN the benchmark scripts WHEN each runs with --quick THEN it exits 0 and prints its figure lines.

Smoke tests only: the figures' values are never compared with the BRIEF's targets here (a noisy
machine would make that flaky); the scripts themselves report them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.bench, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench"
FIGURE = r"-?\d+(\.\d+)? ms"


def _run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _assert_lines(output: str, patterns: list[str]) -> None:
    for pattern in patterns:
        assert re.search(pattern, output, re.MULTILINE), f"no line matching {pattern!r} in:\n{output}"


def _assert_quick_run_prints(script: str, patterns: list[str], *, timeout: float) -> None:
    """``script --quick`` exits 0 and prints a line matching each of ``patterns``."""
    result = _run(script, "--quick", timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_lines(result.stdout, patterns)


def test_cold_import_prints_both_medians_the_ratio_and_the_fast_path_guard() -> None:
    # WHEN the cold-import benchmark runs at smoke size
    result = _run("cold_import.py", "--quick")

    # THEN it succeeds (nothing forbidden was imported) and prints every figure and how to reproduce it
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_lines(
        result.stdout,
        [
            r"^machine: \d+ cores, .*python 3\.",
            rf"^import app\s+{FIGURE}",
            rf"^import boto3\s+{FIGURE}",
            r"^ratio of medians \(import app / import boto3\): \d+\.\d+ \(target ≤ 1\.3",
            r"^modules after `import app`: yt_dlp=no, discord=no, spotipy=no, boto3=(yes|no), nacl=(yes|no), "
            r"aws_lambda_powertools=(yes|no)$",
            r"^fast-path guard: none of yt_dlp, discord, spotipy imported$",
            r"^modules after the /play autocomplete path: yt_dlp=no, discord=no, spotipy=no$",
            r"^reproduce with: .*scripts/bench/cold_import\.py --runs 3",
        ],
    )


def test_first_response_prints_cold_rows_warm_percentiles_and_baselines() -> None:
    # WHEN the first-response benchmark runs at smoke size
    result = _run("first_response.py", "--quick")

    # THEN it succeeds and prints a cold row per backend and the baseline, warm p50/p99 per command
    # for SQLite and for moto, the per-request baseline, the queue-length rows, and how to reproduce it
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    cold_row = rf"(\s+{FIGURE}){{5}}\s+{FIGURE}$"
    warm_row = rf"\s+{FIGURE}\s+{FIGURE}\s+{FIGURE}"
    _assert_lines(
        out,
        [
            r"^machine: \d+ cores",
            rf"^SQLite \(temp file\){cold_row}",
            rf"^DynamoDB \(moto server, loopback\){cold_row}",
            rf"^baseline: import boto3 \+ boto3\.client\('dynamodb'\)(\s+{FIGURE}){{3}}\s+-(\s+{FIGURE}){{2}}$",
            r"^modules after the first /queue: yt_dlp=no, discord=no, spotipy=no",
            r"^reproduce with: .*first_response\.py --cold-runs 1 --requests 50 --moto-requests 20",
        ],
    )
    warm_sqlite, warm_moto = out.split("\nwarm, ")[1:3]
    for name in ("queue", "skip", "nowplaying"):
        _assert_lines(warm_sqlite, [rf"^/{name} \(50\){warm_row}\s+{FIGURE}\s+(within|OVER) target$"])
        _assert_lines(warm_moto, [rf"^/{name} \(20\){warm_row}\s+{FIGURE}$"])
    for section in (warm_sqlite, warm_moto):
        _assert_lines(section, [rf"^baseline: verify \+ json\.loads{warm_row}$"])
    # AND /queue at 5 and at 500 entries, on SQLite and on moto, each with its p99 ratio and baseline
    lengths_sqlite, lengths_moto = out.split("\nqueue length: ")[1:3]
    assert lengths_sqlite.startswith("signed /queue at 5 and at 500 entries, SQLite")
    assert lengths_moto.startswith("signed /queue at 5 and at 500 entries, DynamoDB on moto")
    for section, count in ((lengths_sqlite, 50), (lengths_moto, 20)):
        _assert_lines(
            section,
            [
                rf"^/queue, 5 entries \({count}\){warm_row}\s+{FIGURE}$",
                rf"^/queue, 500 entries \({count}\){warm_row}\s+{FIGURE}$",
                rf"^baseline: verify \+ json\.loads{warm_row}$",
                r"^ratio of p99 \(500 entries / 5 entries\): \d+\.\d+ \(target ≤ 1\.5: (within|OVER) target\)$",
            ],
        )


def test_run_all_runs_the_listed_scripts_and_summarises_each() -> None:
    # WHEN the quick benchmarks run (the voice script has its own smoke test: skip it here)
    result = _run("run_all.py", "--quick", "--only", "cold_import,first_response,packet_gaps", timeout=170)

    # THEN each selected script is summarised with its exit code, and the others are named as skipped
    out = result.stdout
    _assert_lines(out, [r"^cold_import: exit 0 after", r"^first_response: exit 0 after", r"^##### summary$"])
    present = (BENCH / "packet_gaps.py").exists()
    _assert_lines(out, [r"^packet_gaps: exit \d+ after" if present else r"^packet_gaps: not present, skipped$"])
    _assert_lines(out, [r"^voice: not selected \(--only\)$"])
    # AND its exit code is 0 exactly when no script failed
    failed = re.findall(r"^\w+: exit [1-9]\d* after", out, re.MULTILINE)
    assert (result.returncode == 0) == (not failed), out + result.stderr


@pytest.mark.timeout(420)  # packages the zips and compiles a bytecode tree: about 3 minutes on 2 busy cores
def test_cold_cpu_prints_the_quota_rows_beside_their_unconstrained_baselines() -> None:
    """Issue 16, Build 9: the voice task at 0.25 vCPU and the api from its zips at 512 and 1024 MB."""
    _assert_quick_run_prints(
        "cold_cpu.py",
        [
            rf"^unconstrained +no \.pyc \(before\) +{FIGURE}",
            rf"^Fargate 0\.25 vCPU.* +\.pyc \(image now\) +{FIGURE} +{FIGURE} +\d+\.\d\d s +(within|OVER)$",
            rf"^unconstrained +zips with \.pyc \(now\) +{FIGURE}",
            rf"^Lambda 512 MB.* +zips with \.pyc \(now\) +({FIGURE} +){{4}}\d+\.\d\d s +(within|OVER)$",
            rf"^Lambda 1024 MB.* +zips without \.pyc \(before\) +{FIGURE}",
            r"^  - (Fargate 0\.25 vCPU: cgroup v[12]|.*FALLBACK taskset)",
            r"JavaScript challenges",
            r"^reproduce with: .*scripts/bench/cold_cpu\.py --voice-runs 1 --lambda-runs 1",
        ],
        timeout=400,
    )


def test_store_rates_prints_the_voice_tasks_calls_per_hour_and_the_record_size() -> None:
    """Issue 16, Build 10: the DynamoDB figures docs/COSTS.md uses."""
    _assert_quick_run_prints(
        "store_rates.py",
        [
            r"^GetItem \((?:eventual|strong)\) +\d+ +[\d,]+$",
            r"^reads [\d,]+ an hour: [\d,]+ strongly consistent, [\d,]+ eventually consistent "
            r"\(baseline from the settings: 1,800 polls, one per PLAYING_POLL_MAX_S = 2 s mid-track\)$",
            r"^guild record: ≈ [\d,]+ bytes → \d read unit\(s\)",
            r"^reproduce with: .*scripts/bench/store_rates\.py --seconds 10",
        ],
        timeout=150,
    )


def test_track_end_cpu_prints_the_voice_tasks_figure_beside_the_unpaced_baseline() -> None:
    _assert_quick_run_prints(
        "track_end_cpu.py",
        [
            r"^StderrTail \(the voice task's\) +\d+\.\d{3} s +\d+\.\d%$",
            r"^plain sink \(baseline, same run\) +\d+\.\d{3} s +\d+\.\d%$",
            r"^figure: a track's end takes \d+\.\d% of a core; the baseline \d+\.\d% \((\d+|inf)x\)$",
            r"^reproduce with: .*scripts/bench/track_end_cpu\.py --window 0\.5 --runs 1",
        ],
        timeout=120,
    )
