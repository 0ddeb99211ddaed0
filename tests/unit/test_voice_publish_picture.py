"""The voice task writes its state only when a reader would see something new (issue 16, costs).

GIVEN the state the record holds and the state the task would publish
THEN  a playing track's start time moving by less than the audio clock's jitter, or its position_ms
      moving (readers derive the position from started_at while playing), is the same picture
AND   anything else a reader shows (paused position, volume, listeners, the track, skip counters) is not.
"""

from __future__ import annotations

from dataclasses import replace

from timmybot.models import Actual
from voice_task.polling import STARTED_AT_SLACK_S, same_picture

PLAYING = Actual(started_at=1_000.0, position_ms=12_000, volume=80, listener_ids=("1", "2"))


def test_a_playing_track_a_few_ms_on_is_the_same_picture() -> None:
    later = replace(PLAYING, started_at=PLAYING.started_at + 0.02, position_ms=13_000)  # type: ignore[operator]
    assert same_picture(PLAYING, later)


def test_a_start_time_moved_beyond_the_slack_is_news() -> None:
    moved = replace(PLAYING, started_at=PLAYING.started_at + STARTED_AT_SLACK_S * 2)  # type: ignore[operator]
    assert not same_picture(PLAYING, moved)


def test_what_readers_show_is_news() -> None:
    paused = Actual(started_at=None, position_ms=5_000, paused=True)
    assert same_picture(paused, replace(paused))
    assert not same_picture(paused, replace(paused, position_ms=6_000))
    assert not same_picture(PLAYING, replace(PLAYING, started_at=None, paused=True))
    for change in ({"volume": 50}, {"listener_ids": ("1",)}, {"applied_skip_seq": 1}, {"applied_seek_seq": 2}):
        assert not same_picture(PLAYING, replace(PLAYING, **change)), change  # type: ignore[arg-type]
