"""The circuit breaker over every ``RecordStore`` adapter, and across processes.

Each test runs once per adapter: the Store adapters (SQLite file, DynamoDB on moto, memory) and
``MemoryRecords``, the one-process record store a chain without a Store uses.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import canary
from tests.contract.conftest import STORE_ADAPTERS, open_store
from tests.support.clock import FakeClock
from tests.support.sources import CatalogEntry, LoopbackSite
from timmybot.models import Track
from timmybot.sources import BreakerState, CircuitBreaker, MemoryRecords, Query, SourceSettings, SpreadRule
from timmybot.sources.breaker import MAX_EVIDENCE, RecordStore, breaker_pk
from timmybot.store import SQLiteStore

pytestmark = pytest.mark.slow  # started first: the file takes many seconds under xdist

ROOT = Path(__file__).parents[2]


@pytest.fixture(params=(*STORE_ADAPTERS, "memory-records"))
def records(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, clock: FakeClock
) -> Iterator[RecordStore]:
    if request.param == "memory-records":
        yield MemoryRecords()
        return
    with open_store(request.param, request, tmp_path_factory, clock) as store:
        yield store


def test_threshold_failures_open_and_a_trial_after_the_cool_down_closes(records: RecordStore, clock: FakeClock) -> None:
    # GIVEN a breaker over the store
    breaker = CircuitBreaker(records, threshold=5, cooldown_s=300, clock=clock)
    # WHEN YouTube fails five times with a bot check
    opened = [breaker.record_failure("youtube", "bot_check") for _ in range(5)]
    # THEN only the fifth opened it, and it is skipped
    assert opened == [False, False, False, False, True]
    assert not breaker.allow("youtube")
    assert records.get_record(breaker_pk("youtube"), "breaker") is not None
    # WHEN the cool-down passes THEN exactly one caller gets the half-open trial
    clock.advance(300)
    assert breaker.allow("youtube")
    assert not breaker.allow("youtube")
    assert breaker.snapshot("youtube").state is BreakerState.HALF_OPEN
    # AND its success closes the breaker for everyone
    breaker.record_success("youtube")
    assert breaker.snapshot("youtube").state is BreakerState.CLOSED
    assert breaker.allow("youtube")


def test_two_breakers_on_one_store_see_the_same_state(records: RecordStore, clock: FakeClock) -> None:
    worker = CircuitBreaker(records, threshold=2, cooldown_s=60, clock=clock)
    voice_task = CircuitBreaker(records, threshold=2, cooldown_s=60, clock=clock)
    worker.record_failure("soundcloud", "timeout")
    voice_task.record_failure("soundcloud", "timeout")
    assert not worker.allow("soundcloud") and not voice_task.allow("soundcloud")


def test_a_trial_whose_caller_died_is_given_to_the_next_caller(records: RecordStore, clock: FakeClock) -> None:
    breaker = CircuitBreaker(records, threshold=1, cooldown_s=60, trial_timeout_s=30, clock=clock)
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
    # WHEN another process asks through the chain its bootstrap builds over its one store
    code = textwrap.dedent(f"""
        from timmybot.config import Settings
        from timmybot.sources import SourceChain
        from timmybot.store import build_store
        settings = Settings(store_backend="sqlite", sqlite_path={str(path)!r})
        chain = SourceChain.over_store(settings.source_settings(), build_store(settings))
        print("allowed" if chain.breaker.allow("youtube") else "skipped", chain.breaker.snapshot("youtube").reason)
    """)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
        env={"PYTHONPATH": f"{ROOT / 'layers/core/python'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    # THEN it skips YouTube too, for the same reason
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["skipped", "bot_check"]


# -- fair breakers (issue 15): per-track failures count only when they spread ----------------------


def test_twenty_failing_links_from_one_guild_leave_the_breaker_closed(records: RecordStore, clock: FakeClock) -> None:
    # GIVEN a breaker over the store with the default spread rule (3 tracks, 2 guilds, 300 s)
    breaker = CircuitBreaker(records, threshold=5, cooldown_s=300, clock=clock)
    # WHEN one guild sends twenty different links that each fail with an unknown extractor error
    opened = [
        breaker.record_track_failure("youtube", "error", track=f"youtube:video{n:02d}", guild="111") for n in range(20)
    ]
    # THEN YouTube stays open to every guild
    assert opened == [False] * 20
    assert breaker.allow("youtube")
    snapshot = breaker.snapshot("youtube")
    assert snapshot.state is BreakerState.CLOSED
    # AND the evidence kept in the shared record stays small: one guild can never need more
    assert len(snapshot.evidence) == breaker.spread.tracks
    assert {entry.guild for entry in snapshot.evidence} == {"111"}


def test_the_same_error_class_from_three_guilds_within_the_window_opens_it_for_every_process(
    records: RecordStore, clock: FakeClock
) -> None:
    # GIVEN the worker and a voice task, each with its own breaker over the one store
    worker = CircuitBreaker(records, threshold=5, cooldown_s=300, clock=clock)
    voice_task = CircuitBreaker(records, threshold=5, cooldown_s=300, clock=clock)
    # WHEN three guilds each meet the same unknown error on a different track, inside five minutes
    first = worker.record_track_failure("youtube", "error", track="youtube:aaa", guild="111")
    clock.advance(100)
    second = voice_task.record_track_failure("youtube", "error", track="youtube:bbb", guild="222")
    clock.advance(100)
    third = worker.record_track_failure("youtube", "error", track="youtube:ccc", guild="333")
    # THEN the third opened the breaker, and both processes skip YouTube
    assert (first, second, third) == (False, False, True)
    assert not worker.allow("youtube") and not voice_task.allow("youtube")
    assert voice_task.snapshot("youtube").reason == "error"


def test_the_same_failures_spread_beyond_the_window_do_not_open_it(records: RecordStore, clock: FakeClock) -> None:
    breaker = CircuitBreaker(records, threshold=5, cooldown_s=300, clock=clock)
    # GIVEN three guilds meeting the same error on three tracks, but 200 s apart (400 s in all)
    opened = []
    for guild, track in (("111", "aaa"), ("222", "bbb"), ("333", "ccc")):
        opened.append(breaker.record_track_failure("youtube", "error", track=track, guild=guild))
        clock.advance(200)
    # THEN the first had aged out before the third came: still closed, and the old entry is gone
    assert opened == [False, False, False]
    assert breaker.snapshot("youtube").state is BreakerState.CLOSED
    assert sorted(entry.guild for entry in breaker.snapshot("youtube").evidence) == ["222", "333"]


def test_one_bad_track_shared_by_many_guilds_or_different_reasons_do_not_open_it(
    records: RecordStore, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(records, threshold=5, cooldown_s=300, clock=clock)
    # GIVEN five guilds all pasting the same broken video
    same_track = [breaker.record_track_failure("youtube", "error", track="youtube:dead", guild=g) for g in "12345"]
    # AND three guilds meeting three different per-track reasons on three tracks
    mixed = [
        breaker.record_track_failure("youtube", reason, track=track, guild=guild)
        for reason, track, guild in (("error", "a", "7"), ("stream_403", "b", "8"), ("login_required", "c", "9"))
    ]
    # THEN neither is the source's fault
    assert not any(same_track) and not any(mixed)
    assert breaker.snapshot("youtube").state is BreakerState.CLOSED


def test_a_single_guild_bot_can_let_its_one_guild_count(records: RecordStore, clock: FakeClock) -> None:
    # GIVEN a self-deployed bot in one guild, with the guild count set to 1 (docs/SOURCES.md)
    breaker = CircuitBreaker(records, cooldown_s=300, spread=SpreadRule(tracks=3, guilds=1), clock=clock)
    # WHEN its guild meets the same error on three different tracks
    opened = [breaker.record_track_failure("youtube", "error", track=t, guild="111") for t in ("a", "b", "c")]
    # THEN the third opens the breaker
    assert opened == [False, False, True]


def test_bot_checks_still_open_it_as_before_whatever_per_track_failures_come_between(
    records: RecordStore, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(records, threshold=5, cooldown_s=300, clock=clock)
    # GIVEN per-track failures mixed in between source-wide bot checks, all from one guild
    opened = []
    for n in range(5):
        breaker.record_track_failure("youtube", "error", track=f"t{n}", guild="111")
        opened.append(breaker.record_failure("youtube", "bot_check"))
    # THEN the fifth bot check opened the breaker, exactly as it did before per-track evidence existed
    assert opened == [False, False, False, False, True]
    assert breaker.snapshot("youtube").reason == "bot_check"


def test_a_half_open_trial_failing_on_one_track_hands_the_trial_on(records: RecordStore, clock: FakeClock) -> None:
    # GIVEN a breaker opened by timeouts, its cool-down over, one caller holding the trial
    breaker = CircuitBreaker(records, threshold=1, cooldown_s=60, trial_timeout_s=60, clock=clock)
    breaker.record_failure("youtube", "timeout")
    clock.advance(60)
    assert breaker.allow("youtube")
    # WHEN the trial fails on a per-track error (says nothing about the source either way)
    assert not breaker.record_track_failure("youtube", "error", track="t", guild="111")
    # THEN it neither reopened the breaker nor blocks the next caller for the trial timeout
    assert breaker.snapshot("youtube").state is BreakerState.HALF_OPEN
    assert breaker.allow("youtube")


def test_the_evidence_stays_bounded_however_many_guilds_fail(records: RecordStore, clock: FakeClock) -> None:
    breaker = CircuitBreaker(records, threshold=5, cooldown_s=300, spread=SpreadRule(tracks=500), clock=clock)
    failures = MAX_EVIDENCE + 12  # a dozen past the bound: each one past it pushes the oldest out
    for n in range(failures):
        breaker.record_track_failure("youtube", "error", track=f"t{n}", guild=f"g{n}")
    evidence = breaker.snapshot("youtube").evidence
    assert len(evidence) == MAX_EVIDENCE
    # AND the newest are the ones kept, with no track key in clear
    assert {entry.guild for entry in evidence} == {f"g{n}" for n in range(failures - MAX_EVIDENCE, failures)}
    assert not any(entry.track.startswith("t") and entry.track[1:].isdigit() for entry in evidence)


def test_a_failing_canary_opens_the_breaker_every_process_reads(records: RecordStore, clock: FakeClock) -> None:
    # GIVEN the canary, whose YouTube fails its known-good track with a bot check
    youtube = LoopbackSite("youtube", "http://127.0.0.1:1001", [], fault="bot_check")
    canary_breaker = CircuitBreaker(records, cooldown_s=300, clock=clock)
    # WHEN it runs as the scheduled job runs it
    status = canary.run(["youtube"], SourceSettings(), build=lambda _name, _settings: youtube, breaker=canary_breaker)
    # THEN it fails, and the worker's breaker over the same store skips YouTube straight away
    assert status == canary.EXIT_FAILED
    worker = CircuitBreaker(records, cooldown_s=300, clock=clock)
    assert not worker.allow("youtube")
    assert worker.snapshot("youtube").reason == "bot_check"
    # AND once the cool-down is over, a half-open trial may close it again
    clock.advance(300)
    assert worker.allow("youtube")


class _KnownTrackSite(LoopbackSite):
    """A loopback site that answers any link with its first song (the canary asks for a YouTube link)."""

    def resolve(self, query: Query) -> list[Track]:
        self._called("resolve", query.text)
        return [self._track(self.catalog[0])]


def test_a_passing_canary_leaves_the_breaker_alone(records: RecordStore, clock: FakeClock) -> None:
    zoo = CatalogEntry("zoo.webm", "Me at the zoo", "jawed", 19)
    youtube = _KnownTrackSite("youtube", "http://127.0.0.1:1001", [zoo])
    breaker = CircuitBreaker(records, cooldown_s=300, clock=clock)
    status = canary.run(
        ["youtube"], SourceSettings(), metadata_only=True, build=lambda _n, _s: youtube, breaker=breaker
    )
    assert status == canary.EXIT_OK
    assert records.get_record(breaker_pk("youtube"), "breaker") is None
