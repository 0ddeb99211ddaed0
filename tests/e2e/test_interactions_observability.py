"""GIVEN the Lambda flavour of observability WHEN a command is handled THEN JSON logs carry the
interaction keys and one EMF metric set per command is flushed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app import app
from chalice.test import Client

from chalicelib.bootstrap import app_services, bootstrap
from chalicelib.observability import PACKAGE_LOGGERS
from tests.support.signing import GUILD_ID, USER_ID, Signer, command, make_settings, post_checked


@pytest.fixture(autouse=True)
def restore_package_loggers() -> Iterator[None]:
    """The Lambda flavour takes over our package loggers (as it should, once per container): undo it."""
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in map(logging.getLogger, PACKAGE_LOGGERS)]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def test_lambda_mode_emits_emf_metrics_per_command_and_json_logs_with_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN services built as in Lambda (Powertools Logger and Metrics on stdout)
    signer = Signer()
    services = bootstrap(make_settings(tmp_path, signer, log_level="DEBUG"), in_lambda=True)
    payload = command("volume", {"level": 70})
    # WHEN one command is handled (its answer held to what Discord's callback endpoint takes)
    with app_services.override(services), Client(app) as client:
        response = post_checked(client, signer, payload)
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    # THEN one EMF document in namespace TimmyBot with Count, Latency and Errors for command=volume
    emf = [line for line in lines if "_aws" in line]
    assert len(emf) == 1
    (directive,) = emf[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "TimmyBot"
    assert {m["Name"] for m in directive["Metrics"]} == {"Count", "Latency", "Errors"}
    assert emf[0]["command"] == "volume"
    assert _first(emf[0]["Count"]) == 1
    assert _first(emf[0]["Errors"]) == 0
    assert _first(emf[0]["Latency"]) > 0
    # AND the JSON log lines carry the interaction's keys, never its token
    logs = [line for line in lines if "_aws" not in line and "interaction_id" in line]
    assert logs
    assert logs[0]["interaction_id"] == payload["id"]
    assert logs[0]["guild_id"] == GUILD_ID
    assert logs[0]["user_id"] == USER_ID
    assert logs[0]["command"] == "volume"
    assert "interaction-token-secret" not in json.dumps(lines)
