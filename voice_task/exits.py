"""Why a voice task ends, what it tells the channel, and which ends keep the track to resume."""

from __future__ import annotations

import enum
import os


class ExitReason(enum.StrEnum):
    STOPPED = "stopped"  # /stop
    IDLE = "idle"  # nothing queued or played for idle_timeout
    ALONE = "alone"  # no human in the channel for alone_timeout
    SUPERSEDED = "superseded"  # another task holds the lease now
    LEASE_REFUSED = "lease_refused"  # could not claim the lease at start
    SIGTERM = "sigterm"  # Spot interruption or deploy: saved a resume point
    RESTING = "resting"  # the daily identify budget is spent
    DISCONNECTED = "disconnected"  # kicked from voice / channel gone
    VOICE_LOST = "voice_lost"  # the voice connection could not be got back before its deadline
    ERROR = "error"


EXIT_MESSAGES: dict[ExitReason, str] = {
    ExitReason.STOPPED: "Stopped and left the channel.",
    ExitReason.IDLE: "Left the channel: nothing was queued for a while.",
    ExitReason.ALONE: "Left the channel: nobody was listening.",
    ExitReason.SIGTERM: "Restarting the player; music resumes in a moment.",
    ExitReason.RESTING: "Left the channel: the bot is resting to stay within Discord's daily connection limit.",
    ExitReason.DISCONNECTED: "Left the channel: I was disconnected.",
    ExitReason.VOICE_LOST: "Lost the voice connection and could not get it back. /play to continue where it stopped.",
    ExitReason.ERROR: "The player hit an error and left.",
}
#: Exits that keep the current track at the head of the queue with its position.
RESUMABLE = frozenset({ExitReason.SIGTERM, ExitReason.VOICE_LOST})


def holder_id() -> str:
    """The lease holder: ``ecs:<task id>`` in Fargate (the last part of the task metadata URI), else
    ``<host>:<pid>``."""
    arn = os.environ.get("ECS_CONTAINER_METADATA_URI_V4", "")
    if arn:
        return f"ecs:{arn.rsplit('/', 1)[-1]}"
    return f"pid:{os.getpid()}"
