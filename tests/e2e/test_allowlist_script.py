"""GIVEN a copy of the allowlist file WHEN scripts/allowlist.py edits it THEN ids change and comments stay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import allowlist

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "allowlist.py"
GUILD_A = "123456789012345678"
GUILD_B = "98765432109876543"


@pytest.fixture
def listfile(tmp_path: Path) -> Path:
    copy = tmp_path / "allowlist.txt"
    copy.write_text(allowlist.DEFAULT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    return copy


def _run(listfile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--file", str(listfile), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_add_list_remove_round_trip_keeps_the_comments(listfile: Path) -> None:
    comments = [line for line in listfile.read_text().splitlines() if line.startswith("#")]
    assert _run(listfile, "add", GUILD_A, "--comment", "Timmy's server").returncode == 0
    assert _run(listfile, "add", GUILD_B).returncode == 0
    listed = _run(listfile, "list")
    assert listed.returncode == 0
    assert listed.stdout.split() == [GUILD_A, GUILD_B]
    assert f"{GUILD_A}  # Timmy's server" in listfile.read_text()

    assert _run(listfile, "remove", GUILD_A).returncode == 0
    assert _run(listfile, "list").stdout.split() == [GUILD_B]
    assert [line for line in listfile.read_text().splitlines() if line.startswith("#")] == comments


def test_adding_twice_keeps_one_line(listfile: Path) -> None:
    _run(listfile, "add", GUILD_A)
    second = _run(listfile, "add", GUILD_A)
    assert second.returncode == 0
    assert "already on the list" in second.stdout
    assert allowlist.parse(listfile.read_text()) == [GUILD_A]


def test_removing_an_unlisted_id_says_so_and_exits_1(listfile: Path) -> None:
    before = listfile.read_text()
    result = _run(listfile, "remove", GUILD_A)
    assert result.returncode == 1
    assert "not on the list" in result.stderr
    assert listfile.read_text() == before


@pytest.mark.parametrize(
    "value",
    ["12", "abc", "-123456789012345678", "0123456789012345678", "1" * 25, "12345678901234567a", "99999999999999999999"],
)
def test_non_snowflakes_are_rejected_with_exit_2_and_the_file_untouched(listfile: Path, value: str) -> None:
    before = listfile.read_text()
    for action in ("add", "remove"):
        result = _run(listfile, action, value)
        assert result.returncode == 2
        assert "not a Discord guild id" in result.stderr
    assert listfile.read_text() == before


def test_a_comment_cannot_smuggle_in_another_line(listfile: Path) -> None:
    _run(listfile, "add", GUILD_A, "--comment", f"note\n{GUILD_B}")
    assert allowlist.parse(listfile.read_text()) == [GUILD_A]


def test_the_shipped_allowlist_parses() -> None:
    ids = allowlist.parse(allowlist.DEFAULT_FILE.read_text(encoding="utf-8"))
    assert all(len(i) >= 17 for i in ids)
