"""Helpers shared by the benchmark scripts: statistics, the machine header, child processes.

Benchmarks print figures; they never decide pass/fail on timings. Where a script compares with a
BRIEF §7 target it says "within" or "over", and still exits 0.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHALICE_APP = ROOT / "chalice_app"
CORE_LAYER = ROOT / "layers" / "core" / "python"
RESULT_MARKER = "BENCH_RESULT "

# Never a real account: children and in-process clients only ever talk to loopback moto.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def add_source_paths() -> None:
    """Make ``app``, ``chalicelib``, ``timmybot`` and ``tests.support`` importable in this process."""
    for path in (ROOT, CORE_LAYER, CHALICE_APP):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a benchmark child: the api's import path, fake AWS credentials, no settings
    inherited from the developer's shell (``TIMMYBOT_*``, ``AWS_PROFILE``) and no Lambda marker."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TIMMYBOT_") and key not in ("AWS_PROFILE", "AWS_LAMBDA_FUNCTION_NAME", "PYTHONPATH")
    }
    env.update(FAKE_AWS_ENV)
    env["PYTHONPATH"] = os.pathsep.join((str(CHALICE_APP), str(CORE_LAYER)))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # children must not race each other writing .pyc files
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class ChildRun:
    """One fresh interpreter: what it reported, and what the parent saw."""

    result: dict[str, Any]
    spawned_at: float  # time.time() just before the parent started the process
    wall_s: float  # parent's perf_counter around the whole process (start-up to exit)

    @property
    def startup_s(self) -> float:
        """Interpreter start-up until the child's first line (the child reports ``top_time``)."""
        return max(0.0, float(self.result["top_time"]) - self.spawned_at)


def run_child(code: str, env: Mapping[str, str], *, timeout_s: float = 120.0) -> ChildRun:
    """Run ``python -c code``; the child prints one ``BENCH_RESULT {json}`` line on stdout."""
    spawned_at = time.time()
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    wall_s = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return ChildRun(json.loads(line[len(RESULT_MARKER) :]), spawned_at, wall_s)
    raise RuntimeError(f"benchmark child printed no result line:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0–100): a value that was actually observed."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> str:
    """Milliseconds, with two decimals below 10 ms (sub-millisecond figures stay readable)."""
    value = seconds * 1000
    return f"{value:.2f} ms" if abs(value) < 10 else f"{value:.1f} ms"


def verdict(value: float, target: float) -> str:
    """A label for a figure against a BRIEF §7 ceiling (a report, never an assertion)."""
    return "within target" if value <= target else "OVER target"


def print_header(title: str, sizes: str) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"== {title} ==")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}; "
        f"python {platform.python_version()} ({platform.python_implementation()}); load avg {load}"
    )
    print(f"sizes: {sizes}")


def print_reproduce(*commands: str) -> None:
    print("reproduce with: " + "  or  ".join(commands))


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows as left-aligned columns (the first row is the header; short rows are padded)."""
    rows = [list(row) + [""] * (len(rows[0]) - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
