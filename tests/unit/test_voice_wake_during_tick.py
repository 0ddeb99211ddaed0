"""A wake hint that arrives while a tick runs is not lost: the next tick follows at once.

GIVEN a voice task with wake hints, polling every 3 s while nothing changes
WHEN  a hint arrives while a tick is reading the store
THEN  the next tick starts at once, not a poll interval later.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from timmybot.config import Settings
from timmybot.models import GuildRecord, LeaseState
from timmybot.store import SQLiteStore
from voice_task.exits import ExitReason
from voice_task.task import VoiceTask

GUILD = "111111111111111111"


class SlowReads(SQLiteStore):
    """A real SQLite store whose guild reads can be held until the test lets them go; each read's
    start time is recorded."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[float] = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()

    def get_guild(self, guild_id: str, *, consistent: bool = True) -> GuildRecord:
        self.reads.append(time.monotonic())
        if self.hold.is_set():
            self.hold.clear()
            self.held.set()
            self.release.wait(5)
        return super().get_guild(guild_id, consistent=consistent)


class _Hints:
    address = "udp://127.0.0.1:9"

    async def start(self, on_wake: Any) -> None:
        return None

    async def stop(self) -> None:
        return None


def test_a_hint_during_a_tick_starts_the_next_tick_at_once(tmp_path: Path) -> None:
    store = SlowReads(tmp_path / "store.sqlite3")
    lease = store.acquire_lease(GUILD, holder="task", state=LeaseState.RUNNING, ttl_s=60)
    assert lease is not None
    task = VoiceTask(Settings(tick_s=3.0, poll_max_s=3.0), store, GUILD, generation=lease.generation,
                     holder="task", wake=_Hints())  # fmt: skip
    task.connection.gateway_alive = lambda: True  # type: ignore[method-assign]

    async def no_voice(now: float) -> bool:
        return False

    task.watch.keep = no_voice  # type: ignore[method-assign]

    async def scenario() -> float:
        loop = asyncio.create_task(task._loop())
        while not store.reads:
            await asyncio.sleep(0.01)
        # WHEN the next tick's read is under way and a hint arrives meanwhile
        store.hint_read = len(store.reads)  # type: ignore[attr-defined]
        store.hold.set()
        task.wake()  # wakes the wait: the tick whose read we hold starts
        while not store.held.is_set():
            await asyncio.sleep(0.01)
        reads_before = len(store.reads)
        task.wake()  # the hint that lands during the tick
        hinted = time.monotonic()
        store.release.set()
        while len(store.reads) == reads_before and time.monotonic() - hinted < 5:
            await asyncio.sleep(0.01)
        took = store.reads[-1] - hinted if len(store.reads) > reads_before else float("inf")
        task.request_exit(ExitReason.STOPPED)
        await loop
        task._store_pool.shutdown(wait=False)
        task._rest_pool.shutdown(wait=False)
        return took

    took = asyncio.run(scenario())
    store.close()
    # THEN the next tick read the store at once, not 3 s later
    assert took < 1.0, f"the next tick came {took:.2f} s after the hint"
