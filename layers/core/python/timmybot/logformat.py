"""Text log lines that stay one line, whatever the values in them (shared by every process)."""

from __future__ import annotations

import logging

_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F) if code != 0x09}


class OneLineFormatter(logging.Formatter):
    """CR, LF and the other control characters in a message are escaped, so no value (a title, a
    query parameter) can forge a log line; a traceback keeps its own lines (it is added after)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_CONTROL)
