"""The app packaged once per test run, as scripts/deploy.py packages it, for every test that reads the zips.

``chalice package`` with the infra template and the core layer takes several seconds; the stack, bytecode
and vault tests read the same output, so the first of them to ask packages it and the others (in this
process or another xdist worker of the same run) wait for it and reuse it. The output is only read.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from scripts import deploy

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "chalice_app"

REAPER_STUB = """

# --- added by tests/support/packaged.py: app.py has no reaper yet ---
@app.schedule("rate(1 minute)", name="reaper")
def reaper(event: object) -> None:
    return None
"""


def _app_copy(tmp: Path) -> Path:
    """A copy of chalice_app to package; Chalice's dependency cache is shared with the real one."""
    copy = tmp / "chalice_app"
    shutil.copytree(APP_DIR, copy, ignore=shutil.ignore_patterns("deployments", "__pycache__", ".mypy_cache"))
    cache = APP_DIR / ".chalice" / "deployments"
    cache.mkdir(parents=True, exist_ok=True)
    (copy / ".chalice" / "deployments").symlink_to(cache, target_is_directory=True)
    app_py = copy / "app.py"
    text = app_py.read_text()
    if not re.search(r"""name\s*=\s*["']reaper["']|def reaper\s*\(""", text):
        app_py.write_text(text + REAPER_STUB)
    return copy


def packaged_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory ``deploy.chalice_package("dev", …)`` wrote (sam.yaml, deployment.zip, the layers),
    built at most once per run: xdist workers share their run's base temp directory and a lock in it."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # …/pytest-N/popen-gwK → …/pytest-N, the same for every worker of the run
    root = base / "packaged-once"
    root.mkdir(exist_ok=True)
    out, done = root / "out", root / "done"
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            shutil.rmtree(out, ignore_errors=True)
            work = root / "work"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            deploy.chalice_package("dev", out, app_dir=_app_copy(work))
            done.write_text("packaged\n")
    return out


def unpack(out: Path, into: Path, zips: Iterable[str]) -> Path:
    """Each of ``zips`` (names in the packaged directory ``out``) unpacked into ``into``, as Lambda
    unpacks a function's code into /var/task and its layers into /opt."""
    for name in zips:
        with zipfile.ZipFile(out / name) as archive:
            archive.extractall(into)
    return into


def make_read_only(root: Path) -> None:
    """Take away every write bit under ``root``, as Lambda's /var/task and /opt have none."""
    for path in (*root.rglob("*"), root):
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def remove_tree(root: Path) -> None:
    """Delete a tree a module's tests made (read-only or not; symlinks in it are not followed) when
    they are done. The deps layer unpacked is some 6,000 files. Left behind, they would be deleted
    by pytest, which keeps the last three runs' temporary directories and deletes older ones as a
    session ends: in one process, after the last test, with nothing left to overlap with."""
    if not root.exists():
        return
    for directory in (root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())):
        directory.chmod(directory.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
    shutil.rmtree(root)
