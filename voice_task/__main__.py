"""``python -m voice_task``: play one guild's music until there is nothing left to do.

Environment: the usual ``TIMMYBOT_*`` settings, plus ``TIMMYBOT_GUILD_ID`` and (from a launcher)
``TIMMYBOT_LEASE_GENERATION``. ``--self-check`` verifies the runtime and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from timmybot.config import Settings, SettingsError
from timmybot.logformat import OneLineFormatter
from voice_task.background import report_failure
from voice_task.selfcheck import run_self_check

if TYPE_CHECKING:
    from voice_task.exits import ExitReason
    from voice_task.task import VoiceTask

_log = logging.getLogger("voice_task")
THREAD_GRACE_S = 1.0


class _TaskContext(logging.Filter):
    """Adds guild id, task id and lease generation to every record (structured logs)."""

    def __init__(self, guild_id: str, holder: str) -> None:
        super().__init__()
        self.guild_id = guild_id
        self.holder = holder
        self.generation = 0

    def filter(self, record: logging.LogRecord) -> bool:
        record.guild_id = self.guild_id
        record.task_id = self.holder
        record.generation = self.generation
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voice_task", description=__doc__)
    parser.add_argument("--self-check", action="store_true", help="verify ffmpeg, libopus, davey, PyNaCl, settings")
    parser.add_argument("--guild", default=os.environ.get("TIMMYBOT_GUILD_ID", ""))
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"voice_task: invalid settings: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    if args.self_check:
        return run_self_check(settings, guild_id=args.guild)
    if not args.guild:
        print("voice_task: TIMMYBOT_GUILD_ID (or --guild) is required", file=sys.stderr)  # noqa: T201
        return 2

    from voice_task.bootstrap import build_task  # noqa: PLC0415 - discord.py only past the checks
    from voice_task.exits import ExitReason  # noqa: PLC0415

    task = build_task(settings, args.guild, os.environ.get("TIMMYBOT_LEASE_GENERATION"))
    context = _TaskContext(args.guild, task.holder)
    handler = logging.StreamHandler()
    handler.addFilter(context)
    handler.setFormatter(
        OneLineFormatter(
            "%(asctime)s %(levelname)s %(name)s [guild=%(guild_id)s task=%(task_id)s gen=%(generation)s] %(message)s"
        )
    )
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    reason = asyncio.run(_run(task, context))
    _log.info("exit reason: %s", reason)
    code = 1 if reason is ExitReason.ERROR else 0
    _exit_now_if_threads_hang(code)
    return code


def _exit_now_if_threads_hang(code: int) -> None:
    """Everything is released and said by now. A resolve stuck in a source that never answers
    would keep the interpreter waiting on its worker thread at exit (until its socket timeout, or
    SIGKILL): give the threads a moment, then exit without them."""
    deadline = time.monotonic() + THREAD_GRACE_S
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for thread in busy:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in busy if t.is_alive()]
    if stuck:
        _log.warning("%s threads still busy (%s): exiting without waiting for them", len(stuck), ", ".join(stuck[:5]))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


async def _run(task: VoiceTask, context: _TaskContext) -> ExitReason:

    async def track_generation() -> None:
        while True:
            context.generation = task.generation
            await asyncio.sleep(0.5)

    tracker = asyncio.create_task(track_generation(), name="log generation tracker")
    tracker.add_done_callback(report_failure(_log, "log generation tracker"))
    try:
        return await task.run()
    finally:
        tracker.cancel()


if __name__ == "__main__":
    sys.exit(main())
