"""The voice task's timer polls read eventually consistently, and it never acts on a stale read (issue 16, costs).

GIVEN a voice task whose store answers an eventually consistent read with an older version of the
      guild record than one the task has already seen (a DynamoDB replica behind)
WHEN  a timer tick reads it
THEN  the task keeps the newest record it knows and applies nothing from the stale one (the user's
      pause stays, the lease is still its own), counts it, and reads strongly on the next tick
AND   a tick something woke (a wake hint) reads strongly, timer ticks read eventually consistently,
      and the wait while playing is 2 s mid-track and 1 s from warm-ahead's point on
AND   a record changed only by the task's own heartbeat gives it nothing to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from timmybot.config import Settings
from timmybot.models import GuildRecord, LeaseState
from timmybot.store import SQLiteStore
from voice_task.exits import ExitReason
from voice_task.player import WARM_AHEAD_S
from voice_task.polling import NEAR_END_POLL_S, NEAR_END_S, PLAYING_POLL_MAX_S, only_heartbeat, playing_poll_s
from voice_task.task import VoiceTask

pytestmark = pytest.mark.timeout(30)

GUILD = "111111111111111111"


class LaggingStore(SQLiteStore):
    """A real SQLite store whose eventually consistent guild reads can be made to return a record
    captured earlier, as a DynamoDB replica that has not caught up would; every read is recorded."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.behind: GuildRecord | None = None
        self.reads: list[bool] = []

    def get_guild(self, guild_id: str, *, consistent: bool = True) -> GuildRecord:
        self.reads.append(consistent)
        if not consistent and self.behind is not None:
            return self.behind
        return super().get_guild(guild_id, consistent=consistent)


class _Hints:
    """Stands in for a wake listener: the task then polls seldom and reads timer ticks eventually."""

    address: str | None = "udp://127.0.0.1:9"

    async def start(self, on_wake: Any) -> None:
        return None

    async def stop(self) -> None:
        return None


def _task(store: LaggingStore, **settings: Any) -> VoiceTask:
    lease = store.acquire_lease(GUILD, holder="old", state=LeaseState.RUNNING, ttl_s=60)
    assert lease is not None
    store.release_lease(GUILD, generation=lease.generation)
    ours = store.acquire_lease(GUILD, holder="task", state=LeaseState.RUNNING, ttl_s=60)
    assert ours is not None
    task = VoiceTask(Settings(**settings), store, GUILD, generation=ours.generation, holder="task",
                     wake=_Hints())  # fmt: skip
    task.connection.gateway_alive = lambda: True  # type: ignore[method-assign]  # no Discord in a unit test

    async def in_voice(now: float) -> bool:
        return True

    task.watch.keep = in_voice  # type: ignore[method-assign]
    return task


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LaggingStore]:
    lagging = LaggingStore(tmp_path / "store.sqlite3")
    yield lagging
    lagging.close()


def test_a_stale_read_is_ignored(store: LaggingStore) -> None:
    async def scenario() -> None:
        # GIVEN a task that has read the record, then applied the user's pause (a newer version)
        task = _task(store)
        behind = store.get_guild(GUILD)  # what a lagging replica will keep returning
        await task._tick(consistent=True)
        store.pause(GUILD)
        store.set_volume(GUILD, 40)
        await task._tick(consistent=True)
        assert task.applied.paused and task.applied.volume == 40
        newest = task.record
        assert newest is not None and newest.version > behind.version
        # and a stale replica that still has the record from before the pause (and before our lease)
        store.behind = replace(behind, lease=replace(behind.lease, generation=behind.lease.generation - 1))

        # WHEN a timer tick reads it eventually consistently
        changed = await task._tick(consistent=False)

        # THEN nothing of it is applied: still paused at 40, the lease still ours, the newest record kept
        assert not changed
        assert task.exit_reason is None
        assert task.applied.paused and task.applied.volume == 40
        # (the task may have published its own newer state meanwhile: never the replica's older one)
        assert task.record is not None and task.record.version >= newest.version
        assert task.stale_reads == 1
        # AND the next tick reads strongly (the replica is behind), and catches up
        assert task._read_consistently
        await task._tick(consistent=True)
        assert task.record is not None and task.record.version >= newest.version
        task._store_pool.shutdown(wait=False)
        task._rest_pool.shutdown(wait=False)

    asyncio.run(scenario())


def test_a_read_as_new_as_the_newest_is_taken(store: LaggingStore) -> None:
    task = _task(store)
    first = store.get_guild(GUILD)
    assert task.adopt(first) == (first, False)
    newer = store.set_volume(GUILD, 70)
    assert task.adopt(newer) == (newer, False)
    assert task.adopt(first) == (newer, True)
    assert task.adopt(newer) == (newer, False)


def test_a_woken_tick_reads_strongly_and_timer_ticks_eventually(store: LaggingStore) -> None:
    async def scenario() -> None:
        # GIVEN a task with wake hints, not playing, polling quickly for the test
        task = _task(store, tick_s=0.01, poll_max_s=0.02)

        async def no_voice(now: float) -> bool:
            return False  # no voice connection in a unit test: the tick reads, then does nothing else

        task.watch.keep = no_voice  # type: ignore[method-assign]
        loop = asyncio.create_task(task._loop())
        # WHEN it ticks on its timer for a while, then a wake hint arrives
        while len(store.reads) < 4:
            await asyncio.sleep(0.005)
        hinted_at = len(store.reads)
        task.wake()
        while len(store.reads) < hinted_at + 3:
            await asyncio.sleep(0.005)
        # and a lagging replica answers a timer tick with an old record
        store.behind = replace(store.get_guild(GUILD), version=0)
        stale_at = len(store.reads)
        while task.stale_reads == 0:
            await asyncio.sleep(0.005)
        while len(store.reads) < stale_at + 4:
            await asyncio.sleep(0.005)
        task.request_exit(ExitReason.STOPPED)
        await loop
        task._store_pool.shutdown(wait=False)
        task._rest_pool.shutdown(wait=False)

        # THEN the first read was strong, the timer's eventual, the woken one strong
        assert store.reads[0] is True
        assert store.reads[1:hinted_at] == [False] * (hinted_at - 1)
        assert True in store.reads[hinted_at : hinted_at + 2]
        # AND right after the stale read, the next read was strong
        stale_index = next(i for i in range(stale_at, len(store.reads)) if not store.reads[i])
        assert store.reads[stale_index + 1] is True

    asyncio.run(scenario())


def test_without_hints_every_read_is_strong(store: LaggingStore) -> None:
    async def scenario() -> None:
        task = _task(store, tick_s=0.01)
        task._wake_listener = None  # polling alone must see controls at once

        async def no_voice(now: float) -> bool:
            return False

        task.watch.keep = no_voice  # type: ignore[method-assign]
        loop = asyncio.create_task(task._loop())
        while len(store.reads) < 5:
            await asyncio.sleep(0.005)
        task.request_exit(ExitReason.STOPPED)
        await loop
        task._store_pool.shutdown(wait=False)
        task._rest_pool.shutdown(wait=False)
        assert all(store.reads)

    asyncio.run(scenario())


def test_the_playing_poll_is_2_s_mid_track_and_1_s_from_warm_ahead() -> None:
    assert PLAYING_POLL_MAX_S == 2.0 and NEAR_END_POLL_S == 1.0
    assert NEAR_END_S >= WARM_AHEAD_S + PLAYING_POLL_MAX_S  # a mid-track tick can never skip past warm-ahead's point
    assert playing_poll_s(120.0) == PLAYING_POLL_MAX_S
    assert playing_poll_s(None) == PLAYING_POLL_MAX_S  # a live stream has no end to warm ahead of
    assert playing_poll_s(NEAR_END_S) == NEAR_END_POLL_S
    assert playing_poll_s(WARM_AHEAD_S) == NEAR_END_POLL_S
    assert playing_poll_s(0.0) == NEAR_END_POLL_S


def test_only_the_heartbeat_changed_is_nothing_to_do(store: LaggingStore) -> None:
    lease = store.acquire_lease(GUILD, holder="task", state=LeaseState.RUNNING, ttl_s=60)
    assert lease is not None
    before = store.get_guild(GUILD)
    store.renew_lease(GUILD, generation=lease.generation, ttl_s=120)
    renewed = store.get_guild(GUILD)
    assert renewed.version > before.version
    assert only_heartbeat(before, renewed)
    paused = store.pause(GUILD)
    assert not only_heartbeat(renewed, paused)
    taken_over = replace(renewed.lease, generation=lease.generation + 1)
    assert not only_heartbeat(renewed, replace(renewed, version=renewed.version + 1, lease=taken_over))
    extra = replace(renewed, version=renewed.version + 1, unknown={"": {"new_field": 1}})
    assert not only_heartbeat(renewed, extra)
