"""Keep secrets out of third-party libraries' DEBUG logs: one filter, installed one way.

At DEBUG, botocore logs request parameters and response bodies (a ``SecretString`` holding a
user's tokens or the operator's cookies, KMS's plaintext data key) and spotipy logs request
headers (the bearer token). ``install()`` puts one filter on those libraries' loggers; it drops
botocore records that carry a payload marker and every spotipy DEBUG record, and lets the rest
of their output through. Every adapter that talks to those libraries calls it before its first
call; it is idempotent and thread-safe.
"""

from __future__ import annotations

import logging
import threading

#: What marks a botocore record as carrying a secret payload.
PAYLOAD_MARKERS = ("SecretString", "Plaintext", "access_token", "refresh_token")
_BOTOCORE_LOGGERS = ("botocore.endpoint", "botocore.parsers", "botocore.hooks", "botocore.response", "botocore.auth")
_SPOTIPY_LOGGERS = ("spotipy", "spotipy.client", "spotipy.oauth2")


class SecretRecordFilter(logging.Filter):
    """Drops the records that may carry a secret: spotipy's DEBUG lines, botocore's payload dumps."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("spotipy") and record.levelno <= logging.DEBUG:
            return False
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True
        return not any(marker in text for marker in PAYLOAD_MARKERS)


FILTER = SecretRecordFilter()
_lock = threading.Lock()


def install() -> None:
    """Put the filter on every third-party logger that can print a secret (once)."""
    with _lock:
        for name in (*_BOTOCORE_LOGGERS, *_SPOTIPY_LOGGERS):
            logger = logging.getLogger(name)
            if FILTER not in logger.filters:
                logger.addFilter(FILTER)
