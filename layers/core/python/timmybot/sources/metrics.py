"""Source metrics: one count per failure, with the source and the reason as dimensions.

In Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set) the count goes out as a CloudWatch embedded-metric
(EMF) document through Powertools' ``single_metric``, imported on first use only. Everywhere else
(the voice task, local runs, tests) it is one structured log line,
``metric=source_failure source=<source> reason=<reason>``, which a log metric filter can count.
"""

from __future__ import annotations

import logging
import os

_log = logging.getLogger(__name__)

NAMESPACE = "TimmyBot"
SOURCE_FAILURE = "SourceFailure"
BREAKER_OPENED = "SourceBreakerOpened"


def in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def emit_source_failure(source: str, reason: str) -> None:
    """Count one failure of ``source`` for ``reason`` (bot_check, stream_403, timeout...)."""
    _emit(SOURCE_FAILURE, "source_failure", source, reason)


def emit_breaker_opened(source: str, reason: str) -> None:
    """Count one opening of ``source``'s circuit breaker."""
    _emit(BREAKER_OPENED, "source_breaker_opened", source, reason)


def _emit(metric_name: str, log_name: str, source: str, reason: str) -> None:
    _log.warning("metric=%s source=%s reason=%s", log_name, source, reason)
    if not in_lambda():
        return
    try:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric  # noqa: PLC0415 - Lambda only
    except ImportError:
        _log.warning("aws-lambda-powertools is missing; metric %s went to the log only", metric_name)
        return
    with single_metric(name=metric_name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="source", value=source)
        metric.add_dimension(name="reason", value=reason)
