"""Run the reaper locally: once, or every N seconds (what the Lambda schedule does in AWS).

    .venv/bin/python scripts/reap.py            # one pass, prints the report
    .venv/bin/python scripts/reap.py --every 60 # until Ctrl-C

Settings come from the TIMMYBOT_* environment, as for the local run (SQLite store, local launcher).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "core" / "python"), str(ROOT)]

from timmybot.config import Settings  # noqa: E402
from timmybot.launcher import build_launcher  # noqa: E402
from timmybot.reaper import reap  # noqa: E402
from timmybot.store import build_store  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=float, default=0.0, help="repeat every N seconds (0: once)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    store = build_store(settings)
    launcher = build_launcher(settings, store)
    while True:
        report = reap(store, launcher, settings)
        print(
            f"checked {report.checked}, relaunched {report.relaunched or 'none'}, "
            f"freed {report.freed or 'none'}, failed {report.failed or 'none'}, purged {report.purged}"
        )
        if args.every <= 0:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
