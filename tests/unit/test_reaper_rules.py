"""Which guilds the reaper relaunches: the rules as a pure function of the guild record."""

from __future__ import annotations

import pytest

from timmybot.models import GuildRecord, Lease, LeaseState, QueueEntry
from timmybot.reaper import needs_relaunch

NOW = 1_000_000.0
ENTRY = QueueEntry(entry_id="e1", track={"title": "t"}, requester_id="1", added_at=0.0)


def _record(state: LeaseState, *, expires_at: float, queue: tuple[str, ...] = ("e1",), resume: bool = False,
            last_active: float = NOW - 60) -> GuildRecord:  # fmt: skip
    lease = Lease(state=state, generation=3, holder="pid:1", expires_at=expires_at,
                  resume={"entry_id": "e1", "position_ms": 5000} if resume else None)  # fmt: skip
    return GuildRecord(guild_id="1", queue=queue, lease=lease, last_active=last_active)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(_record(LeaseState.RUNNING, expires_at=NOW - 1), True, id="running lease expired: task died"),
        pytest.param(_record(LeaseState.LAUNCHING, expires_at=NOW - 1), True, id="launch never claimed"),
        pytest.param(_record(LeaseState.RUNNING, expires_at=NOW + 30), False, id="live task"),
        pytest.param(_record(LeaseState.RELEASED, expires_at=0, resume=True), True, id="sigterm with resume point"),
        pytest.param(_record(LeaseState.RELEASED, expires_at=0), False, id="clean exit: stop idle alone kicked"),
        pytest.param(_record(LeaseState.RUNNING, expires_at=NOW - 1, queue=()), False, id="nothing queued"),
        pytest.param(
            _record(LeaseState.RUNNING, expires_at=NOW - 1, last_active=NOW - 7200), False, id="stale guild"
        ),
    ],
)
def test_relaunch_rules(record: GuildRecord, expected: bool) -> None:
    assert needs_relaunch(record, NOW, recent_s=3600) is expected


def test_a_track_left_playing_counts_as_music_even_with_an_empty_queue() -> None:
    record = _record(LeaseState.RUNNING, expires_at=NOW - 1, queue=())
    record = record.evolve(actual=record.actual.__class__(now_playing=ENTRY))

    assert needs_relaunch(record, NOW, recent_s=3600) is True
