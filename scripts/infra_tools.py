#!/usr/bin/env python3
"""The infrastructure linters (cfn-lint, checkov, hadolint) in their own venv, ``.venv-tools``.

    python3 scripts/infra_tools.py ensure          # create or refresh .venv-tools, print its bin dir
    python3 scripts/infra_tools.py run cfn-lint -- template.yaml

checkov pulls in dozens of packages whose pins would fight the runtime's, so the linters never
share ``.venv``. The venv is reused while ``requirements-tools.txt`` is unchanged (a stamp holds
its hash, as scripts/dev.py does for ``.venv``). Stdlib only, so tests can import it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_VENV = Path(os.environ.get("TIMMYBOT_TOOLS_VENV", ROOT / ".venv-tools"))
REQUIREMENTS = ROOT / "requirements-tools.txt"
STAMP_NAME = ".timmybot-tools.sha256"
TOOLS = ("cfn-lint", "checkov", "hadolint")


def bin_dir(root: Path = TOOLS_VENV) -> Path:
    return root / ("Scripts" if os.name == "nt" else "bin")


def requirements_hash() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure(root: Path = TOOLS_VENV, *, quiet: bool = True) -> Path:
    """Create (or refresh) the tools venv; return its bin directory. Idempotent and cached."""
    stamp = root / STAMP_NAME
    wanted = requirements_hash()
    python = bin_dir(root) / ("python.exe" if os.name == "nt" else "python")
    if stamp.exists() and stamp.read_text().strip() == wanted and python.exists():
        return bin_dir(root)
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(root)
        # The venv ignores itself, so git never sees it (no shared .gitignore edit needed).
        (root / ".gitignore").write_text("*\n")
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(REQUIREMENTS)]
    if quiet:
        command.insert(4, "-q")
    result = subprocess.run(command, cwd=ROOT, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or "")[-4000:] if quiet else ""
        raise RuntimeError(f"installing {REQUIREMENTS.name} into {root.name} failed:\n{detail}")
    stamp.write_text(wanted)
    return bin_dir(root)


def tool(name: str, root: Path = TOOLS_VENV) -> Path:
    """The path of one linter's executable inside the (ensured) tools venv."""
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}; expected one of {', '.join(TOOLS)}")
    path = ensure(root) / (name + (".exe" if os.name == "nt" else ""))
    if not path.exists():
        raise RuntimeError(f"{name} is missing from {root.name} after installing {REQUIREMENTS.name}")
    return path


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("ensure", "run"):
        print(__doc__)
        return 2
    if argv[0] == "ensure":
        print(ensure(quiet=False))
        return 0
    if len(argv) < 2:
        print("usage: infra_tools.py run TOOL [-- ARGS...]")
        return 2
    name, rest = argv[1], argv[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return subprocess.call([str(tool(name)), *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
