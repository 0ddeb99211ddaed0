"""The local launcher: what the child gets, where its output goes, and failures that free the lease."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from timmybot.config import Settings
from timmybot.launcher import LaunchOutcome, build_launcher
from timmybot.launcher.base import START_FAILED_TEXT
from timmybot.launcher.local import CORE_PYTHON, REPO_ROOT, LocalLauncher, settings_environment
from timmybot.models import LeaseState
from timmybot.store import SQLiteStore, Store

GUILD = "123456789012345678"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    sqlite_store = SQLiteStore(tmp_path / "timmybot.sqlite3")
    yield sqlite_store
    sqlite_store.close()


def local(store: Store, tmp_path: Path, command: tuple[str, ...], **overrides: Any) -> LocalLauncher:
    settings = Settings(
        launcher="local",
        voice_task_command=command,
        sqlite_path=str(tmp_path / "timmybot.sqlite3"),
        data_dir=str(tmp_path),
        **overrides,
    )
    launcher = build_launcher(settings, store)
    assert isinstance(launcher, LocalLauncher)
    return launcher


def test_default_command_is_python_m_voice_task() -> None:
    assert Settings().voice_task_command == (sys.executable, "-m", "voice_task")


def test_child_environment_carries_guild_generation_settings_and_pythonpath(store: Store, tmp_path: Path) -> None:
    launcher = local(store, tmp_path, (sys.executable, "-c", "pass"), discord_api_base="https://127.0.0.1:1/api/v10")
    env = launcher.child_environment(GUILD, 4)
    assert env["TIMMYBOT_GUILD_ID"] == GUILD
    assert env["TIMMYBOT_LEASE_GENERATION"] == "4"
    assert env["TIMMYBOT_DISCORD_API_BASE"] == "https://127.0.0.1:1/api/v10"
    assert env["PYTHONPATH"].split(":")[:2] == [str(CORE_PYTHON), str(REPO_ROOT)]
    # AND the settings read back from that environment equal the launcher's own
    child = Settings.from_env({k: v for k, v in env.items() if k.startswith("TIMMYBOT_")})
    assert child.sqlite_path == str(tmp_path / "timmybot.sqlite3")
    assert child.discord_api_base == "https://127.0.0.1:1/api/v10"


def test_relative_paths_become_absolute_for_the_child(tmp_path: Path) -> None:
    env = settings_environment(Settings(sqlite_path="db/t.sqlite3", data_dir="data"), cwd=tmp_path)
    assert env["TIMMYBOT_SQLITE_PATH"] == str(tmp_path / "db/t.sqlite3")
    assert env["TIMMYBOT_DATA_DIR"] == str(tmp_path / "data")


def test_child_output_goes_to_a_log_file_per_guild(store: Store, tmp_path: Path) -> None:
    script = "import os; print('hello from', os.environ['TIMMYBOT_GUILD_ID'])"
    launcher = local(store, tmp_path, (sys.executable, "-c", script), voice_task_log_dir=str(tmp_path / "logs"))
    assert launcher.ensure_running(GUILD).outcome is LaunchOutcome.STARTED
    assert launcher.wait_children(timeout=30)
    assert (tmp_path / "logs" / f"voice_task-{GUILD}.log").read_text() == f"hello from {GUILD}\n"


def test_a_command_that_cannot_run_frees_the_lease(store: Store, tmp_path: Path) -> None:
    launcher = local(store, tmp_path, (str(tmp_path / "no-such-binary"),))
    result = launcher.ensure_running(GUILD)
    assert (result.outcome, result.message) == (LaunchOutcome.FAILED, START_FAILED_TEXT)
    assert store.get_guild(GUILD).lease.state is LeaseState.RELEASED
    assert launcher.launched == 0


def test_is_alive_tracks_the_child_and_the_child_is_reaped(store: Store, tmp_path: Path) -> None:
    launcher = local(store, tmp_path, (sys.executable, "-c", "import time; time.sleep(0.5)"))
    result = launcher.ensure_running(GUILD)
    assert result.holder is not None and result.holder.startswith("pid:")
    assert launcher.is_alive(result.holder) is True
    assert launcher.wait_children(timeout=30)
    deadline = time.monotonic() + 5
    while launcher.is_alive(result.holder) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert launcher.is_alive(result.holder) is False
    assert launcher.is_alive("pid:1") is None  # not our child
    assert launcher.is_alive("arn:aws:ecs:us-east-1:1:task/x") is None
