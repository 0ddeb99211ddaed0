"""When the voice task ticks, and which writes are worth making: pure rules over the records."""

from __future__ import annotations

from dataclasses import replace

from timmybot.models import Actual, GuildRecord
from voice_task.player import WARM_AHEAD_S

PLAYING_POLL_MAX_S = 2.0  # mid-track, tick at least this often (the card, timeouts, a missed hint)
NEAR_END_POLL_S = 1.0  # from NEAR_END_S before a track's end: the warm-ahead tick comes on time
NEAR_END_S = WARM_AHEAD_S + PLAYING_POLL_MAX_S  # a 2 s tick could land up to 2 s after warm-ahead's point


def playing_poll_s(remaining_s: float | None) -> float:
    """The longest wait between ticks while a track plays: every 1 s near the end (the next track is
    opened ``WARM_AHEAD_S`` before it), every 2 s mid-track and on a track of unknown length."""
    if remaining_s is not None and remaining_s <= NEAR_END_S:
        return NEAR_END_POLL_S
    return PLAYING_POLL_MAX_S


def only_heartbeat(old: GuildRecord, new: GuildRecord) -> bool:
    """Whether ``new`` differs from ``old`` only by a lease renewal (the expiry and the version): the
    task's own heartbeat, which gives it nothing to do."""
    if old.unknown != new.unknown:
        return False
    return replace(new, version=old.version, lease=replace(new.lease, expires_at=old.lease.expires_at)) == old


STARTED_AT_SLACK_S = 0.25  # a playing track's start time moving less than this is the same picture


def same_picture(stored: Actual, new: Actual) -> bool:
    """Whether writing ``new`` over ``stored`` would change what any reader sees. While playing, the
    position is derived from ``started_at`` (so ``position_ms`` is not compared, and ``started_at``
    only beyond the audio clock's jitter); paused or stopped, ``position_ms`` is what readers show."""
    if (stored.started_at is None) != (new.started_at is None):
        return False
    if stored.started_at is not None and new.started_at is not None:
        if abs(stored.started_at - new.started_at) > STARTED_AT_SLACK_S:
            return False
        return replace(stored, started_at=None, position_ms=0) == replace(new, started_at=None, position_ms=0)
    return stored == new
