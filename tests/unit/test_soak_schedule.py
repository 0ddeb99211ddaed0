"""The chaos soak draws its faults from a shuffled bag: every kind once before any kind repeats.

GIVEN the soak's fault kinds and any seed
THEN  each round of as many draws as there are kinds holds every kind exactly once
AND   the README's quoted run (--seed 2026, 21 faults) hits every kind, 4021 and the REST 429 burst
      among them (drawn with random.choice, as before, it never drew 4021).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from scripts.bench.soak import BUDGETS_S, FAULT_EVERY_S, FaultBag

KINDS = sorted(BUDGETS_S)


@pytest.mark.parametrize("seed", [0, 1, 7, 2026, 123456])
def test_every_round_holds_every_kind_once(seed: int) -> None:
    bag = FaultBag(KINDS, random.Random(seed))
    for _ in range(3):
        assert sorted(bag.draw() for _ in KINDS) == KINDS


def test_the_readme_s_ten_minute_schedule_hits_every_kind() -> None:
    rng = random.Random(2026)
    bag = FaultBag(KINDS, rng)
    drawn = []
    for _ in range(21):  # as the soak does: the wait, then the kind
        rng.uniform(*FAULT_EVERY_S)
        drawn.append(bag.draw())
    counts = Counter(drawn)
    assert set(counts) == set(KINDS)
    assert counts["4021"] >= 1 and counts["rest-429"] >= 1
    assert max(counts.values()) - min(counts.values()) <= 1
