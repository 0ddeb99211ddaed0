"""Level-triggered reconciliation: what to do, given the desired state and what was applied.

Pure functions over plain values, so every rule is unit-testable without discord.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from timmybot.filters import Filters
from timmybot.models import Desired


class Action(enum.Enum):
    STOP = "stop"  # clear the queue, leave, exit 0
    SKIP = "skip"
    SEEK = "seek"
    SET_VOLUME = "set_volume"
    SET_FILTERS = "set_filters"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True)
class Applied:
    """What this task has applied so far."""

    skip_seq: int
    stop_seq: int
    seek_seq: int
    paused: bool
    volume: int
    filters: Filters = field(default_factory=Filters)


def plan(desired: Desired, applied: Applied, *, playing: bool) -> list[Action]:
    """The actions that bring playback to ``desired``, in the order to apply them.

    Stop wins over everything. A skip makes an earlier seek moot. Pause, volume and filters apply
    whether or not a track is loaded (they are remembered for the next one).
    """
    if desired.stop_seq > applied.stop_seq:
        return [Action.STOP]
    actions: list[Action] = []
    if desired.skip_seq > applied.skip_seq:
        actions.append(Action.SKIP)
    elif desired.seek_seq > applied.seek_seq and playing:
        actions.append(Action.SEEK)
    if desired.volume != applied.volume:
        actions.append(Action.SET_VOLUME)
    if desired.filters != applied.filters:
        actions.append(Action.SET_FILTERS)
    if desired.paused and not applied.paused:
        actions.append(Action.PAUSE)
    elif not desired.paused and applied.paused:
        actions.append(Action.RESUME)
    return actions


def shard_of(guild_id: str, shard_count: int) -> int:
    """Discord's shard formula: ``(guild_id >> 22) % shard_count``."""
    return (int(guild_id) >> 22) % shard_count
