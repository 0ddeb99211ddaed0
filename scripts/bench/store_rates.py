"""Benchmark: the voice task's DynamoDB traffic while it plays, per listening hour.

A real ``python -m voice_task`` plays a queue of tones on the loopback Discord emulator with
DynamoDB as its store (moto behind tests/support/dynamodb_recorder.py, which records every call the
task signs). The shipped defaults (tick, wake hints, heartbeat) are used. After a warm-up, the
calls in a steady window are counted and scaled to an hour, and the guild record's size gives the
read and write units each call costs. docs/COSTS.md's DynamoDB lines use these figures
(infra/prices.json ``assumptions``); the baseline in the same run is what the code's own settings
predict (one poll per ``PLAYING_POLL_MAX_S``, one heartbeat per ``heartbeat_s``).

    .venv/bin/python scripts/bench/store_rates.py [--seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench._common import FAKE_AWS_ENV, add_source_paths, print_header, print_reproduce, table

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
READS = ("GetItem", "Query", "BatchGetItem")
STRONG = " (strong)"
EVENTUAL = " (eventual)"
WARM_UP_S = 3.0


def _attribute_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value (strings and numbers by length; containers summed)."""
    (kind, inner), = value.items()  # fmt: skip
    if kind in ("S", "N", "B"):
        return len(str(inner).encode())
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _attribute_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + _attribute_size(v) for v in inner)
    return sum(len(str(v).encode()) for v in inner)  # sets


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _attribute_size(value) for name, value in item.items())


def _kind(action: str, consistent: bool) -> str:
    """A read's action with its consistency (an eventually consistent read costs half a unit)."""
    if action not in READS:
        return action
    return action + (STRONG if consistent else EVENTUAL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="steady playback counted")
    parser.add_argument("--quick", action="store_true", help="smoke size: --seconds 10")
    args = parser.parse_args(argv)
    seconds = 10.0 if args.quick else args.seconds
    for name in [n for n in os.environ if n.startswith("TIMMYBOT_")] + ["AWS_PROFILE"]:
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS_ENV)
    add_source_paths()
    from scripts.bench.voice import _add_listener  # noqa: PLC0415
    from tests.support.dynamodb_recorder import RecordingDynamoDB  # noqa: PLC0415
    from tests.support.emulator import DiscordEmulator  # noqa: PLC0415
    from tests.support.media import MediaServer  # noqa: PLC0415
    from tests.support.voice_stack import VoiceStack  # noqa: PLC0415
    from timmybot.config import Settings  # noqa: PLC0415
    from voice_task.polling import PLAYING_POLL_MAX_S  # noqa: PLC0415

    defaults = Settings()
    print_header("the voice task's DynamoDB calls while playing", f"--seconds {seconds:g}")
    track_s = seconds + 30.0  # no track change inside the window: those writes are counted per track in COSTS.md
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per call
    recorder = RecordingDynamoDB()
    try:
        with DiscordEmulator() as emulator, MediaServer() as media, tempfile.TemporaryDirectory() as tmp:
            stack = VoiceStack(emulator, media, Path(tmp), dynamodb=recorder, TIMMYBOT_TICK_S=str(defaults.tick_s),
                               TIMMYBOT_STRICT_STATES="false", TIMMYBOT_DATA_DIR=tmp)  # fmt: skip
            try:
                guild = emulator.add_guild("Rates")
                _add_listener(emulator, guild)
                gid = str(guild.id)
                tones = [stack.tone_entry(freq, track_s) for freq in (440, 550)]
                stack.enqueue(gid, *tones, voice_channel_id=str(guild.voice_channel_id),
                              text_channel_id=str(guild.text_channel_id))  # fmt: skip
                task = stack.launch(gid)
                stack.wait_for_audio(gid, since=time.monotonic(), timeout=30, packets=5)
                time.sleep(WARM_UP_S)
                before = len(recorder.calls())
                started = time.monotonic()
                time.sleep(seconds)
                window = time.monotonic() - started
                during = recorder.calls()[before:]
                table_name = stack.settings.dynamodb_table
                items = recorder.client().scan(TableName=table_name)["Items"]
                stack.store.stop(gid)
                task.wait(timeout=30)
            finally:
                stack.close()
    finally:
        recorder.close()

    counts = Counter(_kind(call.action, call.consistent) for call in during)
    per_hour = {action: count * 3600 / window for action, count in counts.items()}
    from timmybot.store.keys import GUILD_SK, guild_id_of  # noqa: PLC0415 - on the path once the run is set up

    guild_items = [
        item
        for item in items
        if guild_id_of(str(item.get("pk", {}).get("S", ""))) and item.get("sk", {}).get("S") == GUILD_SK
    ]
    size = max((item_size(item) for item in guild_items), default=0)
    strong = sum(n for a, n in per_hour.items() if a.endswith(STRONG))
    eventual = sum(n for a, n in per_hour.items() if a.endswith(EVENTUAL))
    reads = strong + eventual
    writes = sum(per_hour.get(a, 0.0) for a in WRITES)
    read_units = max(1, math.ceil(size / 4096))
    write_units = max(1, math.ceil(size / 1024))
    print(f"\nsteady playback, {window:.1f} s counted after a {WARM_UP_S:g} s warm-up; tracks of {track_s:g} s")
    rows = [["call", "in the window", "per listening hour"]]
    rows += [[a, str(counts[a]), f"{per_hour[a]:,.0f}"] for a in sorted(counts)]
    table(rows)
    print(f"\nreads {reads:,.0f} an hour: {strong:,.0f} strongly consistent, {eventual:,.0f} eventually consistent "
          f"(baseline from the settings: {3600 / PLAYING_POLL_MAX_S:,.0f} polls, one per "
          f"PLAYING_POLL_MAX_S = {PLAYING_POLL_MAX_S:g} s mid-track)")  # fmt: skip
    print(f"writes {writes:,.0f} an hour (baseline: {3600 / defaults.heartbeat_s:,.0f} heartbeats, one per "
          f"heartbeat_s = {defaults.heartbeat_s} s, plus track changes)")  # fmt: skip
    print(f"guild record: ≈ {size:,} bytes → {read_units} read unit(s) a strongly consistent read "
          f"(half that eventually consistent), {write_units} write unit(s) a write")  # fmt: skip
    print_reproduce(f".venv/bin/python scripts/bench/store_rates.py --seconds {seconds:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
