"""The voice task's state tables: every pair of states tried, and the docs show the same tables."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from voice_task.states import LIFECYCLE_MOVES, PLAYBACK_MOVES, IllegalTransition, Lifecycle, Machine, PlaybackState

ROOT = Path(__file__).resolve().parents[2]
TABLES: dict[str, tuple[type[Any], Mapping[Any, frozenset[Any]]]] = {
    "Lifecycle": (Lifecycle, LIFECYCLE_MOVES),
    "Playback": (PlaybackState, PLAYBACK_MOVES),
}


def _pairs() -> list[Any]:
    params = []
    for name, (states, moves) in TABLES.items():
        for source, target in itertools.product(list(states), repeat=2):
            if source is not target:
                allowed = target in moves[source]
                params.append(pytest.param(moves, source, target, allowed,
                                           id=f"{name}:{source.value}->{target.value}"))  # fmt: skip
    return params


@pytest.mark.parametrize(("moves", "source", "target", "allowed"), _pairs())
def test_every_pair_moves_when_the_table_allows_it_and_raises_when_strict_otherwise(
    moves: Mapping[Any, frozenset[Any]], source: Any, target: Any, allowed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    strict = Machine("m", source, moves, strict=True)
    lenient = Machine("m", source, moves, strict=False)

    with caplog.at_level(logging.INFO, logger="voice_task.states"):
        if allowed:
            strict.move(target, "because")
        else:
            with pytest.raises(IllegalTransition, match=f"{source.value} -> {target.value} is not allowed"):
                strict.move(target, "because")
        lenient.move(target, "because")

    assert strict.state is (target if allowed else source)
    assert lenient.state is target  # production keeps playing, and says so loudly
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    changes = [r for r in caplog.records if r.getMessage() == f"m {source.value} -> {target.value} (because)"]
    assert len(errors) == (0 if allowed else 1)
    assert len(changes) == (2 if allowed else 1)  # each change logged once per machine


def test_staying_put_is_not_a_change() -> None:
    machine = Machine("m", PlaybackState.PLAYING, PLAYBACK_MOVES, strict=True)

    machine.move(PlaybackState.PLAYING, "again")

    assert machine.state is PlaybackState.PLAYING


def test_every_state_has_a_row_and_leaving_always_reaches_done() -> None:
    assert set(LIFECYCLE_MOVES) == set(Lifecycle) and set(PLAYBACK_MOVES) == set(PlaybackState)
    for state in Lifecycle:
        if state is not Lifecycle.DONE:
            assert Lifecycle.LEAVING in LIFECYCLE_MOVES[state] or state is Lifecycle.LEAVING
    for state in PlaybackState:
        if state is not PlaybackState.STOPPING:
            assert PlaybackState.STOPPING in PLAYBACK_MOVES[state]


@pytest.mark.parametrize("name", list(TABLES))
def test_the_architecture_doc_shows_the_same_table(name: str) -> None:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = doc.split(f"\n{name}:\n\n", 1)[1].split("\n\n", 1)[0]
    shown: dict[str, set[str]] = {}
    for row in section.splitlines()[2:]:
        source, targets = (cell.strip() for cell in row.strip("|").split("|"))
        shown[source] = set() if targets == "(none)" else set(re.split(r",\s*", targets))
    states, moves = TABLES[name]

    assert shown == {s.value: {t.value for t in moves[s]} for s in states}
