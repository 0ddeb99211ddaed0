"""checkov on infra/ and hadolint on the voice Dockerfile, both from the tools venv.

GIVEN the linters pinned in requirements-tools.txt (installed into .venv-tools by scripts/infra_tools.py)
THEN checkov reports no failed check on infra/ (each accepted risk is an inline skip with its reason)
AND hadolint reports nothing on voice_task/Dockerfile.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from scripts import infra_tools

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_checkov_finds_no_failed_check_in_infra() -> None:
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_NO_OUTPUT_OF_GUIDELINES="TRUE")
    result = subprocess.run(
        [
            str(infra_tools.tool("checkov")),
            "--directory",
            str(ROOT / "infra"),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert failed == [], [(c["check_id"], c["resource"]) for c in failed]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 50, "checkov scanned almost nothing: did it parse infra/template.yaml?"


def test_every_checkov_skip_gives_a_reason() -> None:
    text = (ROOT / "infra" / "template.yaml").read_text()
    skips = re.findall(r"#\s*checkov:skip=([A-Z0-9_]+)(:?)(.*)", text)
    assert skips, "expected the documented skips"
    for check, colon, reason in skips:
        assert colon == ":" and len(reason.strip()) > 20, f"{check} is skipped without a written reason"


def test_hadolint_is_clean_on_the_voice_dockerfile() -> None:
    result = subprocess.run(
        [str(infra_tools.tool("hadolint")), str(ROOT / "voice_task" / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_voice_image_copies_the_one_core_package_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "voice_task" / "Dockerfile").read_text()
    assert "COPY layers/core/python/timmybot /app/timmybot" in dockerfile
    assert re.search(r"^USER 10001", dockerfile, re.MULTILINE)
    assert "ffmpeg" in dockerfile and "libopus0" in dockerfile
    requirements = (ROOT / "voice_task" / "requirements.txt").read_text()
    for pin in ("discord.py[voice]==2.7.1", "davey==0.1.7", "yt-dlp-ejs==", "deno=="):
        assert pin in requirements
    pins = [line for line in requirements.splitlines() if line.strip() and not line.startswith("#")]
    assert not [line for line in pins if line.startswith("imageio-ffmpeg")]
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[1:4] == ["*", "!voice_task/", "!layers/core/python/timmybot/"]
