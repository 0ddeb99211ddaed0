"""Run every benchmark script in scripts/bench/, one after another, and summarise their exit codes.

Scripts are listed in ``SCRIPTS``; a listed script that does not exist yet is reported and skipped.
Each runs as ``python -m scripts.bench.<name>`` from the repository root. ``--quick`` is passed on
to every script that accepts it; a script that does not is run at its default size, with a note.

    python3 scripts/dev.py bench [--quick]
    .venv/bin/python scripts/bench/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench._common import CHALICE_APP, CORE_LAYER, ROOT, print_header

BENCH_DIR = Path(__file__).resolve().parent
# In the order they run: the cheap, self-contained ones first.
SCRIPTS = ("cold_import", "first_response", "packet_gaps", "track_end_cpu", "voice", "cold_cpu", "store_rates")


def accepts_quick(path: Path) -> bool:
    return "--quick" in path.read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes in every script that supports them")
    parser.add_argument("--only", default="", help="comma-separated script names to run (default: all)")
    args = parser.parse_args(argv)
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(CORE_LAYER), str(CHALICE_APP), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    print_header("all benchmarks", "quick (smoke sizes)" if args.quick else "default sizes")
    outcomes: list[tuple[str, str]] = []
    for name in SCRIPTS:
        path = BENCH_DIR / f"{name}.py"
        if chosen and name not in chosen:
            outcomes.append((name, "not selected (--only)"))
            continue
        if not path.exists():
            outcomes.append((name, "not present, skipped"))
            continue
        command = [sys.executable, "-m", f"scripts.bench.{name}"]
        note = ""
        if args.quick:
            if accepts_quick(path):
                command.append("--quick")
            else:
                note = " (no --quick option: default size)"
        print(f"\n##### {name}{note}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(command, cwd=ROOT, env=env)
        elapsed = time.perf_counter() - started
        outcomes.append((name, f"exit {code} after {elapsed:.1f} s{note}"))

    print("\n##### summary")
    for name, outcome in outcomes:
        print(f"{name}: {outcome}")
    print("reproduce with: python3 scripts/dev.py bench" + (" --quick" if args.quick else ""))
    failed = [name for name, outcome in outcomes if outcome.startswith("exit ") and not outcome.startswith("exit 0 ")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
