"""``python -m voice_task --self-check`` in the test venv: every check reported, the missing ones named."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "ffmpeg",
    "ffmpeg filters",
    "libopus",
    "davey",
    "PyNaCl",
    "discord.py",
    "yt-dlp",
    "javascript runtime",
    "settings",
)

pytestmark = pytest.mark.timeout(120)


def _self_check(env_updates: dict[str, str], *, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMMYBOT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "core" / "python"), str(ROOT)])
    if path is not None:
        env["PATH"] = path
    env.update(env_updates)
    return subprocess.run(
        [sys.executable, "-m", "voice_task", "--self-check"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )


def test_self_check_reports_every_dependency_and_passes_when_all_are_present(tmp_path: Path) -> None:
    result = _self_check({"TIMMYBOT_DISCORD_BOT_TOKEN": "t", "TIMMYBOT_SQLITE_PATH": str(tmp_path / "db.sqlite3")})
    lines = result.stdout.splitlines()

    for check in CHECKS:
        assert any(line.split(":")[0].split(maxsplit=1)[-1] == check for line in lines), (check, result.stdout)
    missing = {line.split(":")[0].split(maxsplit=1)[-1] for line in lines if line.startswith("MISSING")}
    expected_missing = set()
    if ctypes.util.find_library("opus") is None:
        expected_missing.add("libopus")
    if not (shutil.which("deno") or shutil.which("node")):
        expected_missing.add("javascript runtime")
    assert missing == expected_missing, result.stdout
    assert (result.returncode == 0) == (not expected_missing)


def test_self_check_names_missing_settings_and_a_missing_javascript_runtime(tmp_path: Path) -> None:
    bare_path = tmp_path / "bin"
    bare_path.mkdir()  # a PATH with no node, deno or ffmpeg on it

    result = _self_check({}, path=str(bare_path))

    assert result.returncode != 0
    assert "MISSING settings: settings missing: TIMMYBOT_DISCORD_BOT_TOKEN" in result.stdout
    assert "MISSING javascript runtime" in result.stdout
    assert "self-check failed" in result.stderr


def test_self_check_names_the_audio_filters_an_ffmpeg_lacks(tmp_path: Path) -> None:
    # GIVEN the real ffmpeg, behind a wrapper whose -filters listing leaves out apulsator (8D)
    from voice_task.audio import ffmpeg_executable  # noqa: PLC0415

    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(f'#!/bin/sh\n"{ffmpeg_executable()}" "$@" | grep -v " apulsator "\n')
    wrapper.chmod(0o755)

    # WHEN the self-check runs with it
    result = _self_check({"TIMMYBOT_DISCORD_BOT_TOKEN": "t", "TIMMYBOT_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
                          "TIMMYBOT_FFMPEG_PATH": str(wrapper)})  # fmt: skip

    # THEN it names the missing filter and fails
    assert "MISSING ffmpeg filters:" in result.stdout and "lacks the audio filters apulsator" in result.stdout
    assert "ok      ffmpeg:" in result.stdout  # the encoder check still passes
    assert result.returncode != 0
