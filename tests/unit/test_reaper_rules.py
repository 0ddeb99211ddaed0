"""Which guilds the reaper relaunches: the rules as a pure function of the guild record."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from timmybot.config import Settings
from timmybot.launcher.local import LocalLauncher
from timmybot.models import GuildRecord, Lease, LeaseState, QueueEntry, Track
from timmybot.reaper import needs_relaunch, reap
from timmybot.store.sqlite import SQLiteStore

NOW = 1_000_000.0
ENTRY = QueueEntry(entry_id="e1", track=Track.from_stored({"title": "t"}), requester_id="1", added_at=0.0)


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
        pytest.param(_record(LeaseState.RUNNING, expires_at=NOW - 1, last_active=NOW - 7200), False, id="stale guild"),
    ],
)
def test_relaunch_rules(record: GuildRecord, expected: bool) -> None:
    assert needs_relaunch(record, NOW, recent_s=3600) is expected


def test_a_track_left_playing_counts_as_music_even_with_an_empty_queue() -> None:
    record = _record(LeaseState.RUNNING, expires_at=NOW - 1, queue=())
    record = record.evolve(actual=record.actual.__class__(now_playing=ENTRY))

    assert needs_relaunch(record, NOW, recent_s=3600) is True


def _gave_up(seconds_ago: float) -> GuildRecord:
    record = _record(LeaseState.RELEASED, expires_at=0, resume=True)
    return record.evolve(lease=replace(record.lease, voice_gave_up_at=NOW - seconds_ago))


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(_gave_up(60), False, id="gave up on voice a minute ago: no relaunch loop"),
        pytest.param(_gave_up(899), False, id="still within the cooldown"),
        pytest.param(_gave_up(901), True, id="after the cooldown: the music left behind comes back"),
    ],
)
def test_a_task_that_gave_up_on_voice_is_not_relaunched_within_the_cooldown(record: GuildRecord,
                                                                             expected: bool) -> None:  # fmt: skip
    assert needs_relaunch(record, NOW, recent_s=3600, voice_cooldown_s=900) is expected


def test_the_reaper_keeps_a_guild_whose_task_gave_up_on_voice_active_and_does_not_launch_it(tmp_path: Path) -> None:
    # GIVEN a guild whose voice task gave up on its voice connection mid-track (released with a
    # resume point and the give-up time, as the task does)
    clock = [NOW]
    store = SQLiteStore(tmp_path / "state.db", clock=lambda: clock[0])
    settings = Settings.from_env({"TIMMYBOT_STORE_BACKEND": "sqlite", "TIMMYBOT_SQLITE_PATH": str(tmp_path / "s.db")})
    lease = store.acquire_lease("1", holder="pid:1", state=LeaseState.RUNNING, ttl_s=60)
    assert lease is not None
    store.append_entries("1", [ENTRY, replace(ENTRY, entry_id="e2")], cap=10)
    store.pop_head("1", lease.generation)
    store.release_lease("1", generation=lease.generation, resume_position_ms=20_000, voice_gave_up=True)
    launcher = LocalLauncher(store, settings, environ={})

    # WHEN the reaper passes a minute later
    clock[0] = NOW + 60
    report = reap(store, launcher, settings, clock=lambda: clock[0])

    # THEN it launches nothing, and keeps the guild in its index for after the cooldown
    record = store.get_guild("1")
    assert report.relaunched == [] and launcher.launched == 0
    assert record.lease.voice_gave_up_at == NOW
    assert record.queue == ("e1", "e2") and record.lease.resume == {"entry_id": "e1", "position_ms": 20_000}
    assert "1" in store.active_guild_ids()
    assert needs_relaunch(record, NOW + settings.reaper_voice_cooldown_s + 1, recent_s=3600,
                          voice_cooldown_s=settings.reaper_voice_cooldown_s)  # fmt: skip


def test_a_later_task_that_ends_on_its_own_terms_clears_the_give_up_and_is_relaunched(tmp_path: Path) -> None:
    # GIVEN a task that gave up on voice (a 4021), then a user's /play, whose new task played and was
    # then interrupted (a Spot reclaim's SIGTERM: released with a resume point, voice fine)
    clock = [NOW]
    store = SQLiteStore(tmp_path / "state.db", clock=lambda: clock[0])
    settings = Settings.from_env({"TIMMYBOT_STORE_BACKEND": "sqlite", "TIMMYBOT_SQLITE_PATH": str(tmp_path / "s.db")})
    first = store.acquire_lease("1", holder="pid:1", state=LeaseState.RUNNING, ttl_s=60)
    assert first is not None
    store.append_entries("1", [ENTRY, replace(ENTRY, entry_id="e2")], cap=10)
    store.pop_head("1", first.generation)
    store.release_lease("1", generation=first.generation, resume_position_ms=1_000, voice_gave_up=True)
    clock[0] = NOW + 60
    second = store.acquire_lease("1", holder="pid:2", state=LeaseState.RUNNING, ttl_s=60)
    assert second is not None and store.get_guild("1").lease.voice_gave_up_at == NOW
    store.pop_head("1", second.generation)
    store.release_lease("1", generation=second.generation, resume_position_ms=2_000)

    # WHEN the reaper passes a little later, well within the first task's cooldown
    clock[0] = NOW + 90
    launcher = LocalLauncher(store, settings, environ={})
    report = reap(store, launcher, settings, clock=lambda: clock[0])

    # THEN the give-up is forgotten and the interrupted music is relaunched
    assert store.get_guild("1").lease.voice_gave_up_at is None
    assert report.relaunched == ["1"] and launcher.launched == 1
