"""A stand-in voice task for launcher tests: claim the lease it was given, note the launch, exit.

Run by the local launcher (``voice_task_command = [python, tests/support/fake_voice_task.py]``) with
the launcher's settings as ``TIMMYBOT_*`` variables. It appends one line per launch to
``<data_dir>/fake_voice_task.log``: ``<guild> <generation> <claimed|refused> <pid>``. The claimed
lease stays ``running`` until it expires, as a real task's would while it plays.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from timmybot.config import Settings
from timmybot.store import build_store

LOG_NAME = "fake_voice_task.log"


def main() -> int:
    settings = Settings.from_env()
    guild_id = os.environ["TIMMYBOT_GUILD_ID"]
    generation = int(os.environ["TIMMYBOT_LEASE_GENERATION"])
    store = build_store(settings)
    lease = store.claim_lease(guild_id, generation=generation, holder=f"pid:{os.getpid()}", ttl_s=settings.lease_ttl_s)
    outcome = "claimed" if lease is not None else "refused"
    with (Path(settings.data_dir) / LOG_NAME).open("a", encoding="utf-8") as log:
        log.write(f"{guild_id} {generation} {outcome} {os.getpid()}\n")
    return 0 if lease is not None else 3


def launches(data_dir: Path) -> list[tuple[str, int, str]]:
    """(guild, generation, outcome) per launch recorded under ``data_dir``."""
    path = data_dir / LOG_NAME
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(guild, int(generation), outcome) for guild, generation, outcome, _pid in rows]


if __name__ == "__main__":
    sys.exit(main())
