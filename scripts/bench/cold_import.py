"""Benchmark: cold import of the api Lambda module (``import app``) against ``import boto3`` alone.

Each sample is a fresh interpreter with the Lambda's import path (``chalice_app`` and the core
layer); the child times the import with ``time.perf_counter()`` and the parent times the whole
process. The two kinds of child are interleaved. BRIEF §7 target: median ratio ≤ 1.3.

Also a correctness guard (not a timing): exits 1 if ``import app`` pulled in yt_dlp, discord or
spotipy, which must never load on the interactions fast path — nor on the /play autocomplete path,
which one more fresh process walks (``import app``, then the autocomplete modules and one
``play_choices`` over an in-memory store, suggestions built but not fetched).

    .venv/bin/python scripts/bench/cold_import.py [--runs 21] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench._common import (
    RESULT_MARKER,
    ChildRun,
    child_env,
    median,
    ms,
    print_header,
    print_reproduce,
    run_child,
    table,
    verdict,
)

TARGET_RATIO = 1.3
DEFAULT_RUNS = 21
QUICK_RUNS = 3
WATCHED = ("yt_dlp", "discord", "spotipy", "boto3", "nacl", "aws_lambda_powertools")
FORBIDDEN = ("yt_dlp", "discord", "spotipy")

# The child's first statement records when it started running Python code; the timed import comes
# before anything else the measurement would otherwise include (json is imported only afterwards).
_CHILD = """\
import time
top_time = time.time()
import sys
started = time.perf_counter()
import {module}
import_s = time.perf_counter() - started
import json
loaded = [name for name in {watched!r} if name in sys.modules]
print({marker!r} + json.dumps({{"top_time": top_time, "import_s": import_s, "loaded": loaded}}))
"""


def child_code(module: str) -> str:
    return _CHILD.format(module=module, watched=WATCHED, marker=RESULT_MARKER)


# The autocomplete path, as the api walks it for a /play query being typed (no network: the
# suggestion source is built, and its request module imported, but nothing is sent).
_AUTOCOMPLETE_CHILD = """\
import sys
import app
from chalicelib import interactions
from timmybot import autocomplete
from timmybot.config import Settings
from timmybot.sources.suggestions import suggestion_source
from timmybot.store.memory import MemoryStore
import urllib.request
source = suggestion_source(Settings())
assert source is not None
autocomplete.play_choices("signal", user_id="1", guild_id="2", store=MemoryStore(), suggester=None)
import json
loaded = [name for name in {watched!r} if name in sys.modules]
print({marker!r} + json.dumps({{"loaded": loaded}}))
"""


def autocomplete_child_code() -> str:
    return _AUTOCOMPLETE_CHILD.format(watched=WATCHED, marker=RESULT_MARKER)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help=f"fresh processes per module (default {DEFAULT_RUNS})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs each (a smoke run, not a figure)")
    args = parser.parse_args(argv)
    runs = args.runs or (QUICK_RUNS if args.quick else DEFAULT_RUNS)

    env = child_env()
    codes = {"app": child_code("app"), "boto3": child_code("boto3")}
    print_header(
        "cold import: api module vs boto3",
        f"{runs} fresh processes per module, interleaved (after one discarded warm-up each)",
    )
    for code in codes.values():  # warm the page cache so the first sample is not an outlier
        run_child(code, env)

    samples: dict[str, list[ChildRun]] = {name: [] for name in codes}
    for index in range(runs):
        order = list(codes) if index % 2 == 0 else list(reversed(codes))
        for name in order:
            samples[name].append(run_child(codes[name], env))

    imports = {name: [run.result["import_s"] for run in runs_] for name, runs_ in samples.items()}
    walls = {name: [run.wall_s for run in runs_] for name, runs_ in samples.items()}
    rows = [["", "import p50 (in child)", "min", "max", "whole process p50 (wall)"]]
    for name in codes:
        rows.append(
            [
                f"import {name}",
                ms(median(imports[name])),
                ms(min(imports[name])),
                ms(max(imports[name])),
                ms(median(walls[name])),
            ]
        )
    table(rows)

    ratio = median(imports["app"]) / median(imports["boto3"])
    wall_ratio = median(walls["app"]) / median(walls["boto3"])
    print(
        f"ratio of medians (import app / import boto3): {ratio:.2f} "
        f"(target ≤ {TARGET_RATIO}: {verdict(ratio, TARGET_RATIO)}); whole-process ratio {wall_ratio:.2f}"
    )

    loaded = sorted({name for run in samples["app"] for name in run.result["loaded"]})
    print("modules after `import app`: " + ", ".join(f"{name}={'yes' if name in loaded else 'no'}" for name in WATCHED))
    forbidden = [name for name in FORBIDDEN if name in loaded]
    if forbidden:
        print(f"FAIL: `import app` imported {', '.join(forbidden)}, which must never load on the fast path")
    else:
        print(f"fast-path guard: none of {', '.join(FORBIDDEN)} imported")
    on_autocomplete = run_child(autocomplete_child_code(), env).result["loaded"]
    print(
        "modules after the /play autocomplete path: "
        + ", ".join(f"{name}={'yes' if name in on_autocomplete else 'no'}" for name in FORBIDDEN)
    )
    autocomplete_forbidden = [name for name in FORBIDDEN if name in on_autocomplete]
    if autocomplete_forbidden:
        print(f"FAIL: the autocomplete path imported {', '.join(autocomplete_forbidden)}")
    forbidden += autocomplete_forbidden
    print_reproduce(
        f".venv/bin/python scripts/bench/cold_import.py --runs {runs}",
        "python3 scripts/dev.py bench" + (" --quick" if args.quick else ""),
    )
    return 1 if forbidden else 0


if __name__ == "__main__":
    sys.exit(main())
