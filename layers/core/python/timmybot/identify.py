"""The gateway-identify budget (BRIEF §4.4), shared by every launcher and voice task through the store.

Discord allows about 1000 IDENTIFYs a day per bot (``session_start_limit.total``) and
``max_concurrency`` of them per 5 seconds; a bot that goes over gets its token reset. Every voice
task start costs one identify, so:

* launchers refuse new sessions (``check_launch``) once the remaining budget is below a reserve;
* every IDENTIFY — discord.py's own re-identifies included — first takes a slot (``reserve``), which
  spaces identifies ``5 s / max_concurrency`` apart across all processes and counts one down.

``observe`` feeds in what ``GET /gateway/bot`` reports, which is the authority on what is left.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from timmybot import metrics
from timmybot.errors import BotRestingError
from timmybot.store.base import Store
from timmybot.store.keys import IDENTIFY_PK, IDENTIFY_SK

_log = logging.getLogger(__name__)

BUDGET_PK = IDENTIFY_PK
BUDGET_SK = IDENTIFY_SK
IDENTIFY_WINDOW_S = 5.0
DAY_S = 24 * 3600
DEFAULT_TOTAL = 1000


@dataclass(frozen=True)
class BudgetState:
    total: int = DEFAULT_TOTAL
    remaining: int = DEFAULT_TOTAL
    reset_at: float = 0.0  # when Discord refills ``remaining`` to ``total``
    max_concurrency: int = 1
    next_slot_at: float = 0.0  # the earliest time the next IDENTIFY may be sent

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> BudgetState:
        if not data:
            return cls()
        return cls(
            total=int(data.get("total", DEFAULT_TOTAL)),
            remaining=int(data.get("remaining", DEFAULT_TOTAL)),
            reset_at=float(data.get("reset_at", 0.0)),
            max_concurrency=max(1, int(data.get("max_concurrency", 1))),
            next_slot_at=float(data.get("next_slot_at", 0.0)),
        )

    def refilled(self, now: float) -> BudgetState:
        """After ``reset_at`` Discord has refilled the budget."""
        if self.reset_at and now >= self.reset_at:
            return replace(self, remaining=self.total, reset_at=now + DAY_S)
        return self

    def minutes_to_reset(self, now: float) -> int:
        return math.ceil(max(0.0, self.reset_at - now) / 60) if self.reset_at else 24 * 60


class IdentifyBudget:
    def __init__(self, store: Store, *, reserve_fraction: float = 0.1, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.reserve_fraction = reserve_fraction
        self.clock = clock

    def state(self) -> BudgetState:
        return BudgetState.from_dict(self.store.get_record(BUDGET_PK, BUDGET_SK)).refilled(self.clock())

    def observe(self, session_start_limit: Mapping[str, Any]) -> BudgetState:
        """Record what ``GET /gateway/bot`` says (total, remaining, reset_after ms, max_concurrency)."""
        now = self.clock()

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            state = BudgetState.from_dict(current)
            observed = int(session_start_limit.get("remaining", state.remaining))
            # Within one window our own count can be fresher than Discord's (slots are taken before
            # the IDENTIFY is sent), so the lower number wins; a new window takes Discord's.
            same_window = current is not None and state.reset_at > now
            state = replace(
                state,
                total=int(session_start_limit.get("total", state.total)),
                remaining=min(observed, state.remaining) if same_window else observed,
                reset_at=now + float(session_start_limit.get("reset_after", 0)) / 1000,
                max_concurrency=max(1, int(session_start_limit.get("max_concurrency", state.max_concurrency))),
            )
            return asdict(state)

        state = BudgetState.from_dict(self.store.update_record(BUDGET_PK, BUDGET_SK, change))
        metrics.emit(metrics.IDENTIFY_BUDGET_REMAINING, state.remaining)
        return state

    def below_reserve(self, state: BudgetState) -> bool:
        return state.remaining <= math.ceil(state.total * self.reserve_fraction)

    def check_launch(self) -> None:
        """Refuse a new voice session (BotRestingError) once the budget is below the reserve."""
        now = self.clock()
        state = self.state()
        if self.below_reserve(state):
            minutes = state.minutes_to_reset(now)
            _log.warning(
                "refusing a launch: %s of %s identifies left, the budget resets in %s min",
                state.remaining,
                state.total,
                minutes,
            )
            metrics.emit(metrics.LAUNCHES_REFUSED, dimensions={"reason": "identify_budget"})
            raise BotRestingError(minutes)

    def reserve(self) -> float:
        """Take the next IDENTIFY slot; returns how many seconds to wait before sending it.

        Raises BotRestingError when nothing is left (going over gets the bot token reset).
        """
        now = self.clock()
        slot: list[float] = [now]

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            state = BudgetState.from_dict(current).refilled(now)
            if state.remaining <= 0:
                raise BotRestingError(state.minutes_to_reset(now))
            start = max(now, state.next_slot_at)
            slot[0] = start
            return asdict(
                replace(
                    state,
                    remaining=state.remaining - 1,
                    next_slot_at=start + IDENTIFY_WINDOW_S / state.max_concurrency,
                )
            )

        self.store.update_record(BUDGET_PK, BUDGET_SK, change)
        return max(0.0, slot[0] - now)
