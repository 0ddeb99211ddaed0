"""The voice task's reconcile rules, as pure functions."""

from __future__ import annotations

from timmybot.models import Desired
from voice_task.reconcile import Action, Applied, plan, shard_of

APPLIED = Applied(skip_seq=3, stop_seq=1, seek_seq=2, paused=False, volume=100)


def test_nothing_to_do_when_desired_matches_applied() -> None:
    desired = Desired(skip_seq=3, stop_seq=1, seek_seq=2)
    assert plan(desired, APPLIED, playing=True) == []


def test_stop_wins_over_every_other_change() -> None:
    desired = Desired(skip_seq=9, stop_seq=2, seek_seq=5, paused=True, volume=40)
    assert plan(desired, APPLIED, playing=True) == [Action.STOP]


def test_skip_makes_a_pending_seek_moot() -> None:
    desired = Desired(skip_seq=4, stop_seq=1, seek_seq=3)
    assert plan(desired, APPLIED, playing=True) == [Action.SKIP]


def test_seek_applies_only_while_a_track_plays() -> None:
    desired = Desired(skip_seq=3, stop_seq=1, seek_seq=3, seek_ms=30_000)
    assert plan(desired, APPLIED, playing=True) == [Action.SEEK]
    assert plan(desired, APPLIED, playing=False) == []


def test_volume_and_pause_are_applied_together() -> None:
    desired = Desired(skip_seq=3, stop_seq=1, seek_seq=2, paused=True, volume=50)
    assert plan(desired, APPLIED, playing=True) == [Action.SET_VOLUME, Action.PAUSE]


def test_resume_when_desired_unpaused_after_a_pause() -> None:
    paused = Applied(skip_seq=3, stop_seq=1, seek_seq=2, paused=True, volume=100)
    assert plan(Desired(skip_seq=3, stop_seq=1, seek_seq=2), paused, playing=True) == [Action.RESUME]


def test_shard_of_follows_discords_formula() -> None:
    guild_id = "175928847299117063"
    assert shard_of(guild_id, 16) == (175928847299117063 >> 22) % 16
    assert 0 <= shard_of("81384788765712384", 16) < 16
