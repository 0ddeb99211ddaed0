"""Report the pinned yt-dlp against the newest release on the package index.

    python scripts/check_ytdlp_version.py [--requirements requirements.txt] [--index-url URL] [--timeout 20]

YouTube changes its player often and old yt-dlp releases stop working within weeks, so operators
(and the scheduled workflow) run this and bump the pin when it says so. It asks ``pip index
versions yt-dlp`` (pip's configured index, or ``--index-url``). Exit status: 0 the pin is the
newest, 1 a newer release exists, 2 the answer could not be found (offline, no pin): the message
says why.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "yt-dlp"

EXIT_CURRENT = 0
EXIT_OUTDATED = 1
EXIT_UNKNOWN = 2

_PIN_RE = re.compile(r"^\s*yt[-_]dlp(?:\[[^\]]*\])?\s*==\s*([0-9][0-9A-Za-z.\-]*)\s*(?:[;#].*)?$", re.IGNORECASE)
_LATEST_RE = re.compile(r"^yt-dlp \(([^)]+)\)", re.MULTILINE)


class Unknown(Exception):
    """The newest version (or the pin) could not be found; the message says why."""


def pinned_version(requirements: Path) -> str:
    try:
        lines = requirements.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise Unknown(f"cannot read {requirements.name}: {exc.strerror}") from None
    for line in lines:
        match = _PIN_RE.match(line)
        if match:
            return match.group(1)
    raise Unknown(f"{requirements.name} has no exact yt-dlp pin (yt-dlp==<version>)")


def parse_pip_index(output: str) -> str:
    """The newest version in ``pip index versions`` output (its first line: ``yt-dlp (X)``)."""
    match = _LATEST_RE.search(output)
    if match is None:
        raise Unknown("pip's answer did not name a version")
    return match.group(1).strip()


def version_key(version: str) -> tuple[int, ...]:
    """yt-dlp versions are dates with an optional build: 2026.10.26 or 2026.10.26.1."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def newest_from_pip(index_url: str | None, timeout_s: float) -> str:
    command = [
        sys.executable,
        "-m",
        "pip",
        "index",
        "versions",
        PACKAGE,
        "--disable-pip-version-check",
        "--retries",
        "1",
        "--timeout",
        str(max(1, int(timeout_s / 2))),
    ]
    if index_url:
        command += ["--index-url", index_url]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise Unknown(f"pip did not answer within {timeout_s:.0f} s") from None
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unknown(f"pip could not reach the package index ({last[:200]})")
    return parse_pip_index(completed.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare the pinned yt-dlp with the newest release.")
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    parser.add_argument("--index-url", help="ask this package index instead of pip's configured one")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per lookup")
    args = parser.parse_args(argv)

    try:
        pinned = pinned_version(args.requirements)
    except Unknown as exc:
        print(f"yt-dlp: cannot tell: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN
    try:
        newest = newest_from_pip(args.index_url, args.timeout)
    except Unknown as exc:
        print(f"yt-dlp: pinned {pinned}; newest unknown: {exc}. Are we offline?", file=sys.stderr)
        return EXIT_UNKNOWN
    if version_key(newest) > version_key(pinned):
        print(f"yt-dlp: pinned {pinned}, newest {newest}: update the pin in requirements.txt and redeploy")
        return EXIT_OUTDATED
    print(f"yt-dlp: pinned {pinned} is the newest release")
    return EXIT_CURRENT


if __name__ == "__main__":
    sys.exit(main())
