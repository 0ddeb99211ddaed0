#!/usr/bin/env python3
"""Build the ``timmybot`` core layer zip: ``python/timmybot/...``, as Lambda layers expect.

    python3 layers/build_layer.py                       # writes build/timmybot-core-layer.zip
    python3 layers/build_layer.py --out DIR/NAME.zip

Only the package's own source goes in (no caches, no compiled files). Third-party wheels come from
Chalice's automatic layer (``ManagedLayer``); see layers/README.md. The zip is reproducible: fixed
timestamps and sorted entries, so an unchanged package gives the same bytes and CloudFormation
publishes no new layer version.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "layers" / "core" / "python"
PACKAGE = "timmybot"
DEFAULT_OUT = ROOT / "build" / "timmybot-core-layer.zip"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
SKIPPED_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def layer_files(source: Path = SOURCE) -> Iterator[tuple[Path, str]]:
    """Each file of the package with its name inside the zip (``python/timmybot/...``), sorted."""
    package = source / PACKAGE
    if not (package / "__init__.py").is_file():
        raise FileNotFoundError(f"{package} is not a Python package")
    for path in sorted(package.rglob("*")):
        if not path.is_file() or path.suffix in SKIPPED_SUFFIXES:
            continue
        if SKIPPED_DIRS.intersection(path.relative_to(source).parts):
            continue
        yield path, "python/" + path.relative_to(source).as_posix()


def build_layer(out: Path = DEFAULT_OUT, source: Path = SOURCE) -> Path:
    """Write the layer zip to ``out`` and return it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in layer_files(source):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the zip")
    args = parser.parse_args(argv)
    out = build_layer(args.out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")  # noqa: T201 - a command-line tool
    return 0


if __name__ == "__main__":
    sys.exit(main())
