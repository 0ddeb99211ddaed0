"""Operational metrics, namespace ``TimmyBot``, the same names everywhere (docs/ARCHITECTURE.md).

On AWS (a Lambda, or a Fargate task whose stdout goes to CloudWatch Logs) each metric is one line
of CloudWatch's embedded metric format (EMF) on stdout, which CloudWatch turns into a metric with
no API call. Everywhere else it is a readable ``metric=<name> value=<n> key=value`` log line.
``TIMMYBOT_METRICS=emf|log`` forces either. Import-light: stdlib only.

Names and dimensions the alarms watch (infra/template.yaml):
    IdentifyBudgetRemaining   no dimension
    SourceFailures            reason (and source, reason)
    VoiceCloseCode            code

Usage (docs/ARCHITECTURE.md, with their cost):
    TracksPlayed              source (the platform the audio came from; no guild or user)
    TrackCacheLookups         result (hit, miss)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence

_log = logging.getLogger(__name__)

NAMESPACE = "TimmyBot"

IDENTIFY_BUDGET_REMAINING = "IdentifyBudgetRemaining"
LAUNCHES_REFUSED = "LaunchesRefused"
SOURCE_FAILURES = "SourceFailures"
SOURCE_BREAKER_OPENED = "SourceBreakerOpened"
VOICE_CLOSE_CODE = "VoiceCloseCode"
VOICE_STALE_TASKS = "VoiceStaleTasks"
TASKS_STARTED = "VoiceTasksStarted"
TASK_EXITS = "VoiceTaskExits"
TRACKS_FAILED = "TracksFailed"
TRACKS_PLAYED = "TracksPlayed"  # one per track that really started playing, dimension source only
TRACK_CACHE_LOOKUPS = "TrackCacheLookups"  # dimension result: hit or miss


def emf_enabled() -> bool:
    mode = os.environ.get("TIMMYBOT_METRICS", "auto").lower()
    if mode in ("emf", "log"):
        return mode == "emf"
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get("ECS_CONTAINER_METADATA_URI_V4"))


def emf_document(
    name: str,
    value: float,
    *,
    unit: str = "Count",
    dimensions: Mapping[str, str] | None = None,
    dimension_sets: Sequence[Sequence[str]] | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, object]:
    """One EMF document: the metric, its dimension sets, and the dimension values as members."""
    dims = {key: str(val) for key, val in (dimensions or {}).items()}
    sets = [list(s) for s in dimension_sets] if dimension_sets is not None else [list(dims)]
    return {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": [{"Name": name, "Unit": unit}]}
            ],
        },
        name: value,
        **dims,
    }


def emit(
    name: str,
    value: float = 1,
    *,
    unit: str = "Count",
    dimensions: Mapping[str, str] | None = None,
    dimension_sets: Sequence[Sequence[str]] | None = None,
) -> None:
    """Record one metric value (a count of 1 by default)."""
    dims = dict(dimensions or {})
    _log.info("metric=%s value=%s%s", name, value, "".join(f" {k}={v}" for k, v in dims.items()))
    if emf_enabled():
        document = emf_document(name, value, unit=unit, dimensions=dims, dimension_sets=dimension_sets)
        sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
        sys.stdout.flush()
