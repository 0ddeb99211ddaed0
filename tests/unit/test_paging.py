"""Bounded walks (issue 15): ``ListWalk``'s arithmetic, and ``queue_walk`` over a real SQLite store
(the queue's free space decides the item cap, is asked again before each page, and a full queue
refuses before any list is read)."""

from __future__ import annotations

from pathlib import Path

import pytest

from timmybot.config import Settings
from timmybot.errors import QueueFullError
from timmybot.library.paging import ListWalk, StopReason
from timmybot.models import QueueEntry, Track
from timmybot.store import build_store
from timmybot.store.base import Store
from timmybot.worker.play import queue_walk

GUILD = "123456789012345678"


def _store(tmp_path: Path) -> Store:
    return build_store(Settings(store_backend="sqlite", sqlite_path=str(tmp_path / "store.sqlite3")))


def _fill(store: Store, count: int, cap: int) -> None:
    entries = [
        QueueEntry(entry_id=f"e{n}", track=Track.from_stored({"title": f"T{n}"}), requester_id="1", added_at=0.0)
        for n in range(count)
    ]
    store.append_entries(GUILD, entries, cap=cap)


def test_the_walk_stops_at_the_item_cap_and_counts_skipped_items_toward_it() -> None:
    walk = ListWalk(item_cap=5, page_cap=10)
    assert walk.may_fetch("p1")
    assert walk.admit([1, 2, 3]) == [1, 2, 3]
    walk.keep(1)  # two of the three could not be played
    assert walk.may_fetch("p2")
    assert walk.admit([4, 5, 6]) == [4, 5]
    walk.keep(2)
    assert not walk.may_fetch("p3")
    assert walk.stopped is StopReason.ITEM_CAP
    assert (walk.seen, walk.kept, walk.skipped, walk.pages) == (5, 3, 2, 2)


def test_a_link_already_fetched_ends_the_walk_and_the_page_cap_holds() -> None:
    looping = ListWalk(item_cap=100)
    assert looping.may_fetch("a") and looping.may_fetch("b")
    assert not looping.may_fetch("a")
    assert looping.stopped is StopReason.LOOP
    capped = ListWalk(item_cap=100, page_cap=2)
    assert capped.may_fetch("a") and capped.may_fetch("b")
    assert not capped.may_fetch("c")
    assert capped.stopped is StopReason.PAGE_CAP


def test_a_whole_list_leaves_nothing_to_say() -> None:
    walk = ListWalk(item_cap=10)
    walk.may_fetch("only")
    walk.keep(len(walk.admit(["a", "b"])))
    assert walk.complete
    assert walk.left_out() is None


def test_the_reply_names_what_was_left_out() -> None:
    walk = ListWalk.for_queue(playlist_cap=1000, free=500)
    walk.note_total(2000)
    walk.may_fetch("p")
    walk.keep(len(walk.admit(list(range(600)))))
    assert walk.left_out() == "Added 500 of 2,000: the queue is full."
    assert walk.left_out(" from **Road trip**") == "Added 500 of 2,000 from **Road trip**: the queue is full."


def test_queue_walk_takes_the_free_space_and_asks_again_before_each_page(tmp_path: Path) -> None:
    # GIVEN a queue of cap 10 with 7 queued
    store = _store(tmp_path)
    settings = Settings(queue_cap=10, playlist_cap=100, list_page_cap=4)
    _fill(store, 7, settings.queue_cap)
    # WHEN a list is about to be queued THEN at most the 3 free places are taken
    walk = queue_walk(store, GUILD, settings)
    assert (walk.item_cap, walk.page_cap, walk.queue_limited) == (3, 4, True)
    assert walk.may_fetch("p1")
    walk.keep(len(walk.admit([1])))
    # WHEN the queue fills up meanwhile THEN no further page is fetched
    _fill(store, 10, settings.queue_cap)
    assert not walk.may_fetch("p2")
    assert walk.stopped is StopReason.QUEUE_FULL


def test_queue_walk_refuses_a_full_queue_before_any_list_is_read(tmp_path: Path) -> None:
    store = _store(tmp_path)
    settings = Settings(queue_cap=2)
    _fill(store, 2, settings.queue_cap)
    with pytest.raises(QueueFullError) as caught:
        queue_walk(store, GUILD, settings)
    assert caught.value.user_message == "The queue is full (2 tracks at most, 2 queued now)."


def test_the_page_cap_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="page_cap"):
        ListWalk(item_cap=1, page_cap=0)
    with pytest.raises(ValueError, match="list_page_cap"):
        Settings(list_page_cap=0).validate()
    assert Settings().list_page_cap == 10
