"""Fixtures for handler tests: signed interactions through ``handle_interaction`` on the in-memory Store."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.handler_kit import HandlerApi, handler_api


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., HandlerApi]]:
    """``make_api(launcher="none", ...)``: the api's services with those test settings on a
    ``MemoryStore``, answering signed interactions without HTTP; closed after the test."""
    with contextlib.ExitStack() as apis:
        yield lambda **overrides: apis.enter_context(handler_api(tmp_path, **overrides))


@pytest.fixture
def api(make_api: Callable[..., HandlerApi]) -> HandlerApi:
    """The api's services with the default test settings."""
    return make_api()
