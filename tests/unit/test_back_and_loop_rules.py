"""Repeated /back walks back through the guild history, and under loop queue every control keeps
each track in the cycle once (issue 18, Builds 3 and 5). The store is SQLite; the voice task's
part (taking the head, noting what started) is played by hand, as the task would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.signing import track_entry
from timmybot.config import Settings
from timmybot.controls import NOTHING_BEFORE, go_back
from timmybot.errors import InvalidInputError
from timmybot.models import LeaseState, LoopMode, QueueEntry, Track, root_id
from timmybot.store import SQLiteStore, Store
from timmybot.worker.jobs import PlayJob
from timmybot.worker.play import enqueue_tracks

GUILD = "123456789012345678"
_seq = iter(range(9100000000000000001, 9200000000000000000))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    sqlite_store = SQLiteStore(tmp_path / "timmybot.sqlite3")
    yield sqlite_store
    sqlite_store.close()


class Task:
    """Stands in for the voice task: takes the head and notes each start in the guild history."""

    def __init__(self, store: Store) -> None:
        lease = store.acquire_lease(GUILD, holder="test", state=LeaseState.RUNNING, ttl_s=300)
        assert lease is not None
        self.store, self.generation, self.now = store, lease.generation, 1.0

    def next(self) -> QueueEntry | None:
        """The current track ends (or is skipped): the next one starts."""
        loop = self.store.get_guild(GUILD).desired.loop is LoopMode.QUEUE
        entry = self.store.pop_head(GUILD, self.generation, requeue_current=loop)
        if entry is not None:
            self.now += 1
            self.store.record_played(GUILD, entry, now=self.now, seq=int(self.now))
        return entry

    def title(self) -> str:
        playing = self.store.get_guild(GUILD).actual.now_playing
        return playing.title if playing is not None else "-"

    def queue(self) -> list[str]:
        return [e.title for e in self.store.get_entries(GUILD, self.store.get_guild(GUILD).queue)]


def _back(store: Store) -> str:
    result = go_back(store, GUILD, interaction_id=str(next(_seq)), user_id="1", cap=500, now=5.0)
    return result.previous.title


def _play_through(task: Task, tracks: str, *, loop: LoopMode = LoopMode.OFF) -> None:
    task.store.append_entries(GUILD, [track_entry(name, title=name) for name in tracks], cap=500)
    task.store.set_loop(GUILD, loop)
    for _ in tracks:
        task.next()


def test_repeated_back_walks_back_through_the_history_instead_of_swapping_the_last_two(store: Store) -> None:
    task = Task(store)
    _play_through(task, "ABCD")  # D plays now
    walked = []
    for _ in range(3):
        walked.append(_back(store))
        task.next()  # the task starts the replay the skip asked for
        assert task.title() == walked[-1]
    assert walked == ["C", "B", "A"]
    # Each step put the track it left back at the head: going forward again replays B, C, D in order.
    assert task.queue() == ["B", "C", "D"]
    with pytest.raises(InvalidInputError, match=NOTHING_BEFORE):
        _back(store)


def test_back_after_the_walk_has_moved_forward_again_goes_to_the_track_heard_before(store: Store) -> None:
    task = Task(store)
    _play_through(task, "ABC")
    assert _back(store) == "B"
    task.next()
    task.next()  # B's replay ended: C (put back by /back) plays again
    assert task.title() == "C"
    assert _back(store) == "B"  # the track heard just before this C


def test_under_loop_queue_back_moves_the_track_from_the_end_and_nothing_is_in_the_cycle_twice(store: Store) -> None:
    task = Task(store)
    _play_through(task, "ABC", loop=LoopMode.QUEUE)  # C plays; A and B came round to the end
    assert task.queue() == ["A", "B"]
    assert _back(store) == "B"
    assert task.queue() == ["B", "C", "A"]  # B's replay took B's place; C comes back next
    task.next()
    assert (task.title(), task.queue()) == ("B", ["C", "A"])  # C itself is not also sent to the end
    assert _back(store) == "A"  # and a second /back walks on
    task.next()
    assert task.title() == "A"
    for _ in range(6):  # two more rounds of the cycle
        task.next()
    ids = [*store.get_guild(GUILD).queue, store.get_guild(GUILD).actual.now_playing.entry_id]  # type: ignore[union-attr]
    assert sorted([*task.queue(), task.title()]) == ["A", "B", "C"]
    assert len({root_id(i) for i in ids}) == 3


def test_under_loop_queue_play_now_brings_the_cut_track_back_once(store: Store) -> None:
    task = Task(store)
    _play_through(task, "AB", loop=LoopMode.QUEUE)  # B plays, A at the end
    job = PlayJob(interaction_id=str(next(_seq)), application_id="1", guild_id=GUILD, user_id="1", query="E",
                  placement="now")  # fmt: skip
    track = Track.from_dict({**track_entry("E", title="E").track.to_dict(), "source": "youtube", "source_id": "E"})
    enqueue_tracks(job, [track], store=store, settings=Settings(), now=5.0, placement="now")
    task.next()
    assert (task.title(), task.queue()) == ("E", ["B", "A"])  # B resumes after E, and is not at the end too
    task.next()
    task.next()
    assert (task.title(), task.queue()) == ("A", ["E", "B"])
