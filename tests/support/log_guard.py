"""The session-wide token leak guard: no captured log message may contain a secret a fake issued.

``install()`` (at session start) lowers our package loggers to DEBUG, so every message our code
can write is formatted, and adds one handler to the root logger that searches each message (and
its traceback) for the fakes' marker (tests/support/oauth_server.py). ``leaks()`` at session end
lists what it found; the session then fails. The search runs as records arrive, so nothing is kept
but the leaks.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from tests.support.oauth_server import ISSUED, SECRET_PATTERN

GUARDED_LOGGERS = ("timmybot", "chalicelib", "voice_task")


@dataclass(frozen=True)
class Leak:
    logger: str
    level: str
    value_prefix: str  # enough to recognise it, never the whole secret

    def __str__(self) -> str:
        return f"{self.level} {self.logger}: a secret issued by a fake ({self.value_prefix}...)"


class TokenLeakGuard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self._found: list[Leak] = []
        self._found_lock = threading.Lock()
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + self._formatter.formatException(record.exc_info)
        # The marker alone is enough (only the fakes issue it), so a secret issued by a fake in a
        # subprocess, absent from this process's ISSUED, is caught too.
        found = [m.group(0) for m in SECRET_PATTERN.finditer(text)]
        found += [value for value in _issued_snapshot() if value in text and value not in found]
        if found:
            with self._found_lock:
                self._found.extend(Leak(record.name, record.levelname, value[:16]) for value in found)

    def leaks(self) -> list[Leak]:
        with self._found_lock:
            return list(self._found)

    def clear(self) -> None:
        with self._found_lock:
            self._found.clear()


def _issued_snapshot() -> list[str]:
    return list(ISSUED) if len(ISSUED) < 2000 else []  # the marker search covers the rest


GUARD = TokenLeakGuard()


def install() -> TokenLeakGuard:
    root = logging.getLogger()
    if GUARD not in root.handlers:
        root.addHandler(GUARD)
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.DEBUG)
    return GUARD
