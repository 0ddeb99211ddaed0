"""The identify budget behaves the same over every Store adapter."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.clock import FakeClock
from timmybot.errors import BotRestingError
from timmybot.identify import IDENTIFY_WINDOW_S, IdentifyBudget
from timmybot.store.base import Store


def test_identifies_from_many_processes_are_spaced_by_max_concurrency(store: Store, clock: FakeClock) -> None:
    budget = IdentifyBudget(store, clock=clock)
    budget.observe({"total": 1000, "remaining": 1000, "reset_after": 3_600_000, "max_concurrency": 1})

    with ThreadPoolExecutor(max_workers=5) as pool:
        waits = sorted(pool.map(lambda _: budget.reserve(), range(5)))

    assert waits == pytest.approx([0, 5, 10, 15, 20])
    assert budget.state().remaining == 995


def test_a_higher_max_concurrency_shortens_the_spacing(store: Store, clock: FakeClock) -> None:
    budget = IdentifyBudget(store, clock=clock)
    budget.observe({"total": 1000, "remaining": 900, "reset_after": 1000, "max_concurrency": 4})

    waits = [budget.reserve() for _ in range(3)]

    assert waits == pytest.approx([0, IDENTIFY_WINDOW_S / 4, 2 * IDENTIFY_WINDOW_S / 4])


def test_launches_are_refused_below_the_reserve_with_the_minutes_until_reset(store: Store, clock: FakeClock) -> None:
    budget = IdentifyBudget(store, reserve_fraction=0.1, clock=clock)
    budget.observe({"total": 1000, "remaining": 100, "reset_after": 30 * 60 * 1000, "max_concurrency": 1})

    with pytest.raises(BotRestingError) as refused:
        budget.check_launch()

    assert refused.value.minutes == 30
    assert "try again in 30 min" in refused.value.user_message.lower()


def test_launches_are_allowed_above_the_reserve(store: Store, clock: FakeClock) -> None:
    budget = IdentifyBudget(store, reserve_fraction=0.1, clock=clock)
    budget.observe({"total": 1000, "remaining": 101, "reset_after": 1000, "max_concurrency": 1})

    budget.check_launch()  # no exception

    assert budget.state().remaining == 101


def test_an_exhausted_budget_refuses_to_identify_until_discord_refills_it(store: Store, clock: FakeClock) -> None:
    budget = IdentifyBudget(store, clock=clock)
    budget.observe({"total": 1000, "remaining": 1, "reset_after": 60_000, "max_concurrency": 1})
    budget.reserve()

    with pytest.raises(BotRestingError):
        budget.reserve()
    clock.advance(61)

    assert budget.reserve() >= 0
    assert budget.state().remaining == 999


def test_an_unknown_budget_assumes_the_default_allowance(store: Store, clock: FakeClock) -> None:
    budget = IdentifyBudget(store, clock=clock)

    budget.check_launch()

    assert budget.reserve() == 0


def test_a_stale_observation_never_raises_the_count_within_a_window(store: Store, clock: FakeClock) -> None:
    budget = IdentifyBudget(store, clock=clock)
    limits = {"total": 1000, "remaining": 1000, "reset_after": 3_600_000, "max_concurrency": 1}
    budget.observe(limits)
    budget.reserve()
    budget.reserve()

    budget.observe(limits)  # read before those two identifies reached Discord

    assert budget.state().remaining == 998
    clock.advance(3601)
    assert budget.observe({**limits, "remaining": 1000}).remaining == 1000
