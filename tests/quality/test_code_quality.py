"""The tree stays ruff-clean and ruff-formatted, and the core package, the voice task and the Chalice app
type-check under mypy --strict (STYLE.md)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_finds_nothing_in_the_tree() -> None:
    result = _run("ruff", "check", ".")

    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_format_would_change_nothing() -> None:
    result = _run("ruff", "format", "--check", ".")

    assert result.returncode == 0, result.stdout[-4000:]


def test_the_core_package_the_voice_task_and_the_chalice_app_are_checked_strictly() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    strict: set[str] = set()
    for override in config.get("overrides", []):
        modules = override["module"]
        if override.get("strict"):
            strict.update([modules] if isinstance(modules, str) else modules)

    assert {"timmybot.*", "voice_task.*", "chalicelib.*", "app"} <= strict


def test_mypy_is_clean_strict_on_the_core_package_and_on_the_voice_task_and_chalice_app() -> None:
    result = _run("mypy", "layers/core/python/timmybot", "voice_task", "chalice_app/app.py", "chalice_app/chalicelib")

    assert result.returncode == 0, result.stdout[-4000:]
    assert "Success" in result.stdout
