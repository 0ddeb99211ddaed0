"""``timmybot.idempotency.run_once``: claim, run, then save or release, on the in-memory and SQLite stores."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from timmybot.idempotency import First, Repeat, run_once
from timmybot.store import SQLiteStore, Store
from timmybot.store.memory import MemoryStore

CLAIM_TTL_S = 150
TTL_S = 3600
KEY = "play:1234"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    sqlite_store = SQLiteStore(tmp_path / "timmybot.sqlite3", clock=clock)
    yield sqlite_store
    sqlite_store.close()


class Runs:
    """A job that counts its runs and answers with a body naming the run."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> dict[str, object]:
        self.count += 1
        return {"content": f"run {self.count}"}


def _once(store: Store, run: Runs) -> First[dict[str, object]] | Repeat:
    return run_once(store, KEY, run, save=json.dumps, claim_ttl_s=CLAIM_TTL_S, ttl_s=TTL_S)


def test_the_first_delivery_runs_and_its_result_answers_every_repeat(store: Store) -> None:
    run = Runs()

    first = _once(store, run)
    second = _once(store, run)

    assert first == First({"content": "run 1"})
    assert second == Repeat(saved='{"content": "run 1"}') and not second.in_progress
    assert run.count == 1


def test_a_repeat_while_the_first_still_runs_runs_nothing_and_says_so(store: Store) -> None:
    # GIVEN a first delivery that is still running
    inside = threading.Event()
    finish = threading.Event()
    seen: list[First[str] | Repeat] = []

    def slow() -> str:
        inside.set()
        assert finish.wait(10)
        return "done"

    first = threading.Thread(
        target=lambda: seen.append(run_once(store, KEY, slow, save=str, claim_ttl_s=CLAIM_TTL_S, ttl_s=TTL_S))
    )
    first.start()
    assert inside.wait(10)

    # WHEN the same key is delivered again
    runs = Runs()
    repeat = _once(store, runs)

    # THEN nothing ran a second time, and the repeat knows the first is in progress
    assert repeat == Repeat(saved=None) and repeat.in_progress
    assert runs.count == 0
    finish.set()
    first.join(10)
    assert seen == [First("done")]
    assert _once(store, runs) == Repeat(saved="done")


def test_a_failed_run_releases_its_claim_so_a_retry_runs(store: Store) -> None:
    # GIVEN a run that fails
    def broken() -> dict[str, object]:
        raise ConnectionError("Discord is down")

    with pytest.raises(ConnectionError):
        run_once(store, KEY, broken, save=json.dumps, claim_ttl_s=CLAIM_TTL_S, ttl_s=TTL_S)

    # WHEN it is retried at once, THEN the retry runs and its result is what repeats get
    run = Runs()
    assert _once(store, run) == First({"content": "run 1"})
    assert _once(store, run) == Repeat(saved='{"content": "run 1"}')
    assert run.count == 1


def test_a_claim_nobody_released_can_be_claimed_once_it_expires(store: Store, clock: FakeClock) -> None:
    # GIVEN a claim left by a run that was killed mid-way (nothing saved, nothing released)
    assert store.claim_interaction(KEY, ttl_s=CLAIM_TTL_S)
    run = Runs()
    assert _once(store, run) == Repeat(saved=None)

    # WHEN the claim has expired
    clock.advance(CLAIM_TTL_S + 1)

    # THEN the next delivery runs
    assert _once(store, run) == First({"content": "run 1"})
    assert run.count == 1


def test_a_saved_result_lasts_its_own_ttl_not_the_claims(store: Store, clock: FakeClock) -> None:
    run = Runs()
    _once(store, run)

    clock.advance(CLAIM_TTL_S + 1)
    assert _once(store, run) == Repeat(saved='{"content": "run 1"}')

    clock.advance(TTL_S)
    assert _once(store, run) == First({"content": "run 2"})


def test_a_result_that_cannot_be_saved_is_still_returned(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a result the save step cannot turn into text
    def unsaveable(_value: dict[str, object]) -> str:
        raise TypeError("not JSON")

    # WHEN it runs, THEN the caller still gets the result, and the failure is logged
    outcome = run_once(store, KEY, Runs(), save=unsaveable, claim_ttl_s=CLAIM_TTL_S, ttl_s=TTL_S)

    assert outcome == First({"content": "run 1"})
    assert "could not save the result of play:1234" in caplog.text
    assert _once(store, Runs()) == Repeat(saved=None)  # in progress until the claim expires
