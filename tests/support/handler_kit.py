"""Command handlers called the way Discord reaches them, without HTTP: a signed interaction through
``handle_interaction`` with services on the in-memory Store.

    with handler_api(tmp_path) as api:
        answer = api.post(command("skip"))
        assert answer.json_body["data"]["flags"] == EPHEMERAL

This is the unit tests' ``api`` (``tests/unit/conftest.py``). It answers like ``SignedApi`` (the
Chalice app over a SQLite file, kept in e2e for the endpoint itself: signatures, sizes, routes):
``post`` signs the body with a real Ed25519 key, ``handle_interaction`` verifies it, and a 200
answer is held to what Discord's callback endpoint takes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.bootstrap import Services, app_services, bootstrap
from chalicelib.interactions import handle_interaction
from tests.support.emulator.discord_rules import check_answer
from tests.support.signing import Signer, make_settings
from timmybot.store.base import Store
from timmybot.store.memory import MemoryStore
from timmybot.wake import send_hints


@dataclass(frozen=True)
class Answer:
    """What the endpoint would have sent: the status and the JSON body as Discord would parse it."""

    status_code: int
    json_body: Any


@dataclass
class HandlerApi:
    signer: Signer
    services: Services

    @property
    def store(self) -> Store:
        return self.services.store

    def post(self, payload: Mapping[str, Any]) -> Answer:
        body = json.dumps(payload).encode()
        result = handle_interaction(self.services, self.signer.headers(body), body)
        # Through JSON and back, as the endpoint serialises it: tuples become lists, keys strings.
        answer = Answer(status_code=result.status, json_body=json.loads(json.dumps(dict(result.body))))
        if answer.status_code == 200:
            check_answer(dict(payload), answer.json_body)
        return answer


@contextlib.contextmanager
def handler_api(tmp_path: Path, **overrides: Any) -> Iterator[HandlerApi]:
    """Services built from test settings (``overrides`` as for ``signed_api``) on a ``MemoryStore``,
    with the wake hints the settings ask for, installed via ``app_services.override`` for the code
    that still looks them up."""
    signer = Signer()
    settings = make_settings(tmp_path, signer, **overrides)
    services = bootstrap(settings, store=send_hints(MemoryStore(), settings), in_lambda=False)
    with app_services.override(services):
        yield HandlerApi(signer=signer, services=services)
