"""Metrics come out as CloudWatch EMF on AWS and as log lines elsewhere, with the alarm's names."""

from __future__ import annotations

import json

import pytest

from timmybot import metrics


def test_on_aws_a_metric_is_one_emf_line_with_every_dimension_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", "http://127.0.0.1:9/v4/task")  # only its presence counts

    metrics.emit(
        metrics.SOURCE_FAILURES,
        dimensions={"source": "youtube", "reason": "bot_check"},
        dimension_sets=[["reason"], ["source", "reason"]],
    )

    [line] = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "TimmyBot"
    assert directive["Dimensions"] == [["reason"], ["source", "reason"]]
    assert directive["Metrics"] == [{"Name": "SourceFailures", "Unit": "Count"}]
    assert (document["SourceFailures"], document["reason"], document["source"]) == (1, "bot_check", "youtube")


def test_a_metric_without_dimensions_uses_one_empty_dimension_set() -> None:
    document = metrics.emf_document(metrics.IDENTIFY_BUDGET_REMAINING, 912, timestamp_ms=5)

    assert document["_aws"] == {
        "Timestamp": 5,
        "CloudWatchMetrics": [
            {
                "Namespace": "TimmyBot",
                "Dimensions": [[]],
                "Metrics": [{"Name": "IdentifyBudgetRemaining", "Unit": "Count"}],
            }
        ],
    }
    assert document["IdentifyBudgetRemaining"] == 912


def test_off_aws_a_metric_is_a_log_line_and_stdout_stays_clean(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4", raising=False)
    with caplog.at_level("INFO", logger="timmybot.metrics"):
        metrics.emit(metrics.VOICE_CLOSE_CODE, dimensions={"code": "4017"})

    assert capsys.readouterr().out == ""
    assert "metric=VoiceCloseCode value=1 code=4017" in caplog.text
