"""A clock that tests move by hand, for TTLs, lease expiry and dedupe windows."""

from __future__ import annotations

import threading

START = 1_800_000_000.0  # a fixed, realistic epoch second (January 2027)


class FakeClock:
    """Callable like ``time.time``; time only moves when a test calls ``advance``."""

    def __init__(self, start: float = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``; returns the new time."""
        if seconds < 0:
            raise ValueError("A clock never goes back.")
        with self._lock:
            self._now += seconds
            return self._now
