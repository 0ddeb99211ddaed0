"""Done-callbacks for the voice task's background tasks outside ``VoiceTask.spawn`` (the card's held
edit, the gateway client, the log context's generation tracker): a task that fails says so in the
log at once, with its traceback, instead of as "Task exception was never retrieved" at garbage
collection, or never."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any


def report_failure(
    log: logging.Logger, name: str, *, then: Callable[[BaseException], None] | None = None
) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback that logs the task's exception (not a cancel, not a normal end) and then calls
    ``then`` with it (for a task whose failure must end the voice task)."""

    def done(finished: asyncio.Task[Any]) -> None:
        if finished.cancelled():
            return
        error = finished.exception()
        if error is None:
            return
        log.error("background task %s failed", name, exc_info=error)
        if then is not None:
            then(error)

    return done
