"""Logs and metrics per interaction.

In Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set): Powertools Logger (JSON with interaction_id, guild_id,
user_id and command keys) and Powertools Metrics (namespace "TimmyBot": Count, Latency, Errors per
``command``), flushed once per interaction. Locally: plain readable log lines. Powertools is imported
only when the Lambda flavour is built, never at module import.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Protocol

from timmybot.logformat import OneLineFormatter

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

_log = logging.getLogger(__name__)

NAMESPACE = "TimmyBot"
SERVICE = "timmybot-api"
PACKAGE_LOGGERS = ("chalicelib", "timmybot")
CONTEXT_KEYS = ("interaction_id", "guild_id", "user_id", "command")


class Observability(Protocol):
    def start(self, *, interaction_id: str, guild_id: str | None, user_id: str | None, command: str) -> None:
        """An interaction begins: attach its keys to every log line until ``finish``."""

    def finish(self, *, command: str, latency_ms: float, error: bool) -> None:
        """Record count, latency and errors for ``command`` and flush."""


class LocalObservability:
    """Plain logs; metrics become one readable line per interaction."""

    def start(self, *, interaction_id: str, guild_id: str | None, user_id: str | None, command: str) -> None:
        _log.debug("interaction %s guild=%s user=%s command=%s", interaction_id, guild_id, user_id, command)

    def finish(self, *, command: str, latency_ms: float, error: bool) -> None:
        _log.info("command=%s latency_ms=%.1f error=%s", command, latency_ms, error)


class LambdaObservability:
    """Powertools Logger + Metrics (EMF on stdout, picked up by CloudWatch)."""

    def __init__(self, *, level: str = "INFO") -> None:
        from aws_lambda_powertools import Logger, Metrics  # noqa: PLC0415 - only inside Lambda

        self._logger: Logger = Logger(service=SERVICE, level=level)
        self._metrics: Metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(self._logger.registered_formatter)
        for name in PACKAGE_LOGGERS:
            package_logger = logging.getLogger(name)
            package_logger.handlers = [handler]
            package_logger.setLevel(level)
            package_logger.propagate = False

    def start(self, *, interaction_id: str, guild_id: str | None, user_id: str | None, command: str) -> None:
        self._logger.append_keys(interaction_id=interaction_id, guild_id=guild_id, user_id=user_id, command=command)

    def finish(self, *, command: str, latency_ms: float, error: bool) -> None:
        from aws_lambda_powertools.metrics import MetricUnit  # noqa: PLC0415 - loaded already in __init__

        self._metrics.add_dimension(name="command", value=command)
        self._metrics.add_metric(name="Count", unit=MetricUnit.Count, value=1)
        self._metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
        self._metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1 if error else 0)
        self._metrics.flush_metrics()
        self._logger.remove_keys(list(CONTEXT_KEYS))


def configure_local_logging(level: str) -> None:
    """Readable logs for `chalice local` and scripts (a no-op if logging is configured already)."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def build_observability(*, in_lambda: bool, level: str) -> Observability:
    return LambdaObservability(level=level) if in_lambda else LocalObservability()
