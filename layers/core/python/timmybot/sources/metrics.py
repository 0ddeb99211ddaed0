"""Source metrics on the shared emitter (``timmybot.metrics``): one count per failure.

``SourceFailures`` carries two dimension sets, ``reason`` (what the bot_check alarm watches) and
``source, reason``; ``SourceBreakerOpened`` likewise.
"""

from __future__ import annotations

from timmybot import metrics

DIMENSION_SETS = (("reason",), ("source", "reason"))


def emit_source_failure(source: str, reason: str) -> None:
    """Count one failure of ``source`` for ``reason`` (bot_check, stream_403, timeout...)."""
    metrics.emit(
        metrics.SOURCE_FAILURES, dimensions={"source": source, "reason": reason}, dimension_sets=DIMENSION_SETS
    )


def emit_breaker_opened(source: str, reason: str) -> None:
    """Count one opening of ``source``'s circuit breaker."""
    metrics.emit(
        metrics.SOURCE_BREAKER_OPENED, dimensions={"source": source, "reason": reason}, dimension_sets=DIMENSION_SETS
    )
