"""The circuit breaker over each Store adapter (SQLite file, DynamoDB on moto), and across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.clock import FakeClock
from timmybot.sources import BreakerState, CircuitBreaker
from timmybot.sources.breaker import breaker_pk
from timmybot.store import SQLiteStore, Store

ROOT = Path(__file__).parents[2]


def test_threshold_failures_open_and_a_trial_after_the_cool_down_closes(store: Store, clock: FakeClock) -> None:
    # GIVEN a breaker over the store
    breaker = CircuitBreaker(store, threshold=5, cooldown_s=300, clock=clock)
    # WHEN YouTube fails five times with a bot check
    opened = [breaker.record_failure("youtube", "bot_check") for _ in range(5)]
    # THEN only the fifth opened it, and it is skipped
    assert opened == [False, False, False, False, True]
    assert not breaker.allow("youtube")
    assert store.get_record(breaker_pk("youtube"), "breaker") is not None
    # WHEN the cool-down passes THEN exactly one caller gets the half-open trial
    clock.advance(300)
    assert breaker.allow("youtube")
    assert not breaker.allow("youtube")
    assert breaker.snapshot("youtube").state is BreakerState.HALF_OPEN
    # AND its success closes the breaker for everyone
    breaker.record_success("youtube")
    assert breaker.snapshot("youtube").state is BreakerState.CLOSED
    assert breaker.allow("youtube")


def test_two_breakers_on_one_store_see_the_same_state(store: Store, clock: FakeClock) -> None:
    worker = CircuitBreaker(store, threshold=2, cooldown_s=60, clock=clock)
    voice_task = CircuitBreaker(store, threshold=2, cooldown_s=60, clock=clock)
    worker.record_failure("soundcloud", "timeout")
    voice_task.record_failure("soundcloud", "timeout")
    assert not worker.allow("soundcloud") and not voice_task.allow("soundcloud")


def test_a_trial_whose_caller_died_is_given_to_the_next_caller(store: Store, clock: FakeClock) -> None:
    breaker = CircuitBreaker(store, threshold=1, cooldown_s=60, trial_timeout_s=30, clock=clock)
    breaker.record_failure("youtube", "stream_403")
    clock.advance(60)
    assert breaker.allow("youtube")  # this caller never reports back
    clock.advance(31)
    assert breaker.allow("youtube")


def test_a_second_process_sees_the_open_breaker(tmp_path: Path) -> None:
    # GIVEN one process opens YouTube's breaker in a SQLite store file
    path = tmp_path / "timmybot.sqlite3"
    store = SQLiteStore(path)
    breaker = CircuitBreaker(store, threshold=5, cooldown_s=300)
    for _ in range(5):
        breaker.record_failure("youtube", "bot_check")
    store.close()
    # WHEN another process asks through the settings-built chain
    code = textwrap.dedent(f"""
        from timmybot.sources import SourceChain, SourceSettings
        chain = SourceChain(SourceSettings(breaker_backend="sqlite", breaker_sqlite_path={str(path)!r}))
        print("allowed" if chain.breaker.allow("youtube") else "skipped", chain.breaker.snapshot("youtube").reason)
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
        env={"PYTHONPATH": f"{ROOT / 'layers/core/python'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    # THEN it skips YouTube too, for the same reason
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["skipped", "bot_check"]
