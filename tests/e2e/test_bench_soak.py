"""The chaos soak runs end to end at a small size: it prints every figure and passes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.long, pytest.mark.timeout(240)]


def test_a_one_minute_soak_prints_its_figures_and_exits_zero() -> None:
    # WHEN the soak runs for a minute with a fixed fault schedule
    result = subprocess.run(
        [sys.executable, "-m", "scripts.bench.soak", "--minutes", "1", "--seed", "7"],
        cwd=ROOT, capture_output=True, text=True, timeout=220, check=False,
    )  # fmt: skip

    # THEN no track was lost or heard twice, nothing crashed, and each figure is there
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    for pattern in (
        r"^audio outside fault windows\s+\d+\s+\d+\.\d+ %\s+≥ 97 %",
        r"^tracks heard in queue order\s+\d+\s+0 lost, 0 heard twice\s+0 and 0\s+within target$",
        r"^crashes\s+0\s+0\s+within target$",
        r"^lease generations seen\s+\d+\s+\d",
        r"^  longest silence after \S+\s+\d+\s+max \d+ ms",
        r"^reproduce with: \.venv/bin/python -m scripts\.bench\.soak --minutes 1 --seed 7$",
    ):
        assert re.search(pattern, out, re.MULTILINE), f"no line matching {pattern!r} in:\n{out}"
    assert int(re.search(r"^tracks heard in queue order\s+(\d+)", out, re.MULTILINE).group(1)) >= 10  # type: ignore[union-attr]
