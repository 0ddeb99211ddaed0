"""The Lambda runtime pin and the bytecode in the packaged zips.

Chalice 1.34 takes the functions' ``Runtime`` from the interpreter that runs ``chalice package``:
there is no config key. So ``scripts/deploy.py`` calls :func:`require_pinned_python` first, which
returns at once on the pinned Python, re-executes the deploy in a virtualenv of it when a
``python3.11`` is on the PATH, and otherwise refuses with the sentence in :data:`REFUSAL`.

After packaging, :func:`compile_zips` rewrites each zip with a ``__pycache__/*.cpython-311.pyc``
beside every ``.py``, compiled by the pinned interpreter with ``--invalidation-mode
unchecked-hash``: Lambda's ``/var/task`` and ``/opt`` are read-only, so without them every cold
start would compile each module from source, and an unchecked-hash ``.pyc`` is used without
reading the source's mtime (zip extraction does not keep it). The voice image does the same at
build (voice_task/Dockerfile).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINNED = (3, 11)
RUNTIME = f"python{PINNED[0]}.{PINNED[1]}"  # the Runtime every packaged function must have
VENV = ROOT / "build" / f"deploy-venv-{RUNTIME}"
REQUIREMENTS = ROOT / "requirements.txt"  # chalice, boto3 and the AWS CLI deploy.py drives
REEXEC_MARKER = "TIMMYBOT_DEPLOY_REEXEC"
REFUSAL = (
    f"the Lambda runtime comes from the Python that packages (Chalice has no setting for it): run deploy.py with "
    f"{RUNTIME}, or put a {RUNTIME} on the PATH so deploy.py can re-run itself in a virtualenv of it"
)
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
# Compiled zips by what they were compiled from (git-ignored); a re-deploy reuses the dependencies' one.
COMPILED_CACHE = ROOT / "build" / "compiled-zips"
CACHE_KEEP = 6  # entries: the three zips of the last two packagings
# Where each zip is unpacked in Lambda, so tracebacks name the real file.
RUN_PREFIX = {"deployment.zip": "/var/task"}
LAYER_PREFIX = "/opt"


class RuntimeRefused(RuntimeError):
    """The deploy is running on another Python and none of the pinned version could be found."""


def on_pinned_python(version: Sequence[int]) -> bool:
    return tuple(version[:2]) == PINNED


def require_pinned_python(argv: Sequence[str], *, script: Path, version: Sequence[int] | None = None) -> None:
    """Return on the pinned Python; else re-execute ``script argv`` in a venv of it (never returns),
    or raise :class:`RuntimeRefused`. ``version`` is this interpreter's unless given."""
    if on_pinned_python(tuple(sys.version_info[:2]) if version is None else version):
        return
    if os.environ.get(REEXEC_MARKER):
        raise RuntimeRefused(f"{REFUSAL} (the re-executed deploy still ran on {sys.version.split()[0]})")
    interpreter = shutil.which(RUNTIME)
    if interpreter is None:
        raise RuntimeRefused(f"{REFUSAL}; this is Python {'.'.join(map(str, version or sys.version_info[:3]))}")
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([interpreter, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True)
    env = dict(os.environ, **{REEXEC_MARKER: "1"})
    os.execve(str(python), [str(python), str(script), *argv], env)


def _prefix_for(zip_name: str) -> str:
    return RUN_PREFIX.get(zip_name, LAYER_PREFIX)


def compile_zip(path: Path, *, python: str = sys.executable, cache: Path | None = None) -> int:
    """Rewrite ``path`` with an unchecked-hash ``.pyc`` for every ``.py`` in it; return how many.

    With ``cache``, a zip compiled before (the same bytes, prefix and interpreter) is copied from
    there instead: the dependencies' zip holds about 1,900 modules, and a re-deploy packages it unchanged.
    """
    if cache is None:
        return _compile(path, python=python)
    hit = cache / f"{_cache_key(path, python)}.zip"
    try:
        shutil.copyfile(hit, path)
    except FileNotFoundError:  # never compiled, or another packaging pruned it just now
        compiled = _compile(path, python=python)
        _remember(path, hit)
        return compiled
    os.utime(hit)  # the newest entries are kept: a reused one counts as new
    with zipfile.ZipFile(path) as archive:
        return sum(name.endswith(".pyc") for name in archive.namelist())


def _cache_key(path: Path, python: str) -> str:
    """What the compiled zip depends on: the zip's bytes, where it unpacks, the interpreter's version
    and this module's own text (a change in how it compiles makes every entry stale)."""
    digest = hashlib.sha256()
    for part in (_interpreter(python).encode(), _prefix_for(path.name).encode(), Path(__file__).read_bytes()):
        digest.update(hashlib.sha256(part).digest())
    with path.open("rb") as source:
        digest.update(hashlib.file_digest(source, "sha256").digest())
    return digest.hexdigest()[:32]


@functools.cache
def _interpreter(python: str) -> str:
    """``python``'s version and bytecode tag, asked once per packaging run."""
    return subprocess.run(
        [python, "-c", "import sys; print(sys.version, sys.implementation.cache_tag)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _remember(compiled: Path, entry: Path) -> None:
    """Keep ``compiled`` as ``entry``, written whole or not at all; only the newest few are kept."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = entry.with_suffix(f".{os.getpid()}.tmp")
    shutil.copyfile(compiled, partial)
    partial.replace(entry)
    kept = sorted(entry.parent.glob("*.zip"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for stale in kept[CACHE_KEEP:]:
        stale.unlink(missing_ok=True)


def _compile(path: Path, *, python: str) -> int:
    with tempfile.TemporaryDirectory(prefix="timmybot-pyc-") as tmp:
        tree = Path(tmp) / "tree"
        with zipfile.ZipFile(path) as archive:
            modes = {info.filename: info.external_attr for info in archive.infolist()}
            archive.extractall(tree)
        subprocess.run(
            [
                python,
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                "-s",
                str(tree),
                "-p",
                _prefix_for(path.name),
                str(tree),
            ],
            check=True,
            env=dict(os.environ, PYTHONHASHSEED="0"),
        )
        compiled = 0
        tmp_zip = path.with_suffix(path.suffix + ".tmp")
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in tree.rglob("*") if p.is_file()):
                name = file.relative_to(tree).as_posix()
                info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
                info.external_attr = modes.get(name, 0o644 << 16)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, file.read_bytes())
                compiled += name.endswith(".pyc")
        tmp_zip.replace(path)
    return compiled


def compile_zips(out: Path, *, python: str = sys.executable, cache: Path | None = COMPILED_CACHE) -> dict[str, int]:
    """Compile every zip ``chalice package`` (and the core layer build) left in ``out``."""
    return {zipped.name: compile_zip(zipped, python=python, cache=cache) for zipped in sorted(out.glob("*.zip"))}
