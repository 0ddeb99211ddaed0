"""Edit the version-controlled guild allowlist (chalice_app/chalicelib/allowlist.txt).

    python scripts/allowlist.py list
    python scripts/allowlist.py add 123456789012345678 [--comment "Timmy's server"]
    python scripts/allowlist.py remove 123456789012345678

Comments and blank lines are kept. Anything that is not a Discord snowflake is refused (exit 2).
``--file`` edits another copy (tests, forks). Commit the file afterwards and deploy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "chalice_app", ROOT / "layers" / "core" / "python"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from chalicelib import allowlist  # noqa: E402


def _write(path: Path, text: str) -> None:
    """Replace the file atomically (a crash never leaves half a list)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="List, add or remove guild ids on the TimmyBot allowlist.")
    parser.add_argument("--file", type=Path, default=allowlist.DEFAULT_FILE, help="the allowlist file to edit")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="print the listed guild ids")
    add = sub.add_parser("add", help="add a guild id")
    add.add_argument("guild_id")
    add.add_argument("--comment", default="", help="a note kept next to the id")
    remove = sub.add_parser("remove", help="remove a guild id")
    remove.add_argument("guild_id")
    args = parser.parse_args(argv)

    path: Path = args.file
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        if args.action == "list":
            for guild_id in allowlist.parse(text):
                print(guild_id)
            return 0
        if args.action == "add":
            new_text, changed = allowlist.add(text, args.guild_id, comment=args.comment)
            message = f"added {args.guild_id}" if changed else f"{args.guild_id} is already on the list"
        else:
            new_text, changed = allowlist.remove(text, args.guild_id)
            if not changed:
                print(f"{args.guild_id} is not on the list", file=sys.stderr)
                return 1
            message = f"removed {args.guild_id}"
    except allowlist.AllowlistError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if changed:
        _write(path, new_text)
    print(f"{message} ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
