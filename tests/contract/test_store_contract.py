"""The Store contract: every test here runs against SQLite and against DynamoDB (moto).

One suite for every adapter (the ``store`` fixture is parametrised: SQLite, DynamoDB, memory), so they
can never drift.
Time is a ``FakeClock``: leases, TTLs and dedupe windows move only when a test advances it.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from moto import mock_aws

from tests.support.clock import FakeClock
from timmybot.config import Settings
from timmybot.errors import (
    InvalidInputError,
    PermissionDeniedError,
    QueueEmptyError,
    QueueFullError,
    StaleGenerationError,
)
from timmybot.filters import FilterPreset, Filters
from timmybot.models import (
    Actual,
    Desired,
    GuildRecord,
    GuildSettings,
    Lease,
    LeaseState,
    LoopMode,
    QueueEntry,
    QueuePage,
    Track,
)
from timmybot.store import DynamoDBStore, SQLiteStore, Store, build_store, keys
from timmybot.store.base import DEDUPE_SK, ENTRY_TTL_S
from timmybot.store.keys import GUILD_HISTORY_SK, guild_pk
from timmybot.store.limits import ItemTooLargeError, item_size
from timmybot.store.schema import create_dynamodb_table, create_sqlite_schema, table_definition, ttl_attribute

pytestmark = pytest.mark.slow  # started first: the file takes many seconds under xdist

GUILD = "111111111111111111"
OTHER_GUILD = "222222222222222222"
CAP = 500
LEASE_TTL_S = 60.0
DEDUPE_TTL_S = 900.0

T = TypeVar("T")


# ---------------------------------------------------------------------- helpers
def entry(entry_id: str, *, duration_s: int | None = 180, requester: str = "333333333333333333") -> QueueEntry:
    track: dict[str, Any] = {"title": f"Track {entry_id}", "url": f"https://youtu.be/{entry_id}"}
    if duration_s is not None:
        track["duration_s"] = duration_s
    return QueueEntry(
        entry_id=entry_id, track=Track.from_stored(track), requester_id=requester, added_at=1_800_000_000.5
    )


def fill(store: Store, guild_id: str, ids: Sequence[str], *, cap: int = CAP) -> GuildRecord:
    return store.append_entries(guild_id, [entry(i) for i in ids], cap=cap)


def run_together(workers: int, job: Callable[[int], T]) -> list[T]:
    """Run ``job(i)`` for i in range(workers) on that many threads released at the same instant."""
    barrier = threading.Barrier(workers)

    def start(index: int) -> T:
        barrier.wait(timeout=30)
        return job(index)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(start, range(workers)))


def running_lease(store: Store, guild_id: str = GUILD, holder: str = "task-1") -> Lease:
    lease = store.acquire_lease(guild_id, holder=holder, state=LeaseState.RUNNING, ttl_s=LEASE_TTL_S)
    assert lease is not None
    return lease


def fetchable_ids(store: Store, guild_id: str, ids: Sequence[str]) -> list[str]:
    return [e.entry_id for e in store.get_entries(guild_id, ids)]


# ---------------------------------------------------------------------- concurrency of appends
class TestConcurrentAppends:
    def test_thirty_threads_appending_one_entry_each_all_land_exactly_once(self, store: Store) -> None:
        # GIVEN another guild with a queue of its own
        fill(store, OTHER_GUILD, ["other-1", "other-2"])
        before_other = store.get_guild(OTHER_GUILD)

        # WHEN 30 threads each append one entry to the same guild at the same moment (on moto every
        # conflict costs a read and a write of the whole record, so the work grows with the square)
        run_together(30, lambda i: store.append_entries(GUILD, [entry(f"t{i}")], cap=CAP))

        # THEN every entry is queued exactly once and can be fetched
        queue = store.get_guild(GUILD).queue
        assert Counter(queue) == Counter(f"t{i}" for i in range(30))
        assert sorted(fetchable_ids(store, GUILD, queue)) == sorted(queue)
        # AND the other guild is untouched
        assert store.get_guild(OTHER_GUILD) == before_other

    def test_ten_threads_appending_five_each_keep_every_threads_order(self, store: Store) -> None:
        # GIVEN another guild with a queue of its own
        fill(store, OTHER_GUILD, ["other-1"])
        before_other = store.get_guild(OTHER_GUILD)

        # WHEN 10 threads each append 5 entries in one call, all at once
        run_together(10, lambda t: store.append_entries(GUILD, [entry(f"t{t}-{n}") for n in range(5)], cap=CAP))

        # THEN all 50 are queued once, and each thread's five stay in their order, side by side
        queue = store.get_guild(GUILD).queue
        assert Counter(queue) == Counter(f"t{t}-{n}" for t in range(10) for n in range(5))
        for t in range(10):
            start = queue.index(f"t{t}-0")
            assert list(queue[start : start + 5]) == [f"t{t}-{n}" for n in range(5)]
        assert store.get_guild(OTHER_GUILD) == before_other


# ---------------------------------------------------------------------- lease and fencing
class TestLease:
    def test_only_one_of_twenty_concurrent_acquisitions_wins(self, store: Store) -> None:
        # WHEN 20 launchers try to take the lease at once
        results = run_together(
            20,
            lambda i: store.acquire_lease(GUILD, holder=f"launcher-{i}", state=LeaseState.LAUNCHING, ttl_s=90),
        )

        # THEN exactly one gets it, and the record names that one with generation 1
        winners = [lease for lease in results if lease is not None]
        assert len(winners) == 1
        lease = store.get_guild(GUILD).lease
        assert lease == winners[0]
        assert lease.generation == 1
        assert lease.state == LeaseState.LAUNCHING

    def test_a_live_lease_is_not_taken(self, store: Store, clock: FakeClock) -> None:
        # GIVEN a running lease with time left
        first = running_lease(store)
        clock.advance(LEASE_TTL_S - 1)

        # WHEN someone else tries to take it THEN they get nothing and the holder keeps it
        assert store.acquire_lease(GUILD, holder="task-2", state=LeaseState.RUNNING, ttl_s=LEASE_TTL_S) is None
        assert store.get_guild(GUILD).lease == first

    def test_an_expired_lease_is_taken_over_with_the_next_generation(self, store: Store, clock: FakeClock) -> None:
        # GIVEN a lease whose holder stopped heartbeating
        first = running_lease(store, holder="task-1")
        clock.advance(LEASE_TTL_S + 1)

        # WHEN another task acquires it
        second = store.acquire_lease(GUILD, holder="task-2", state=LeaseState.RUNNING, ttl_s=LEASE_TTL_S)

        # THEN it holds the lease with a bumped generation
        assert second is not None
        assert second.holder == "task-2"
        assert second.generation == first.generation + 1
        assert second.expires_at == clock() + LEASE_TTL_S

    def test_a_released_lease_can_be_acquired_again(self, store: Store) -> None:
        # GIVEN a task that released its lease
        first = running_lease(store)
        assert store.release_lease(GUILD, generation=first.generation) is True
        assert store.get_guild(GUILD).lease.state == LeaseState.RELEASED

        # WHEN a new task acquires it THEN it gets it at once with the next generation
        again = store.acquire_lease(GUILD, holder="task-2", state=LeaseState.RUNNING, ttl_s=LEASE_TTL_S)
        assert again is not None
        assert again.generation == first.generation + 1

    def test_renewing_extends_the_lease(self, store: Store, clock: FakeClock) -> None:
        lease = running_lease(store)
        clock.advance(30)

        assert store.renew_lease(GUILD, generation=lease.generation, ttl_s=LEASE_TTL_S) is True

        assert store.get_guild(GUILD).lease.expires_at == clock() + LEASE_TTL_S

    def test_a_renewal_puts_back_the_wake_address_an_older_writer_dropped(self, store: Store) -> None:
        # GIVEN a task's lease with its wake address, then a write that lost it (an older release)
        lease = store.acquire_lease(GUILD, holder="task", state=LeaseState.RUNNING, ttl_s=LEASE_TTL_S,
                                    wake="udp://127.0.0.1:40000")  # fmt: skip
        assert lease is not None
        store.update_guild(GUILD, lambda r: r.evolve(lease=replace(r.lease, wake=None)))

        # WHEN the task renews with its address, THEN the address is back; without one it is kept
        assert store.renew_lease(GUILD, generation=lease.generation, ttl_s=LEASE_TTL_S, wake="udp://127.0.0.1:40000")
        assert store.get_guild(GUILD).lease.wake == "udp://127.0.0.1:40000"
        assert store.renew_lease(GUILD, generation=lease.generation, ttl_s=LEASE_TTL_S)
        assert store.get_guild(GUILD).lease.wake == "udp://127.0.0.1:40000"

    def test_a_superseded_generation_can_change_nothing(self, store: Store, clock: FakeClock) -> None:
        # GIVEN a stalled task whose lease was taken over by a new one
        fill(store, GUILD, ["a", "b", "c"])
        old = running_lease(store, holder="old-task")
        clock.advance(LEASE_TTL_S + 1)
        new = running_lease(store, holder="new-task")
        store.pop_head(GUILD, new.generation)
        before = store.get_guild(GUILD)

        # WHEN the old task tries to write, pop, renew and release with its generation
        with pytest.raises(StaleGenerationError):
            store.write_actual(GUILD, old.generation, Actual(position_ms=999, listener_ids=("x",)))
        with pytest.raises(StaleGenerationError):
            store.pop_head(GUILD, old.generation)
        renewed = store.renew_lease(GUILD, generation=old.generation, ttl_s=LEASE_TTL_S)
        released = store.release_lease(GUILD, generation=old.generation, resume_position_ms=1000)

        # THEN every attempt is refused and the record is exactly as the new holder left it
        assert renewed is False
        assert released is False
        assert store.get_guild(GUILD) == before
        assert before.actual.now_playing is not None
        assert before.actual.now_playing.entry_id == "a"

    def test_a_released_generation_cannot_write(self, store: Store) -> None:
        lease = running_lease(store)
        store.release_lease(GUILD, generation=lease.generation)

        with pytest.raises(StaleGenerationError):
            store.write_actual(GUILD, lease.generation, Actual(position_ms=5))

    def test_the_launched_task_claims_its_launching_lease(self, store: Store) -> None:
        # GIVEN a launcher that took the lease for a task it started
        launching = store.acquire_lease(GUILD, holder="arn:task/1", state=LeaseState.LAUNCHING, ttl_s=90)
        assert launching is not None

        # WHEN the task claims with another generation THEN nothing happens
        assert store.claim_lease(GUILD, generation=launching.generation + 1, holder="pid-1", ttl_s=60) is None
        # WHEN it claims with its own generation THEN the lease runs under the same generation
        claimed = store.claim_lease(GUILD, generation=launching.generation, holder="pid-1", ttl_s=60)
        assert claimed is not None
        assert (claimed.state, claimed.generation, claimed.holder) == (
            LeaseState.RUNNING,
            launching.generation,
            "pid-1",
        )

    def test_an_expired_launching_lease_cannot_be_claimed(self, store: Store, clock: FakeClock) -> None:
        launching = store.acquire_lease(GUILD, holder="arn:task/1", state=LeaseState.LAUNCHING, ttl_s=90)
        assert launching is not None
        clock.advance(91)

        assert store.claim_lease(GUILD, generation=launching.generation, holder="pid-1", ttl_s=60) is None

    def test_a_new_holder_adopts_the_desired_counters(self, store: Store) -> None:
        # GIVEN skip, stop and seek pressed while no task exists
        store.skip(GUILD)
        store.stop(GUILD)
        store.skip(GUILD)
        store.seek(GUILD, 30_000)

        # WHEN a launcher acquires the lease
        store.acquire_lease(GUILD, holder="arn:task/1", state=LeaseState.LAUNCHING, ttl_s=90)

        # THEN the stale counters count as applied: the first track will not be skipped
        record = store.get_guild(GUILD)
        assert record.desired.skip_seq == 2
        assert record.actual.applied_skip_seq == record.desired.skip_seq
        assert record.actual.applied_stop_seq == record.desired.stop_seq == 1
        assert record.actual.applied_seek_seq == record.desired.seek_seq == 1

    def test_claiming_adopts_counters_bumped_while_launching(self, store: Store) -> None:
        # GIVEN a skip pressed while the task was still starting
        launching = store.acquire_lease(GUILD, holder="arn:task/1", state=LeaseState.LAUNCHING, ttl_s=90)
        assert launching is not None
        store.skip(GUILD)

        # WHEN the task claims its lease
        store.claim_lease(GUILD, generation=launching.generation, holder="pid-1", ttl_s=60)

        # THEN it adopts that skip as applied
        record = store.get_guild(GUILD)
        assert record.actual.applied_skip_seq == record.desired.skip_seq == 1

    def test_release_with_a_resume_point_puts_the_current_entry_back_at_the_head(self, store: Store) -> None:
        # GIVEN a task playing "a" with "b" queued
        fill(store, GUILD, ["a", "b"])
        lease = running_lease(store)
        store.pop_head(GUILD, lease.generation)

        # WHEN it is stopped mid-track (SIGTERM) and releases with its position
        assert store.release_lease(GUILD, generation=lease.generation, resume_position_ms=42_000) is True

        # THEN "a" is first again, still fetchable, and the lease remembers where to continue
        record = store.get_guild(GUILD)
        assert record.queue == ("a", "b")
        assert record.actual.now_playing is None
        assert record.lease.state == LeaseState.RELEASED
        assert record.lease.resume == {"entry_id": "a", "position_ms": 42_000}
        assert fetchable_ids(store, GUILD, ["a"]) == ["a"]

    def test_release_without_a_resume_point_finishes_the_current_entry(self, store: Store) -> None:
        # GIVEN a task playing "a" with "b" queued
        fill(store, GUILD, ["a", "b"])
        lease = running_lease(store)
        store.pop_head(GUILD, lease.generation)

        # WHEN it exits normally
        assert store.release_lease(GUILD, generation=lease.generation) is True

        # THEN "a" is done: neither queued nor stored
        record = store.get_guild(GUILD)
        assert record.queue == ("b",)
        assert record.actual.now_playing is None
        assert record.lease.resume is None
        assert fetchable_ids(store, GUILD, ["a", "b"]) == ["b"]


# ---------------------------------------------------------------------- queue edits
class TestQueueEdits:
    IDS = ("a", "b", "c", "d", "e")

    def test_move_keeps_every_entry_exactly_once(self, store: Store) -> None:
        fill(store, GUILD, self.IDS)

        moved = store.move(GUILD, 1, 4)

        queue = store.get_guild(GUILD).queue
        assert moved.entry_id == "a"
        assert queue == ("b", "c", "d", "a", "e")
        assert fetchable_ids(store, GUILD, queue) == list(queue)

    def test_skip_to_drops_the_entries_before_it_and_bumps_the_skip(self, store: Store) -> None:
        fill(store, GUILD, self.IDS)

        record, skipped = store.skip_to(GUILD, 3)

        assert skipped == ("a", "b")
        assert record.queue == ("c", "d", "e") == store.get_guild(GUILD).queue
        assert record.desired.skip_seq == 1
        assert fetchable_ids(store, GUILD, ["a", "b"]) == []

    def test_skip_to_under_loop_queue_moves_the_skipped_to_the_end(self, store: Store) -> None:
        fill(store, GUILD, self.IDS)
        store.set_loop(GUILD, LoopMode.QUEUE)

        record, skipped = store.skip_to(GUILD, 4)

        assert skipped == ("a", "b", "c")
        assert record.queue == ("d", "e", "a", "b", "c")
        assert fetchable_ids(store, GUILD, record.queue) == list(record.queue)

    def test_a_refused_skip_to_changes_nothing(self, store: Store) -> None:
        fill(store, GUILD, self.IDS)

        def refuse(record: GuildRecord, passed: Sequence[str]) -> None:
            raise PermissionDeniedError("not yours")

        with pytest.raises(PermissionDeniedError):
            store.skip_to(GUILD, 2, check=refuse)
        after = store.get_guild(GUILD)
        assert after.queue == tuple(self.IDS) and after.desired.skip_seq == 0
        with pytest.raises(InvalidInputError, match="between 1 and 5"):
            store.skip_to(GUILD, 6)

    def test_the_guild_history_keeps_the_last_fifty_newest_first_and_forgets_a_requester(self, store: Store) -> None:
        for n in range(55):
            store.record_played(GUILD, entry(f"h{n}", requester="1" if n % 2 else "2"), now=float(n), seq=n)
        store.record_played(GUILD, entry("h54", requester="2"), now=99.0, seq=54)  # the same start noted twice

        history = store.guild_history(GUILD)
        assert [e.entry_id for e in history] == [f"h{n}" for n in range(54, 4, -1)]
        assert store.forget_requester(GUILD, "1") == 25
        assert {e.requester_id for e in store.guild_history(GUILD)} == {"", "2"}
        assert store.get_guild(GUILD).queue == ()  # the guild record is untouched

    def test_the_history_ring_wraps_after_fifty_plays_one_small_item_each(self, store: Store) -> None:
        # GIVEN 120 plays, the 51st onwards reusing the slots of the first
        for n in range(120):
            store.record_played(GUILD, entry(f"r{n}"), now=1000.0 + n, seq=n)

        # THEN the 50 newest are read, newest first, in 50 slot items of at most one write unit
        assert [e.entry_id for e in store.guild_history(GUILD)] == [f"r{n}" for n in range(119, 69, -1)]
        slots = store._get_items([(guild_pk(GUILD), sk) for sk in keys.history_slot_sks()])
        assert len(slots) == keys.HISTORY_SLOTS
        assert slots[(guild_pk(GUILD), keys.history_slot_sk(119 % 50))].data["entry_id"] == "r119"
        assert max(item_size(key, item.data) for key, item in slots.items()) <= 1024
        # AND a play keeps what queueing it again needs, the legacy shape's fields
        newest = store.guild_history(GUILD)[0]
        assert newest.url == "https://youtu.be/r119" and newest.duration_s == 180 and newest.added_at == 1119.0

    def test_a_history_slot_stays_within_one_write_unit_whatever_the_title(self, store: Store) -> None:
        track = {"source": "youtube", "source_id": "x" * 11, "title": "🎵" * 256, "artist": "🎤" * 256,
                 "url": "https://www.youtube.com/watch?v=" + "x" * 11, "duration_s": 200,
                 "thumbnail": "https://i.ytimg.com/vi/" + "x" * 180 + "/hq.jpg", "isrc": "USRC17607839",
                 "fallback_from": "spotify"}  # fmt: skip
        store.record_played(GUILD, QueueEntry("big", Track.from_dict(track), "1" * 19, 1.0), now=1.0, seq=7)
        key = (guild_pk(GUILD), keys.history_slot_sk(7))
        stored = store._get_items([key])[key].data
        assert item_size(key, stored) <= 1024
        played = store.guild_history(GUILD)[0]
        assert played.title.startswith("🎵") and played.title.endswith("…") and played.url == track["url"]

    def test_the_history_merges_the_legacy_item_newest_first_each_entry_once(self, store: Store) -> None:
        # GIVEN the legacy single item, as an older voice task writes it during a rolling deploy
        legacy = [{"entry_id": f"old{n}", "track": entry(f"old{n}").track.to_dict(), "requester_id": "2",
                   "played_at": float(n)} for n in (40, 30, 20, 10)]  # fmt: skip
        legacy.insert(
            0, {"entry_id": "both", "track": entry("both").track.to_dict(), "requester_id": "2", "played_at": 45.0}
        )
        store._put_items([((guild_pk(GUILD), GUILD_HISTORY_SK), {"items": legacy}, None)])
        # AND plays in the ring, before, between and after the legacy ones (one entry in both)
        for seq, (entry_id, at) in enumerate([("new5", 5.0), ("new25", 25.0), ("both", 50.0), ("new60", 60.0)]):
            store.record_played(GUILD, entry(entry_id), now=at, seq=seq)

        # THEN one history, newest first, every entry once (at its newest play)
        history = store.guild_history(GUILD)
        assert [e.entry_id for e in history] == ["new60", "both", "old40", "old30", "new25", "old20", "old10", "new5"]
        assert history[1].added_at == 50.0

    def test_forget_me_clears_the_requester_in_the_ring_and_in_the_legacy_item(self, store: Store) -> None:
        user = "444444444444444444"
        legacy = [{"entry_id": f"old{n}", "track": entry(f"old{n}").track.to_dict(),
                   "requester_id": user if n % 2 else "2", "played_at": float(n)} for n in range(4, 0, -1)]  # fmt: skip
        store._put_items([((guild_pk(GUILD), GUILD_HISTORY_SK), {"items": legacy}, None)])
        for n in range(60):  # wrapped: the ring holds plays 10-59
            store.record_played(GUILD, entry(f"new{n}", requester=user if n % 3 == 0 else "2"), now=10.0 + n, seq=n)

        # WHEN the user forgets themselves: 16 of the ring's plays (12, 15 … 57) and 2 of the legacy ones
        assert store.forget_requester(GUILD, user) == 16 + 2
        # THEN no play names them any more, in either shape, and every play is still there
        assert store.forget_requester(GUILD, user) == 0
        assert store.guild_history(GUILD)[0].entry_id == "new59"
        legacy_after = store._get_items([(guild_pk(GUILD), GUILD_HISTORY_SK)])[(guild_pk(GUILD), GUILD_HISTORY_SK)]
        assert [i["requester_id"] for i in legacy_after.data["items"]] == ["2", "", "2", ""]
        slots = store._get_items([(guild_pk(GUILD), sk) for sk in keys.history_slot_sks()])
        assert len(slots) == 50 and all(item.data["requester_id"] != user for item in slots.values())
        assert sum(1 for item in slots.values() if item.data["requester_id"] == "") == 16

    def test_shuffle_keeps_every_entry_exactly_once(self, store: Store) -> None:
        ids = [f"s{i}" for i in range(20)]
        fill(store, GUILD, ids)

        count = store.shuffle(GUILD, random.Random(7))

        queue = store.get_guild(GUILD).queue
        assert count == 20
        assert Counter(queue) == Counter(ids)
        assert list(queue) != ids
        assert fetchable_ids(store, GUILD, queue) == list(queue)

    def test_remove_takes_out_one_entry_and_keeps_the_rest(self, store: Store) -> None:
        fill(store, GUILD, self.IDS)

        removed = store.remove_at(GUILD, 3)

        queue = store.get_guild(GUILD).queue
        assert removed.entry_id == "c"
        assert queue == ("a", "b", "d", "e")
        assert fetchable_ids(store, GUILD, self.IDS) == list(queue)

    @pytest.mark.parametrize("position", [0, 6, -1])
    def test_bad_positions_are_refused_with_the_valid_range(self, store: Store, position: int) -> None:
        fill(store, GUILD, self.IDS)

        with pytest.raises(InvalidInputError, match="between 1 and 5"):
            store.remove_at(GUILD, position)
        with pytest.raises(InvalidInputError, match="between 1 and 5"):
            store.move(GUILD, position, 1)
        with pytest.raises(InvalidInputError, match="between 1 and 5"):
            store.move(GUILD, 1, position)
        assert store.get_guild(GUILD).queue == self.IDS

    def test_editing_an_empty_queue_says_it_is_empty(self, store: Store) -> None:
        with pytest.raises(QueueEmptyError):
            store.remove_at(GUILD, 1)
        with pytest.raises(QueueEmptyError):
            store.move(GUILD, 1, 1)
        with pytest.raises(QueueEmptyError):
            store.shuffle(GUILD)
        assert store.get_guild(GUILD).queue == ()

    def test_clear_empties_the_queue_and_deletes_its_entries(self, store: Store) -> None:
        fill(store, GUILD, self.IDS)

        assert store.clear_queue(GUILD) == 5

        assert store.get_guild(GUILD).queue == ()
        assert store.get_entries(GUILD, self.IDS) == []


# ---------------------------------------------------------------------- appends: cap and idempotence
class TestAppend:
    def test_appending_past_the_cap_changes_nothing(self, store: Store) -> None:
        # GIVEN a queue one short of its cap
        fill(store, GUILD, ["a", "b", "c"], cap=4)
        before = store.get_guild(GUILD)
        before_entries = store.get_entries(GUILD, before.queue)

        # WHEN two more are appended
        with pytest.raises(QueueFullError, match="4 tracks at most"):
            store.append_entries(GUILD, [entry("d"), entry("e")], cap=4)

        # THEN the queue and the stored entries are as they were, and the rejected entries are gone
        assert store.get_guild(GUILD) == before
        assert store.get_entries(GUILD, before.queue) == before_entries
        assert store.get_entries(GUILD, ["d", "e"]) == []

    def test_appending_up_to_the_cap_is_allowed(self, store: Store) -> None:
        fill(store, GUILD, ["a", "b", "c"], cap=4)

        record = fill(store, GUILD, ["d"], cap=4)

        assert record.queue == ("a", "b", "c", "d")

    def test_a_redelivered_append_enqueues_nothing(self, store: Store) -> None:
        # GIVEN a job that already appended its entries
        first = fill(store, GUILD, ["job1-0", "job1-1"])

        # WHEN the same job is delivered again
        again = fill(store, GUILD, ["job1-0", "job1-1"])

        # THEN the queue holds each entry once and was not rewritten
        assert again.queue == ("job1-0", "job1-1")
        assert again.version == first.version

    def test_an_entry_now_playing_is_not_queued_again(self, store: Store) -> None:
        fill(store, GUILD, ["a"])
        lease = running_lease(store)
        store.pop_head(GUILD, lease.generation)

        record = fill(store, GUILD, ["a", "b"])

        assert record.queue == ("b",)

    def test_a_rejected_append_keeps_the_entry_now_playing(self, store: Store) -> None:
        # GIVEN "a" playing and a full queue
        fill(store, GUILD, ["a"], cap=1)
        lease = running_lease(store)
        store.pop_head(GUILD, lease.generation)
        fill(store, GUILD, ["c"], cap=1)

        # WHEN a redelivered job holding "a" and a new "d" hits the cap
        with pytest.raises(QueueFullError):
            store.append_entries(GUILD, [entry("a"), entry("d")], cap=1)

        # THEN the playing entry is still stored; only the rejected new one is gone
        assert fetchable_ids(store, GUILD, ["a", "c", "d"]) == ["a", "c"]


# ---------------------------------------------------------------------- playback order
class TestPopHead:
    def test_pop_moves_the_head_into_now_playing(self, store: Store) -> None:
        fill(store, GUILD, ["a", "b"])
        lease = running_lease(store)

        popped = store.pop_head(GUILD, lease.generation)

        record = store.get_guild(GUILD)
        assert popped == entry("a")
        assert record.actual.now_playing == entry("a")
        assert record.queue == ("b",)

    def test_the_next_pop_finishes_the_previous_entry(self, store: Store) -> None:
        fill(store, GUILD, ["a", "b"])
        lease = running_lease(store)
        store.pop_head(GUILD, lease.generation)

        popped = store.pop_head(GUILD, lease.generation)

        assert popped is not None
        assert popped.entry_id == "b"
        assert store.get_guild(GUILD).queue == ()
        assert fetchable_ids(store, GUILD, ["a", "b"]) == ["b"]

    def test_loop_queue_sends_the_finished_entry_to_the_tail(self, store: Store) -> None:
        fill(store, GUILD, ["a", "b", "c"])
        lease = running_lease(store)
        store.pop_head(GUILD, lease.generation)

        popped = store.pop_head(GUILD, lease.generation, requeue_current=True)

        assert popped is not None
        assert popped.entry_id == "b"
        assert store.get_guild(GUILD).queue == ("c", "a")
        assert fetchable_ids(store, GUILD, ["a"]) == ["a"]

    def test_popping_an_empty_queue_gives_none_and_stops_playing(self, store: Store) -> None:
        fill(store, GUILD, ["a"])
        lease = running_lease(store)
        store.pop_head(GUILD, lease.generation)

        assert store.pop_head(GUILD, lease.generation) is None

        assert store.get_guild(GUILD).actual.now_playing is None

    def test_popping_a_guild_that_never_queued_gives_none(self, store: Store) -> None:
        lease = running_lease(store)

        assert store.pop_head(GUILD, lease.generation) is None


# ---------------------------------------------------------------------- interaction dedupe
class TestDedupe:
    def test_an_interaction_is_claimed_once(self, store: Store) -> None:
        assert store.claim_interaction("900", ttl_s=DEDUPE_TTL_S) is True
        assert store.claim_interaction("900", ttl_s=DEDUPE_TTL_S) is False
        assert store.claim_interaction("901", ttl_s=DEDUPE_TTL_S) is True

    def test_an_expired_claim_can_be_claimed_again(self, store: Store, clock: FakeClock) -> None:
        store.claim_interaction("900", ttl_s=DEDUPE_TTL_S)
        clock.advance(DEDUPE_TTL_S + 1)

        assert store.claim_interaction("900", ttl_s=DEDUPE_TTL_S) is True
        assert store.claim_interaction("900", ttl_s=DEDUPE_TTL_S) is False

    def test_the_saved_response_answers_a_repeat(self, store: Store) -> None:
        store.claim_interaction("900", ttl_s=DEDUPE_TTL_S)
        assert store.interaction_response("900") is None

        store.save_interaction_response("900", '{"type":4}', ttl_s=DEDUPE_TTL_S)

        assert store.interaction_response("900") == '{"type":4}'
        assert store.claim_interaction("900", ttl_s=DEDUPE_TTL_S) is False

    def test_a_released_claim_can_be_claimed_again_at_once(self, store: Store) -> None:
        store.claim_interaction("900", ttl_s=DEDUPE_TTL_S)

        assert store.release_interaction("900") is True

        assert store.interaction_response("900") is None
        assert store.claim_interaction("900", ttl_s=DEDUPE_TTL_S) is True
        assert store.claim_interaction("900", ttl_s=DEDUPE_TTL_S) is False

    def test_releasing_keeps_a_saved_response_and_ignores_what_was_never_claimed(self, store: Store) -> None:
        store.claim_interaction("900", ttl_s=DEDUPE_TTL_S)
        store.save_interaction_response("900", '{"type":4}', ttl_s=DEDUPE_TTL_S)

        assert store.release_interaction("900") is False
        assert store.release_interaction("901") is False

        assert store.interaction_response("900") == '{"type":4}'
        assert store.claim_interaction("900", ttl_s=DEDUPE_TTL_S) is False


# ---------------------------------------------------------------------- expiry
class TestExpiry:
    def test_expired_items_read_as_absent_though_the_backend_still_holds_them(
        self, store: Store, clock: FakeClock
    ) -> None:
        # GIVEN a saved response whose TTL has passed
        store.claim_interaction("900", ttl_s=DEDUPE_TTL_S)
        store.save_interaction_response("900", "answer", ttl_s=DEDUPE_TTL_S)
        clock.advance(DEDUPE_TTL_S + 1)

        # THEN the backend still has the item (TTL deletion is lazy; moto never deletes)
        assert store._get_item(("I#900", DEDUPE_SK)) is not None
        # BUT the store reads it as absent
        assert store.interaction_response("900") is None

    def test_expired_entries_are_absent_and_skipped_by_pop(self, store: Store, clock: FakeClock) -> None:
        # GIVEN a queue whose first entries outlived the entry TTL, and one added later
        fill(store, GUILD, ["old-1", "old-2"])
        clock.advance(ENTRY_TTL_S + 1)
        fill(store, GUILD, ["new"])
        lease = running_lease(store)

        # THEN the expired ones cannot be fetched and pop goes straight to the live one
        assert fetchable_ids(store, GUILD, ["old-1", "old-2", "new"]) == ["new"]
        popped = store.pop_head(GUILD, lease.generation)
        assert popped is not None
        assert popped.entry_id == "new"
        assert store.get_guild(GUILD).queue == ()


# ---------------------------------------------------------------------- the sparse active index
class TestActiveGuilds:
    def test_lists_exactly_the_guilds_with_a_live_lease_or_queued_music(self, store: Store) -> None:
        # GIVEN one guild with music queued, one with a lease, and one that only changed settings
        fill(store, GUILD, ["a"])
        running_lease(store, OTHER_GUILD)
        store.update_settings("444444444444444444", vote_skip=False)

        # THEN only the first two are active
        assert store.active_guild_ids() == sorted([GUILD, OTHER_GUILD])

    def test_drops_a_guild_once_its_queue_is_cleared_and_lease_released(self, store: Store) -> None:
        # GIVEN a guild with queued music and a running task
        fill(store, GUILD, ["a", "b"])
        lease = running_lease(store)
        assert store.active_guild_ids() == [GUILD]

        # WHEN the queue is cleared it stays active while the lease lives
        store.clear_queue(GUILD)
        assert store.active_guild_ids() == [GUILD]

        # WHEN the lease is released THEN the guild is gone from the index
        store.release_lease(GUILD, generation=lease.generation)
        assert store.active_guild_ids() == []

    def test_is_empty_for_a_fresh_store(self, store: Store) -> None:
        assert store.active_guild_ids() == []


# ---------------------------------------------------------------------- paging
class TestPaging:
    def test_a_page_is_a_slice_with_totals_for_the_whole_queue(self, store: Store) -> None:
        entries = [entry(f"p{i:02}", duration_s=60 + i) for i in range(12)]
        entries[5] = entry("p05", duration_s=None)  # a live stream
        store.append_entries(GUILD, entries, cap=CAP)

        page = store.page_queue(GUILD, offset=10, limit=10)

        assert [e.entry_id for e in page.entries] == ["p10", "p11"]
        assert page.total == 12
        assert page.total_duration_s == sum(60 + i for i in range(12) if i != 5)
        assert page.unknown_durations == 1

    def test_the_first_page(self, store: Store) -> None:
        fill(store, GUILD, [f"p{i:02}" for i in range(12)])

        page = store.page_queue(GUILD, offset=0, limit=5)

        assert [e.entry_id for e in page.entries] == ["p00", "p01", "p02", "p03", "p04"]
        assert page.total == 12

    def test_an_empty_queue_gives_an_empty_page(self, store: Store) -> None:
        page = store.page_queue(GUILD, offset=0, limit=10)

        assert (page.entries, page.total, page.total_duration_s, page.unknown_durations) == ([], 0, 0, 0)

    def test_many_entries_are_fetched_in_order(self, store: Store) -> None:
        # More than one DynamoDB batch (100 keys per BatchGetItem)
        ids = [f"m{i:03}" for i in range(260)]
        fill(store, GUILD, ids)

        assert [e.entry_id for e in store.get_entries(GUILD, ids)] == ids


# ---------------------------------------------------------------------- round trip
class TestRoundTrip:
    def test_every_guild_record_field_survives_a_write_and_a_read(self, store: Store, clock: FakeClock) -> None:
        # GIVEN a record with every field away from its default
        playing = QueueEntry(
            entry_id="np-1",
            track=Track.from_stored(
                {
                    "title": "Ünïcode — title",
                    "url": "https://youtu.be/x",
                    "duration_s": 245,
                    "thumbnail": None,
                    "artists": ["A", "B"],
                    "explicit": False,
                    "score": 0.25,
                    "source_ids": {"youtube": "x", "isrc": "GBAAA0000001"},
                }
            ),
            requester_id="333333333333333333",
            added_at=1_800_000_000.125,
        )
        full = GuildRecord(
            guild_id=GUILD,
            settings=GuildSettings(
                dj_role_id="555555555555555555", twenty_four_seven=True, idle_timeout_s=600, vote_skip=False
            ),
            desired=Desired(
                paused=True,
                volume=35,
                loop=LoopMode.QUEUE,
                autoplay=True,
                skip_seq=3,
                stop_seq=2,
                seek_seq=4,
                seek_ms=61_500,
                filter=FilterPreset.NIGHTCORE,
                speed=1.35,
                pitch=-7,
            ),
            actual=Actual(
                now_playing=playing,
                started_at=1_800_000_010.75,
                position_ms=12_345,
                paused=True,
                volume=35,
                applied_skip_seq=3,
                applied_stop_seq=2,
                applied_seek_seq=4,
                listener_ids=("333333333333333333", "666666666666666666"),
                message_channel_id="777777777777777777",
                message_id="888888888888888888",
                updated_at=1_800_000_011.5,
                rate=1.6875,
            ),
            queue=("q1", "q2"),
            voice_channel_id="999999999999999999",
            text_channel_id="777777777777777777",
            lease=Lease(
                state=LeaseState.RUNNING,
                generation=7,
                holder="arn:aws:ecs:us-east-1:123456789012:task/c/abc",
                expires_at=clock() + 45.5,
                resume={"entry_id": "np-1", "position_ms": 98_765},
            ),
            last_active=1_800_000_009.25,
        )

        # WHEN it is written and read back
        written = store.update_guild(GUILD, lambda current: full.evolve(version=current.version))
        read = store.get_guild(GUILD)

        # THEN every field comes back equal, with the version the write gave it
        assert read == written == full.evolve(version=1)

    def test_set_filters_keeps_the_other_desired_fields(self, store: Store) -> None:
        store.set_volume(GUILD, 40)
        store.pause(GUILD)
        written = store.set_filters(GUILD, Filters(FilterPreset.BASS_HIGH, speed=0.75, pitch=3))
        read = store.get_guild(GUILD)

        assert read == written
        assert read.desired.filters == Filters(FilterPreset.BASS_HIGH, 0.75, 3)
        assert (read.desired.volume, read.desired.paused) == (40, True)

    def test_update_settings_changes_the_named_settings_and_keeps_the_others(self, store: Store) -> None:
        # GIVEN every setting changed from its default
        every = GuildSettings(
            dj_role_id="555555555555555555",
            twenty_four_seven=True,
            idle_timeout_s=600,
            vote_skip=False,
            vote_skip_percent=75,
            dj_only=True,
            dj_only_adding=True,
            lyrics_in_card=True,
        )
        store.update_settings(GUILD, **vars(every))
        assert store.get_guild(GUILD).settings == every
        # WHEN one is changed, and the DJ role cleared with an explicit None
        written = store.update_settings(GUILD, vote_skip_percent=60, dj_role_id=None)
        # THEN those two changed and every other one was kept
        expected = replace(every, vote_skip_percent=60, dj_role_id=None)
        assert store.get_guild(GUILD).settings == written.settings == expected

    def test_each_write_bumps_the_version(self, store: Store) -> None:
        first = store.update_settings(GUILD, vote_skip=False)
        second = store.set_channels(GUILD, voice_channel_id="1", text_channel_id=None)

        assert (first.version, second.version) == (1, 2)
        assert store.get_guild(GUILD) == second

    def test_an_eventually_consistent_read_is_the_record_or_an_older_version(self, store: Store) -> None:
        # GIVEN a guild record written twice
        store.update_settings(GUILD, vote_skip=False)
        written = store.pause(GUILD)

        # WHEN it is read eventually consistently (the voice task's timer polls) and strongly
        relaxed = store.get_guild(GUILD, consistent=False)
        strong = store.get_guild(GUILD, consistent=True)

        # THEN the strong read is the last write; the relaxed one is a version of the same record,
        # never newer (on one copy, as SQLite and moto keep, it is the last write too)
        assert strong == written == store.get_guild(GUILD)
        assert relaxed.guild_id == GUILD and 1 <= relaxed.version <= written.version
        assert relaxed == written
        assert store.get_guild(OTHER_GUILD, consistent=False) == GuildRecord(guild_id=OTHER_GUILD)

    def test_an_unknown_guild_reads_as_defaults(self, store: Store) -> None:
        assert store.get_guild(GUILD) == GuildRecord(guild_id=GUILD)

    def test_entries_survive_a_write_and_a_read(self, store: Store) -> None:
        entries = [entry("e1"), entry("e2", duration_s=None)]

        store.append_entries(GUILD, entries, cap=CAP)

        assert store.get_entries(GUILD, ["e2", "missing", "e1"]) == [entries[1], entries[0]]


# ---------------------------------------------------------------------- adapter plumbing (not the shared contract)
class _ThrottledClient:
    """A real (moto) DynamoDB client that, like a throttled table, leaves half of every other batch
    unprocessed: those requests are really not done, so the adapter must retry them."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.batch_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _throttle_now(self) -> bool:
        self.batch_calls += 1
        return self.batch_calls % 2 == 1

    def batch_write_item(self, *, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        keep = len(requests) // 2 if self._throttle_now() and len(requests) > 1 else len(requests)
        self._client.batch_write_item(RequestItems={table: requests[:keep]})
        return {"UnprocessedItems": {table: requests[keep:]} if requests[keep:] else {}}

    def batch_get_item(self, *, RequestItems: dict[str, dict[str, Any]]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        keep = len(keys) // 2 if self._throttle_now() and len(keys) > 1 else len(keys)
        response = self._client.batch_get_item(RequestItems={table: {**request, "Keys": keys[:keep]}})
        left = {table: {**request, "Keys": keys[keep:]}} if keys[keep:] else {}
        return {"Responses": response["Responses"], "UnprocessedKeys": left}


class _ConsistencyRecorder:
    """A real (moto) DynamoDB client that notes the ConsistentRead each GetItem asked for."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.seen: list[bool] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_item(self, **request: Any) -> Any:
        self.seen.append(bool(request.get("ConsistentRead", False)))
        return self._client.get_item(**request)


class TestDynamoDBPlumbing:
    def test_a_write_that_lost_a_race_retries_on_the_item_its_failure_returned_reading_nothing(self) -> None:
        with mock_aws():
            # GIVEN a guild record, and a second writer that changes it between our read and our write
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_dynamodb_table(client, "cas")
            store = DynamoDBStore("cas", client=client)
            other = DynamoDBStore("cas", client=boto3.client("dynamodb", region_name="us-east-1"))
            store.update_guild(GUILD, lambda r: r.evolve(desired=replace(r.desired, volume=80)))
            reads: list[str] = []
            client.meta.events.register("before-call.dynamodb.GetItem", lambda **_: reads.append("GetItem"))
            raced: list[int] = []

            def pause(record: GuildRecord) -> GuildRecord:
                if not raced:
                    raced.append(
                        other.update_guild(GUILD, lambda r: r.evolve(desired=replace(r.desired, volume=30))).version
                    )
                return record.evolve(desired=replace(record.desired, paused=True))

            # WHEN we pause it
            written = store.update_guild(GUILD, pause)

        # THEN the second try started from the record the failed write returned: one read in all,
        # and both changes are kept
        assert reads == ["GetItem"]
        assert (written.desired.paused, written.desired.volume, written.version) == (True, 30, raced[0] + 1)

    def test_two_conditional_writes_failing_at_once_on_a_new_client_both_come_back_as_conflicts(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # GIVEN botocore building a client's exception classes on their first use (with no lock),
        # slowed down, as a busy machine's thread switches can, so that two threads' first failed
        # conditions both build them and one of them raises its own class after the other's is set
        from botocore import errorfactory, exceptions  # noqa: PLC0415

        build = errorfactory.ClientExceptionsFactory._create_client_exceptions
        construct = exceptions.ClientError.__init__

        def slow_build(factory: Any, service_model: Any) -> Any:
            time.sleep(0.05)
            return build(factory, service_model)

        def slow_construct(error: Any, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.05)
            construct(error, *args, **kwargs)

        monkeypatch.setattr(errorfactory.ClientExceptionsFactory, "_create_client_exceptions", slow_build)
        monkeypatch.setattr(exceptions.ClientError, "__init__", slow_construct)
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_dynamodb_table(client, "race")
            store = DynamoDBStore("race", client=client)
            key = (guild_pk(GUILD), "RACE")
            assert store._put_item(key, {"n": 1}, expected_version=None, now=time.time())
            barrier = threading.Barrier(2)

            # WHEN two threads each try to create the item that exists
            def create() -> bool:
                barrier.wait()
                return store._put_item(key, {"n": 2}, expected_version=None, now=time.time())

            with ThreadPoolExecutor(2) as pool:
                outcomes = [future.result() for future in [pool.submit(create), pool.submit(create)]]

        # THEN both are told their condition failed; neither gets an exception it cannot catch
        # (each would, if the store let them build the client's exception classes each their own)
        assert outcomes == [False, False]

    def test_unprocessed_batch_work_is_retried_until_done(self) -> None:
        with mock_aws():
            # GIVEN a table that throttles half of every other batch request
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_dynamodb_table(client, "throttled")
            throttled = _ThrottledClient(client)
            store = DynamoDBStore("throttled", client=throttled)  # type: ignore[arg-type]
            ids = [f"b{i:03}" for i in range(130)]  # 6 write batches, 2 read batches

            # WHEN entries are appended, read back and cleared
            fill(store, GUILD, ids)
            fetched = fetchable_ids(store, GUILD, ids)
            store.clear_queue(GUILD)

            # THEN nothing was lost to throttling, and retries happened
            assert fetched == ids
            assert store.get_entries(GUILD, ids) == []
            assert throttled.batch_calls > 6 + 2 + 6

    def test_the_guild_views_copy_is_never_read_after_a_release_without_views_wrote_the_record(self) -> None:
        with mock_aws():
            # GIVEN a guild record this release wrote: it carries the view /queue reads
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_dynamodb_table(client, "views")
            store = DynamoDBStore("views", client=client)
            fill(store, GUILD, [f"v{i}" for i in range(12)])
            key = {"pk": {"S": guild_pk(GUILD)}, "sk": {"S": keys.GUILD_SK}}
            written = client.get_item(TableName="views", Key=key)["Item"]
            assert json.loads(written["view"]["S"])["version"] == int(written["version"]["N"])
            assert [e.entry_id for e in store.queue_page(GUILD, number=1, size=10).entries][:2] == ["v0", "v1"]

            # WHEN an older release (as b01fb58 wrote items: pk, sk, data, version, active) removes the
            # first two entries: it rewrites the whole item, its totals kept as it read them
            old = dict(written)
            del old["view"]
            data = old["data"]["M"]
            data["queue"] = {"L": data["queue"]["L"][2:]}
            old["version"] = {"N": str(int(written["version"]["N"]) + 1)}
            client.put_item(TableName="views", Item=old)

            # THEN /queue shows the older release's queue, not the copy the view had
            page = store.queue_page(GUILD, number=1, size=10)
            assert [e.entry_id for e in page.entries] == [f"v{i}" for i in range(2, 12)]
            assert page.total == 10
            # AND the next write by this release carries a view again, of the record as it is now
            store.append_entries(GUILD, [entry("v12")], cap=CAP)
            again = client.get_item(TableName="views", Key=key)["Item"]
            view = json.loads(again["view"]["S"])
            assert view["version"] == int(again["version"]["N"])
            assert view["data"]["queue_totals"]["count"] == store.queue_page(GUILD, number=1, size=10).total

    def test_reads_are_strongly_consistent_unless_asked_and_writes_always_read_strongly(self) -> None:
        with mock_aws():
            # GIVEN a store whose client records the ConsistentRead of each GetItem
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_dynamodb_table(client, "reads")
            recording = _ConsistencyRecorder(client)
            store = DynamoDBStore("reads", client=recording)  # type: ignore[arg-type]
            store.set_volume(GUILD, 60)
            recording.seen.clear()

            # WHEN the record is read by default, eventually consistently, then updated
            store.get_guild(GUILD)
            store.get_guild(GUILD, consistent=False)
            store.set_volume(GUILD, 70)

            # THEN only the read that asked is eventually consistent: the conditional write's read is strong
            assert recording.seen == [True, False, True]

    def test_creating_the_table_twice_is_harmless_and_enables_ttl(self) -> None:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")

            create_dynamodb_table(client, "twice")
            create_dynamodb_table(client, "twice")

            table = client.describe_table(TableName="twice")["Table"]
            expected = table_definition("twice")
            assert table["KeySchema"] == expected["KeySchema"]
            assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
            (index,) = table["GlobalSecondaryIndexes"]
            assert index["IndexName"] == "active-index"
            assert index["KeySchema"] == expected["GlobalSecondaryIndexes"][0]["KeySchema"]
            ttl = client.describe_time_to_live(TableName="twice")["TimeToLiveDescription"]
            assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", ttl_attribute())

    def test_build_store_uses_the_injected_client(self) -> None:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_dynamodb_table(client, "built")
            settings = Settings(store_backend="dynamodb", dynamodb_table="built")

            store = build_store(settings, client=client)

            assert isinstance(store, DynamoDBStore)
            assert store.client is client
            assert store.claim_interaction("1", ttl_s=60) is True


class TestSQLitePlumbing:
    def test_the_schema_is_idempotent_and_the_active_index_is_sparse(self, tmp_path: Path) -> None:
        connection = sqlite3.connect(tmp_path / "schema.sqlite3")

        create_sqlite_schema(connection)
        create_sqlite_schema(connection)

        (index_sql,) = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'items_active'").fetchone()
        assert "WHERE active IS NOT NULL" in index_sql
        plan = connection.execute("EXPLAIN QUERY PLAN SELECT pk, sk FROM items WHERE active IS NOT NULL").fetchall()
        assert "items_active" in str(plan)
        connection.close()

    def test_build_store_opens_the_file_of_an_injected_connection(self, tmp_path: Path) -> None:
        path = tmp_path / "injected.sqlite3"
        connection = sqlite3.connect(path)
        settings = Settings(store_backend="sqlite", sqlite_path=str(tmp_path / "unused.sqlite3"))

        store = build_store(settings, connection=connection)
        store.claim_interaction("1", ttl_s=60)

        assert isinstance(store, SQLiteStore)
        assert connection.execute("SELECT count(*) FROM items").fetchone() == (1,)
        assert not (tmp_path / "unused.sqlite3").exists()
        store.close()
        connection.close()

    def test_processes_sharing_the_file_lose_no_append(self, tmp_path: Path) -> None:
        # GIVEN four processes (like the api server and voice tasks) appending to one file
        path = tmp_path / "shared.sqlite3"
        SQLiteStore(path).close()
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_append_from_process, args=(str(path), p)) for p in range(4)]

        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)

        # THEN every append of every process landed once
        assert [p.exitcode for p in processes] == [0, 0, 0, 0]
        store = SQLiteStore(path)
        assert Counter(store.get_guild(GUILD).queue) == Counter(f"p{p}-{n}" for p in range(4) for n in range(10))
        store.close()


def _append_from_process(path: str, process_index: int) -> None:
    store = SQLiteStore(path)
    for n in range(10):
        store.append_entries(GUILD, [entry(f"p{process_index}-{n}")], cap=CAP)
    store.close()


class TestSmallRecords:
    """Auxiliary records (track cache, breakers, identify budget) share one compare-and-swap primitive."""

    def test_an_absent_record_reads_as_none_and_a_written_one_round_trips(self, store: Store) -> None:
        assert store.get_record("T#youtube#abc", "TRACK") is None

        store.update_record("T#youtube#abc", "TRACK", lambda _: {"title": "Song", "duration_s": 200})

        assert store.get_record("T#youtube#abc", "TRACK") == {"title": "Song", "duration_s": 200}

    def test_concurrent_increments_are_never_lost(self, store: Store) -> None:
        def increment(_: int) -> None:
            store.update_record("B#counter", "STATE", lambda cur: {"n": (cur or {"n": 0})["n"] + 1})

        with ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(increment, range(20)))

        assert store.get_record("B#counter", "STATE") == {"n": 20}

    def test_an_expired_record_is_absent_and_can_be_written_again(self, store: Store, clock: FakeClock) -> None:
        store.update_record("T#sc#1", "TRACK", lambda _: {"v": 1}, ttl_s=60)
        clock.advance(61)

        assert store.get_record("T#sc#1", "TRACK") is None
        assert store.update_record("T#sc#1", "TRACK", lambda cur: {"v": 2, "saw": cur}, ttl_s=60) == {
            "v": 2,
            "saw": None,
        }

    def test_returning_the_current_value_writes_nothing(self, store: Store) -> None:
        store.update_record("B#x", "STATE", lambda _: {"v": 1})

        result = store.update_record("B#x", "STATE", lambda cur: cur)

        assert result == {"v": 1}

    def test_guild_and_dedupe_keys_are_refused(self, store: Store) -> None:
        with pytest.raises(ValueError, match="guild or dedupe"):
            store.update_record("G#1", "GUILD", lambda _: {})


class TestPurge:
    def test_purging_leaves_live_items_and_readers_never_see_expired_ones(self, store: Store, clock: FakeClock) -> None:
        store.claim_interaction("old", ttl_s=10)
        store.update_record("T#youtube#x", "TRACK", lambda _: {"title": "kept"}, ttl_s=3600)
        clock.advance(11)

        purged = store.purge_expired()

        assert purged in (0, 1)  # SQLite deletes the expired claim; DynamoDB leaves it to its TTL
        assert store.claim_interaction("old", ttl_s=10) is True
        assert store.get_record("T#youtube#x", "TRACK") == {"title": "kept"}


# ---------------------------------------------------------------------- DynamoDB's limits, on every adapter
class TestDynamoDBLimits:
    def test_an_item_over_400_kb_is_refused_alike_and_nothing_is_written(self, store: Store) -> None:
        # GIVEN a record just under DynamoDB's item limit, and one over it
        near = {"text": "x" * (390 * 1024)}
        over = {"text": "x" * (401 * 1024)}

        # THEN the first is stored and read back whole
        store.update_record("Q#limits", "NEAR", lambda _current: near)
        assert store.get_record("Q#limits", "NEAR") == near
        # AND the second is refused with the same error on every adapter, leaving nothing behind
        with pytest.raises(ItemTooLargeError):
            store.update_record("Q#limits", "OVER", lambda _current: over)
        assert store.get_record("Q#limits", "OVER") is None
        with pytest.raises(ItemTooLargeError):
            store._put_items([(("Q#limits", "BATCH"), over, None)])
        assert store._get_items([("Q#limits", "BATCH")]) == {}

    def test_batches_past_dynamodbs_request_limits_are_split_and_complete(self, store: Store) -> None:
        # GIVEN 60 items written in one call (DynamoDB takes 25 a request)
        items = [((f"Q#batch#{n}", "ITEM"), {"n": n}, None) for n in range(60)]
        store._put_items(items)

        # THEN one read of 250 keys (DynamoDB takes 100 a request) finds all 60, and only them
        keys = [(f"Q#batch#{n}", "ITEM") for n in range(250)]
        found = store._get_items(keys)
        assert sorted(item.data["n"] for item in found.values()) == list(range(60))
        # AND one delete of all 250 removes them
        store._delete_items(keys)
        assert store._get_items(keys) == {}


# ---------------------------------------------------------------------- typed desired-state operations
class TestDesiredOperations:
    def test_each_operation_changes_its_own_field_and_nothing_else(self, store: Store) -> None:
        # GIVEN a guild with its defaults
        before = store.get_guild(GUILD).desired

        # WHEN each typed operation is called once
        store.skip(GUILD)
        store.seek(GUILD, 42_000)
        store.pause(GUILD)
        store.set_volume(GUILD, 35)
        store.set_loop(GUILD, LoopMode.TRACK)
        store.set_autoplay(GUILD, True)

        # THEN the desired state carries exactly those changes, counters bumped once each
        assert store.get_guild(GUILD).desired == replace(
            before, skip_seq=1, seek_seq=1, seek_ms=42_000, paused=True, volume=35, loop=LoopMode.TRACK, autoplay=True
        )

    def test_resume_and_stop_unpause(self, store: Store) -> None:
        store.pause(GUILD)
        assert store.resume(GUILD).desired.paused is False
        store.pause(GUILD)

        stopped = store.stop(GUILD).desired

        assert (stopped.stop_seq, stopped.paused, stopped.skip_seq) == (1, False, 0)

    def test_a_negative_seek_is_refused_before_any_write(self, store: Store) -> None:
        with pytest.raises(ValueError, match="position_ms"):
            store.seek(GUILD, -1)
        assert store.get_guild(GUILD).version == 0

    def test_a_misspelt_operation_or_setting_fails_where_it_is_written(self, store: Store) -> None:
        # The old update_desired(**changes) accepted any name and failed inside the CAS loop.
        with pytest.raises(AttributeError):
            getattr(store, "update_desired")  # noqa: B009 - the removed catch-all must stay removed
        with pytest.raises(TypeError):
            store.update_settings(GUILD, vote_skp=False)  # type: ignore[call-arg]
        assert store.get_guild(GUILD).version == 0

    def test_update_settings_changes_only_the_settings_named(self, store: Store) -> None:
        store.update_settings(GUILD, dj_role_id="555555555555555555", vote_skip_percent=70)

        written = store.update_settings(GUILD, dj_role_id=None, idle_timeout_s=600)

        assert written.settings == GuildSettings(dj_role_id=None, vote_skip_percent=70, idle_timeout_s=600)

    def test_concurrent_skips_and_volume_changes_are_all_kept(self, store: Store) -> None:
        run_together(20, lambda i: store.skip(GUILD) if i % 2 else store.set_volume(GUILD, i))

        desired = store.get_guild(GUILD).desired
        assert desired.skip_seq == 10
        assert desired.volume in range(0, 20, 2)


# ---------------------------------------------------------------------- insert at a position, remove a range
class TestInsertAtAndRemoveRange:
    def test_entries_go_before_the_position_in_their_order(self, store: Store) -> None:
        fill(store, GUILD, ["a", "b", "c"])

        written = store.insert_at(GUILD, 2, [entry("x"), entry("y")], cap=CAP)

        assert written.queue == ("a", "x", "y", "b", "c")
        assert fetchable_ids(store, GUILD, written.queue) == list(written.queue)

    def test_a_position_past_the_end_appends_and_one_at_the_head(self, store: Store) -> None:
        fill(store, GUILD, ["a"])

        store.insert_at(GUILD, 99, [entry("z")], cap=CAP)
        written = store.insert_at(GUILD, 1, [entry("h")], cap=CAP)

        assert written.queue == ("h", "a", "z")

    def test_all_or_none_past_the_cap_and_no_items_left_behind(self, store: Store) -> None:
        fill(store, GUILD, ["a", "b"], cap=3)

        with pytest.raises(QueueFullError):
            store.insert_at(GUILD, 1, [entry("x"), entry("y")], cap=3)

        assert store.get_guild(GUILD).queue == ("a", "b")
        assert fetchable_ids(store, GUILD, ["x", "y"]) == []

    def test_a_redelivered_insert_adds_nothing_twice(self, store: Store) -> None:
        fill(store, GUILD, ["a", "b"])
        store.insert_at(GUILD, 2, [entry("x")], cap=CAP)

        again = store.insert_at(GUILD, 1, [entry("x")], cap=CAP)

        assert again.queue == ("a", "x", "b")

    def test_a_position_below_one_is_refused(self, store: Store) -> None:
        with pytest.raises(InvalidInputError):
            store.insert_at(GUILD, 0, [entry("x")], cap=CAP)

    def test_a_range_is_removed_in_one_write_and_its_items_deleted(self, store: Store) -> None:
        fill(store, GUILD, ["a", "b", "c", "d", "e"])
        version = store.get_guild(GUILD).version

        removed = store.remove_range(GUILD, 2, 4)

        after = store.get_guild(GUILD)
        assert [e.entry_id for e in removed] == ["b", "c", "d"]
        assert after.queue == ("a", "e") and after.version == version + 1
        assert fetchable_ids(store, GUILD, ["b", "c", "d"]) == []

    @pytest.mark.parametrize(("start", "end"), [(0, 2), (2, 9), (3, 2)])
    def test_a_range_outside_the_queue_is_refused(self, store: Store, start: int, end: int) -> None:
        fill(store, GUILD, ["a", "b", "c"])

        with pytest.raises(InvalidInputError):
            store.remove_range(GUILD, start, end)

        assert store.get_guild(GUILD).queue == ("a", "b", "c")

    def test_appending_many_is_all_or_none_under_concurrency(self, store: Store) -> None:
        # GIVEN room for 12 entries, and 5 threads each appending 5 at once
        def append(t: int) -> bool:
            try:
                store.append_entries(GUILD, [entry(f"t{t}-{n}") for n in range(5)], cap=12)
            except QueueFullError:
                return False
            return True

        landed = [t for t, ok in enumerate(run_together(5, append)) if ok]

        # THEN exactly two batches landed, whole
        queue = store.get_guild(GUILD).queue
        assert len(landed) == 2
        assert Counter(queue) == Counter(f"t{t}-{n}" for t in landed for n in range(5))


# ---------------------------------------------------------------------- the queue's totals in the guild record
def durations_of(store: Store, guild_id: str = GUILD) -> tuple[int, int, int]:
    """(count, known seconds, unknown) recounted from the entries themselves."""
    queue = store.get_guild(guild_id).queue
    found = {e.entry_id: e.duration_s for e in store.get_entries(guild_id, queue)}
    known = [found[i] for i in queue if found.get(i) is not None]
    return len(queue), sum(d for d in known if d is not None), len(queue) - len(known)


def page_totals(store: Store, guild_id: str = GUILD) -> tuple[int, int, int]:
    page = store.page_queue(guild_id, offset=0, limit=10)
    return page.total, page.total_duration_s, page.unknown_durations


class TestQueueTotals:
    def test_totals_follow_every_kind_of_queue_change(self, store: Store) -> None:
        # GIVEN entries of known and unknown length
        store.append_entries(GUILD, [entry(f"e{i}", duration_s=None if i % 4 == 0 else 60 + i) for i in range(12)],
                             cap=CAP)  # fmt: skip
        checks = [page_totals(store) == durations_of(store)]
        lease = running_lease(store)

        # WHEN the queue is changed every way there is, THEN the totals stay those of its entries
        steps: list[Callable[[], object]] = [
            lambda: store.insert_entries(GUILD, [entry("n1", duration_s=500)], cap=CAP),
            lambda: store.insert_at(GUILD, 3, [entry("i1", duration_s=None), entry("i2", duration_s=7)], cap=CAP),
            lambda: store.remove_at(GUILD, 2),
            lambda: store.remove_range(GUILD, 4, 6),
            lambda: store.move(GUILD, 1, 5),
            lambda: store.shuffle(GUILD, random.Random(7)),
            lambda: store.pop_head(GUILD, lease.generation),
            lambda: store.set_loop(GUILD, LoopMode.QUEUE),
            lambda: store.pop_head(GUILD, lease.generation, requeue_current=True),
            lambda: store.skip_to(GUILD, 3),
            lambda: store.set_loop(GUILD, LoopMode.OFF),
            lambda: store.skip_to(GUILD, 2),
            lambda: store.release_lease(GUILD, generation=lease.generation, resume_position_ms=1_000),
        ]
        for step in steps:
            step()
            checks.append(page_totals(store) == durations_of(store))
        store.clear_queue(GUILD)
        checks.append(page_totals(store) == (0, 0, 0))
        assert all(checks), checks

    def test_a_shuffle_keeps_the_totals_without_reading_an_entry(self, store: Store) -> None:
        store.append_entries(GUILD, [entry(f"s{i}", duration_s=10 * i) for i in range(30)], cap=CAP)
        before = store.get_guild(GUILD).queue_totals

        store.shuffle(GUILD, random.Random(3))

        after = store.get_guild(GUILD).queue_totals
        assert before is not None and after is not None
        assert (after.count, after.duration_s, after.unknown, after.digest) == (
            30,
            sum(10 * i for i in range(30)),
            0,
            before.digest,
        )

    def test_totals_stay_exact_under_concurrent_appends_and_removes(self, store: Store) -> None:
        # GIVEN a queue of 20 entries of different lengths
        store.append_entries(GUILD, [entry(f"base{i}", duration_s=i + 1) for i in range(20)], cap=CAP)

        # WHEN 8 threads append (some of unknown length) while 8 remove the head, all at once
        def work(i: int) -> object:
            if i % 2:
                return store.append_entries(GUILD, [entry(f"new{i}-{n}", duration_s=None if n else 100 + i)
                                                    for n in range(3)], cap=CAP)  # fmt: skip
            return store.remove_at(GUILD, 1)

        run_together(16, work)

        # THEN the stored totals are those of the entries that are queued
        totals = store.get_guild(GUILD).queue_totals
        assert totals is not None
        assert (totals.count, totals.duration_s, totals.unknown) == durations_of(store)
        assert totals.count == 20 - 8 + 8 * 3

    def test_concurrent_shuffles_moves_and_appends_keep_them_too(self, store: Store) -> None:
        fill(store, GUILD, [f"b{i}" for i in range(20)])

        def work(i: int) -> object:
            match i % 3:
                case 0:
                    return store.shuffle(GUILD, random.Random(i))
                case 1:
                    return store.move(GUILD, 1, 10)
                case _:
                    return store.append_entries(GUILD, [entry(f"a{i}", duration_s=i)], cap=CAP)

        run_together(15, work)

        totals = store.get_guild(GUILD).queue_totals
        assert totals is not None and (totals.count, totals.duration_s, totals.unknown) == durations_of(store)

    def test_a_record_written_before_totals_is_counted_once_at_its_first_write(self, store: Store) -> None:
        # GIVEN a guild record as the previous release wrote it: a queue, no totals
        store.append_entries(GUILD, [entry(f"o{i}", duration_s=None if i == 2 else 100) for i in range(5)], cap=CAP)
        key = (guild_pk(GUILD), keys.GUILD_SK)
        item = store._get_item(key)
        assert item is not None
        old = {k: v for k, v in item.data.items() if k != "queue_totals"}
        assert store._put_item(key, old, expected_version=item.version, now=0.0, active=True)
        assert store.get_guild(GUILD).queue_totals is None

        # WHEN /queue reads it, THEN the totals are right already (counted, not written)
        assert page_totals(store) == (5, 400, 1)
        assert store.get_guild(GUILD).queue_totals is None

        # WHEN this release writes anything, THEN the totals are kept from then on
        store.set_volume(GUILD, 50)
        totals = store.get_guild(GUILD).queue_totals
        assert totals is not None and (totals.count, totals.duration_s, totals.unknown) == (5, 400, 1)

    def test_a_queue_an_older_release_changed_is_counted_again(self, store: Store) -> None:
        # GIVEN totals, then an older release that popped the head and appended one, keeping the totals it read
        fill(store, GUILD, ["a", "b", "c"])
        store._put_items([((guild_pk(GUILD), keys.entry_sk("d")), entry("d", duration_s=1000).to_dict(), None)])
        key = (guild_pk(GUILD), keys.GUILD_SK)
        item = store._get_item(key)
        assert item is not None
        stale = {**item.data, "queue": ["b", "c", "d"]}  # same length: only the digest tells
        assert store._put_item(key, stale, expected_version=item.version, now=0.0, active=True)

        # WHEN /queue reads it, and this release writes it
        shown = page_totals(store)
        store.remove_at(GUILD, 1)

        # THEN both count the queue that is there
        assert shown == (3, 180 + 180 + 1000, 0)
        totals = store.get_guild(GUILD).queue_totals
        assert totals is not None and (totals.count, totals.duration_s, totals.unknown) == (2, 1180, 0)

    def test_the_queue_page_is_the_page_of_the_whole_record_whichever_way_it_is_read(self, store: Store) -> None:
        # GIVEN 73 entries (past the head the totals carry) and a track playing
        store.append_entries(GUILD, [entry(f"h{i:02}", duration_s=None if i == 7 else i) for i in range(73)], cap=CAP)
        lease = running_lease(store)
        store.pop_head(GUILD, lease.generation)
        record = store.get_guild(GUILD)

        # WHEN every page is read for /queue, and one past the end
        pages = [store.queue_page(GUILD, number=n, size=10) for n in range(1, 10)]

        # THEN each is the slice of the record's queue, with the whole queue's totals and what plays
        for page in pages[:8]:
            start = (page.number - 1) * 10
            assert [e.entry_id for e in page.entries] == list(record.queue[start : start + 10])
            assert (page.total, page.unknown_durations) == (72, 1)
            assert page.total_duration_s == sum(range(1, 73)) - 7
            assert page.now_playing is not None and page.now_playing.entry_id == "h00"
        assert [p.number for p in pages] == [1, 2, 3, 4, 5, 6, 7, 8, 8]

    def test_the_queue_page_reads_the_whole_record_after_an_older_release_wrote_it(self, store: Store) -> None:
        # GIVEN totals, then a write by a release that knows none (it keeps them as read, and moves the queue)
        fill(store, GUILD, ["a", "b", "c"])
        key = (guild_pk(GUILD), keys.GUILD_SK)
        item = store._get_item(key)
        assert item is not None
        moved = {**item.data, "queue": ["c", "a"]}
        assert store._put_item(key, moved, expected_version=item.version, now=0.0, active=True)

        # WHEN /queue reads it THEN it shows the queue as it is
        page = store.queue_page(GUILD, number=1, size=10)
        assert [e.entry_id for e in page.entries] == ["c", "a"]
        assert (page.total, page.total_duration_s) == (2, 360)

    def test_an_empty_or_unknown_guild_has_one_empty_page(self, store: Store) -> None:
        assert store.queue_page(OTHER_GUILD, number=3, size=10) == QueuePage([], 0, 0, 0)
        store.set_volume(GUILD, 10)
        assert store.queue_page(GUILD, number=2, size=10) == QueuePage([], 0, 0, 0)

    def test_a_page_larger_than_one_batch_get_is_refused(self, store: Store) -> None:
        with pytest.raises(ValueError, match="1 to 100"):
            store.page_queue(GUILD, offset=0, limit=101)


class _CallCounter:
    """A real (moto) DynamoDB client that counts the calls and keys it is asked for."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()
        self.keys_read = 0
        self.items: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_item(self, **request: Any) -> Any:
        self.calls["get_item"] += 1
        response = self._client.get_item(**request)
        self.items.append(response.get("Item") or {})
        return response

    def batch_get_item(self, **request: Any) -> Any:
        self.calls["batch_get_item"] += 1
        self.keys_read += sum(len(r["Keys"]) for r in request["RequestItems"].values())
        return self._client.batch_get_item(**request)


@pytest.mark.parametrize("queued", [5, 500])
def test_a_queue_page_costs_one_batch_get_of_its_own_entries_whatever_the_length(queued: int) -> None:
    with mock_aws():
        # GIVEN a DynamoDB table and a guild with ``queued`` entries
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_dynamodb_table(client, "page-cost")
        counter = _CallCounter(client)
        store = DynamoDBStore("page-cost", client=counter)
        store.append_entries(GUILD, [entry(f"c{i:03}") for i in range(queued)], cap=CAP)
        counter.calls.clear()
        counter.items.clear()
        counter.keys_read = 0

        # WHEN /queue reads its first page
        page = store.queue_page(GUILD, number=1, size=10)

        # THEN one read of the guild record's view (one string, without the list of ids), one batch
        # get of the page's keys, and the whole queue's totals
        assert dict(counter.calls) == {"get_item": 1, "batch_get_item": 1}
        assert set(counter.items[0]) == {"view"}
        assert "queue" not in json.loads(counter.items[0]["view"]["S"])["data"]
        assert counter.keys_read == min(10, queued)
        assert (page.total, page.total_duration_s, len(page.entries)) == (queued, 180 * queued, min(10, queued))
