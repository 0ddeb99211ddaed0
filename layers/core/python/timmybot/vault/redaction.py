"""Keep token payloads out of botocore's DEBUG logs.

At DEBUG botocore logs request parameters and response bodies: a ``SecretString`` holding a
user's tokens, or KMS's plaintext data key. A filter on those loggers drops such records (the
rest of botocore's debug output stays). It is installed by every AWS vault adapter.
"""

from __future__ import annotations

import logging

_MARKERS = ("SecretString", "Plaintext", "access_token", "refresh_token")
_LOGGERS = ("botocore.endpoint", "botocore.parsers", "botocore.hooks", "botocore.response", "botocore.auth")


class _DropTokenPayloads(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True
        return not any(marker in text for marker in _MARKERS)


_FILTER = _DropTokenPayloads()


def keep_payloads_out_of_botocore_logs() -> None:
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
