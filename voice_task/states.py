"""The voice task's two state machines, each with the one table of the moves it allows.

``Lifecycle`` is the task's life (claim the lease, connect, be in voice, leave); ``PlaybackState``
is what the player is doing. A ``Machine`` logs each change once, with its reason. A move the table
does not allow is a bug: it raises ``IllegalTransition`` when the machine is strict (tests run the
task with ``TIMMYBOT_STRICT_STATES=true``) and is logged at ERROR, and made anyway, otherwise, so a
production task keeps playing. docs/ARCHITECTURE.md shows both tables.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Generic, TypeVar

_log = logging.getLogger(__name__)


class Lifecycle(enum.StrEnum):
    STARTING = "starting"
    CLAIMED = "claimed"  # holds the lease
    CONNECTING = "connecting"  # gateway and first voice join
    IN_VOICE = "in_voice"
    RECONNECTING = "reconnecting"  # the voice connection is being recovered
    LEAVING = "leaving"
    DONE = "done"


LIFECYCLE_MOVES: Mapping[Lifecycle, frozenset[Lifecycle]] = {
    Lifecycle.STARTING: frozenset({Lifecycle.CLAIMED, Lifecycle.LEAVING}),
    Lifecycle.CLAIMED: frozenset({Lifecycle.CONNECTING, Lifecycle.LEAVING}),
    Lifecycle.CONNECTING: frozenset({Lifecycle.IN_VOICE, Lifecycle.LEAVING}),
    Lifecycle.IN_VOICE: frozenset({Lifecycle.RECONNECTING, Lifecycle.LEAVING}),
    Lifecycle.RECONNECTING: frozenset({Lifecycle.IN_VOICE, Lifecycle.LEAVING}),
    Lifecycle.LEAVING: frozenset({Lifecycle.DONE}),
    Lifecycle.DONE: frozenset(),
}


class PlaybackState(enum.StrEnum):
    IDLE = "idle"  # nothing loaded
    RESOLVING = "resolving"  # finding the stream of the next track
    PLAYING = "playing"
    PAUSED = "paused"
    FAILED = "failed"  # the track could not be played or its stream broke: deciding what next
    STOPPING = "stopping"  # the task is leaving; nothing starts any more


PLAYBACK_MOVES: Mapping[PlaybackState, frozenset[PlaybackState]] = {
    PlaybackState.IDLE: frozenset({PlaybackState.RESOLVING, PlaybackState.STOPPING}),
    PlaybackState.RESOLVING: frozenset(
        {PlaybackState.PLAYING, PlaybackState.PAUSED, PlaybackState.FAILED, PlaybackState.IDLE, PlaybackState.STOPPING}
    ),
    PlaybackState.PLAYING: frozenset(
        {
            PlaybackState.PAUSED,
            PlaybackState.RESOLVING,
            PlaybackState.FAILED,
            PlaybackState.IDLE,
            PlaybackState.STOPPING,
        }
    ),
    PlaybackState.PAUSED: frozenset(
        {
            PlaybackState.PLAYING,
            PlaybackState.RESOLVING,
            PlaybackState.IDLE,
            PlaybackState.FAILED,
            PlaybackState.STOPPING,
        }
    ),
    PlaybackState.FAILED: frozenset({PlaybackState.RESOLVING, PlaybackState.IDLE, PlaybackState.STOPPING}),
    PlaybackState.STOPPING: frozenset(),
}

S = TypeVar("S", Lifecycle, PlaybackState)


class IllegalTransition(RuntimeError):
    """A state change its table does not allow (a bug)."""


class Machine(Generic[S]):
    """A state with its table of allowed moves; every change goes through ``move``."""

    def __init__(self, name: str, initial: S, moves: Mapping[S, frozenset[S]], *, strict: bool) -> None:
        self.name = name
        self.state: S = initial
        self._moves: Mapping[S, frozenset[S]] = moves
        self._strict = strict

    def allows(self, target: S) -> bool:
        return target in self._moves[self.state]

    def move(self, target: S, reason: str) -> None:
        """Change to ``target`` (logged once, with ``reason``); staying put is not a change."""
        if target is self.state:
            return
        if not self.allows(target):
            message = f"{self.name}: {self.state.value} -> {target.value} is not allowed ({reason})"
            if self._strict:
                raise IllegalTransition(message)
            _log.error("%s; moving anyway", message)
        _log.info("%s %s -> %s (%s)", self.name, self.state.value, target.value, reason)
        self.state = target

    def __repr__(self) -> str:
        return f"<{self.name} {self.state.value}>"
