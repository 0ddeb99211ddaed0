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


PRODUCTION = (ROOT / "layers" / "core" / "python" / "timmybot", ROOT / "voice_task", ROOT / "chalice_app")
MODULE_LINES_MAX = 500


def test_no_production_module_is_over_500_lines() -> None:
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
        for package in PRODUCTION
        for path in package.rglob("*.py")
    }
    assert len(sizes) > 100  # the whole tree was walked
    assert {name: lines for name, lines in sizes.items() if lines > MODULE_LINES_MAX} == {}


def test_the_core_is_grouped_into_packages_that_say_what_they_are() -> None:
    core = ROOT / "layers" / "core" / "python" / "timmybot"
    for package, modules in {
        "accounts": ("linked", "records", "spotify_link", "keyfile"),
        "accounts/oauth": ("google", "spotify", "link_key"),
        "accounts/vault": ("base", "local", "kms", "secretsmanager"),
        "library": ("personal", "spotify", "spotify_links", "youtube_data", "paging"),
        "worker": ("jobs", "play", "personal_jobs", "search"),
        "discord": ("rest", "types", "ui", "custom_ids", "permissions"),
    }.items():
        assert sorted(m for m in modules if not (core / package / f"{m}.py").is_file()) == [], package
    flat = sorted(p.stem for p in core.glob("*.py") if p.stem != "__init__")
    assert not {"accounts", "oauth", "vault", "personal", "spotify", "play", "jobs", "ui", "custom_ids"} & set(flat)
