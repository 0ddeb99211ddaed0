"""GIVEN third-party loggers at DEBUG WHEN they print secrets THEN the one redaction filter drops them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from timmybot import redaction

CORE = Path(__file__).resolve().parents[2] / "layers" / "core" / "python" / "timmybot"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def collected() -> Iterator[_Collect]:
    handler = _Collect()
    names = ("botocore.endpoint", "botocore.parsers", "spotipy.client")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_payloads_and_spotipy_debug_are_dropped_and_the_rest_passes(collected: _Collect) -> None:
    redaction.install()
    redaction.install()  # idempotent: one filter per logger
    logging.getLogger("botocore.parsers").debug("Response body: %s", '{"SecretString": "{\\"access_token\\": 1}"}')
    logging.getLogger("botocore.endpoint").debug("Sending %s with Plaintext=%s", "Decrypt", "k3y")
    logging.getLogger("spotipy.client").debug("Sending GET with headers %s", {"Authorization": "Bearer abc"})
    logging.getLogger("botocore.endpoint").debug("Making request for %s", "GetItem")
    logging.getLogger("spotipy.client").warning("HTTP Error for GET to %s", "/v1/me")

    assert collected.messages == ["Making request for GetItem", "HTTP Error for GET to /v1/me"]
    assert logging.getLogger("botocore.parsers").filters.count(redaction.FILTER) == 1


def test_the_core_installs_filters_on_loggers_in_one_place_only() -> None:
    installers = sorted(p.relative_to(CORE).as_posix() for p in CORE.rglob("*.py") if "addFilter(" in p.read_text())
    assert installers == ["redaction.py"]
