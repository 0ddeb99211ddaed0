#!/usr/bin/env python3
"""The two newcomer commands, with nothing but Python 3.11+ installed.

    python3 scripts/dev.py run     # venv + install, then the bot locally (SQLite, local launcher, demo)
    python3 scripts/dev.py test    # venv + install (dev set), then the test suite and the long-track fault tests

Each creates ``.venv`` next to the repository (or reuses it while the requirement files are
unchanged: a stamp holds their hash) and re-runs the real work inside it. Stdlib only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements-dev.txt"
STAMP = VENV / ".timmybot-requirements.sha256"


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _requirements_hash() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "requirements.txt", REQUIREMENTS):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> Path:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script must explain itself on an older Python
        sys.exit(f"TimmyBot needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    wanted = _requirements_hash()
    if not _python().exists():
        print("Creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        print("Installing requirements into .venv (first run takes a minute or two) …", flush=True)
        subprocess.run(
            [str(_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS)],
            check=True,
            cwd=ROOT,
        )
        STAMP.write_text(wanted)
    return _python()


# The project's own code, compiled once before the tests (into the git-ignored __pycache__ folders).
SOURCES = ("layers/core/python", "chalice_app", "voice_task", "scripts", "tests")


def _bytecode_env(python: str) -> dict[str, str]:
    """The tests' environment, with bytecode caching on even where PYTHONDONTWRITEBYTECODE is set.

    Without it every xdist worker, and every Python subprocess a test starts (the voice task, the
    deploy script, the packaged handlers' checks), compiles each module it imports from source
    again, and pytest rewrites every test module again for each worker: seconds of CPU per process
    on a 2-core machine. The project's modules are compiled here once; pytest caches its rewrites."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", *SOURCES], cwd=ROOT, env=env, check=False,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return env


def _test(python: str, rest: list[str]) -> int:
    """The suite, then the long-track fault tests, then the benchmark scripts' quick runs (each
    pytest run must pass; the benchmarks' smoke runs take minutes, so they are kept out of the suite).

    pytest exits 5 when it collects nothing: that fails loudly, so no special casing here. The suite
    runs on five workers, one test file each at a time: the end-to-end tests mostly wait on audio
    played in real time and on subprocesses, so at two workers a 2-core machine is busy about half
    the time, and at four still only about three quarters; five keep both cores nearly busy (`-n 0`
    runs serially). The long
    tests (a 90 s track each, one guild each) mostly wait, so they run three at once. Arguments go
    to one pytest run instead (e.g. `test tests/unit -n 0`, or `test -m long`).
    """
    pytest = [python, "-m", "pytest"]
    env = _bytecode_env(python)
    if rest:
        return subprocess.call([*pytest, *rest], cwd=ROOT, env=env)
    steps = [
        ("suite", [*pytest, "-n", "5", "--dist", "loadfile", "-m", "not long and not bench"]),
        ("long-track fault tests", [*pytest, "-n", "3", "-m", "long"]),
        ("benchmark smoke runs", [*pytest, "-n", "2", "-m", "bench"]),
    ]
    for name, cmd in steps:
        started = time.monotonic()
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        print(f"== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            return code
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "lint", "bench"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    python = str(ensure_venv())
    if command == "test":
        return _test(python, rest)
    if command == "lint":
        first = subprocess.call([python, "-m", "ruff", "check", "."], cwd=ROOT)
        second = subprocess.call([python, "-m", "mypy", "layers/core/python/timmybot"], cwd=ROOT)
        return first or second
    if command == "bench":
        return subprocess.call([python, str(ROOT / "scripts" / "bench" / "run_all.py"), *rest], cwd=ROOT)
    return subprocess.call([python, str(ROOT / "scripts" / "run_local.py"), *rest], cwd=ROOT)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
