"""Signed interactions for tests: real Ed25519 keys, Discord-shaped payloads, and the api app
answering them through ``chalice.test.Client`` with test settings.

    with signed_api(tmp_path) as api:
        response = api.post(command("skip"))
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import app
from chalice.test import Client, HTTPResponse
from nacl.signing import SigningKey

from chalicelib.bootstrap import Services, app_services, bootstrap
from tests.support.emulator.discord_rules import check_answer
from timmybot.config import Settings
from timmybot.models import Actual, LeaseState, QueueEntry, Track
from timmybot.store.base import Store

GUILD_ID = "123456789012345678"
OTHER_GUILD_ID = "876543210987654321"
USER_ID = "111111111111111111"
OTHER_USER_ID = "222222222222222222"
DJ_ROLE_ID = "333333333333333333"
APPLICATION_ID = "444444444444444444"
CHANNEL_ID = "555555555555555555"
MANAGE_GUILD = str(1 << 5)
#: Discord's message flag for a reply only the user who acted sees.
EPHEMERAL = 64

_ids = itertools.count(1_000_000_000_000_000_000)


class Signer:
    """Signs like Discord: Ed25519 over ``timestamp + raw body``."""

    def __init__(self, key: SigningKey | None = None) -> None:
        self.key = key or SigningKey.generate()

    @property
    def public_key_hex(self) -> str:
        return self.key.verify_key.encode().hex()

    def headers(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        stamp = timestamp or str(int(time.time()))
        signature = self.key.sign(stamp.encode() + body).signature.hex()
        return {
            "Content-Type": "application/json",
            "X-Signature-Ed25519": signature,
            "X-Signature-Timestamp": stamp,
        }


def next_interaction_id() -> str:
    return str(next(_ids))


def _base(
    kind: int,
    data: Mapping[str, Any] | None,
    *,
    guild_id: str | None,
    user_id: str,
    roles: Sequence[str],
    permissions: str,
    interaction_id: str | None,
    user_fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": interaction_id or next_interaction_id(),
        "application_id": APPLICATION_ID,
        "type": kind,
        "token": "interaction-token-secret",
        "version": 1,
        "channel_id": CHANNEL_ID,
        "locale": "en-US",
    }
    if data is not None:
        payload["data"] = dict(data)
    user = {"id": user_id, "username": "tester", **(user_fields or {})}
    if guild_id is None:
        payload["user"] = user
    else:
        payload["guild_id"] = guild_id
        payload["member"] = {"user": user, "roles": list(roles), "permissions": permissions}
    return payload


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, float):
        return 10  # NUMBER
    return 4 if isinstance(value, int) else 3


def command(
    name: str,
    options: Mapping[str, Any] | None = None,
    *,
    guild_id: str | None = GUILD_ID,
    user_id: str = USER_ID,
    roles: Sequence[str] = (),
    permissions: str = "0",
    interaction_id: str | None = None,
    user_fields: Mapping[str, Any] | None = None,
    sub: str = "",
) -> dict[str, Any]:
    """An APPLICATION_COMMAND (type 2) interaction for ``/name`` with top-level options.

    ``sub`` names a subcommand, its group first (``"dj only"``): the options are then nested in it
    as Discord nests them. ``user_fields`` adds to (or replaces) the member's user object:
    ``username``, ``global_name``.
    """
    data: dict[str, Any] = {"id": "999", "name": name, "type": 1}
    typed = [{"name": key, "type": _option_type(value), "value": value} for key, value in (options or {}).items()]
    for level, part in reversed(list(enumerate(sub.split()))):
        nested: dict[str, Any] = {"name": part, "type": 2 if level < len(sub.split()) - 1 else 1}
        if typed:
            nested["options"] = typed
        typed = [nested]
    if typed:
        data["options"] = typed
    return _base(
        2,
        data,
        guild_id=guild_id,
        user_id=user_id,
        roles=roles,
        permissions=permissions,
        interaction_id=interaction_id,
        user_fields=user_fields,
    )


def component(
    custom_id: Any,
    *,
    guild_id: str | None = GUILD_ID,
    user_id: str = USER_ID,
    roles: Sequence[str] = (),
    permissions: str = "0",
    interaction_id: str | None = None,
) -> dict[str, Any]:
    """A MESSAGE_COMPONENT (type 3) button click."""
    data = {"custom_id": custom_id, "component_type": 2}
    return _base(
        3, data, guild_id=guild_id, user_id=user_id, roles=roles, permissions=permissions, interaction_id=interaction_id
    )


def autocomplete(name: str = "queue", *, guild_id: str | None = GUILD_ID) -> dict[str, Any]:
    """An APPLICATION_COMMAND_AUTOCOMPLETE (type 4) interaction."""
    data = {"name": name, "type": 1, "options": [{"name": "page", "type": 4, "value": 1, "focused": True}]}
    return _base(4, data, guild_id=guild_id, user_id=USER_ID, roles=(), permissions="0", interaction_id=None)


def modal_submit(custom_id: str = "v1:np:pause", *, guild_id: str | None = GUILD_ID) -> dict[str, Any]:
    """A MODAL_SUBMIT (type 5) interaction."""
    data = {"custom_id": custom_id, "components": []}
    return _base(5, data, guild_id=guild_id, user_id=USER_ID, roles=(), permissions="0", interaction_id=None)


def track_entry(
    entry_id: str, *, title: str | None = None, duration_s: int | None = 200, requester_id: str = USER_ID
) -> QueueEntry:
    return QueueEntry(
        entry_id=entry_id,
        track=Track.from_stored(
            {
                "title": title or f"Track {entry_id}",
                "url": f"https://www.youtube.com/watch?v={entry_id}",
                "duration_s": duration_s,
                "thumbnail": f"https://i.ytimg.com/vi/{entry_id}/hqdefault.jpg",
            }
        ),
        requester_id=requester_id,
        added_at=time.time(),
    )


def seed_queue(store: Store, count: int, *, guild_id: str = GUILD_ID, duration_s: int | None = 200) -> list[str]:
    """``count`` entries appended to the guild's queue; returns their ids in order."""
    entries = [track_entry(f"q{i:03d}", duration_s=duration_s) for i in range(1, count + 1)]
    store.append_entries(guild_id, entries, cap=5000)
    return [e.entry_id for e in entries]


def seed_playing(
    store: Store,
    *,
    guild_id: str = GUILD_ID,
    entry: QueueEntry | None = None,
    position_s: float = 30.0,
    listener_ids: Sequence[str] = (),
    paused: bool = False,
) -> QueueEntry:
    """Stand in for the voice task: take the lease and report a track playing."""
    playing = entry or track_entry("np1", title="Now Song", duration_s=240)
    lease = store.acquire_lease(guild_id, holder="test-task", state=LeaseState.RUNNING, ttl_s=300)
    assert lease is not None
    now = time.time()
    store.write_actual(
        guild_id,
        lease.generation,
        Actual(
            now_playing=playing,
            started_at=now - position_s,
            position_ms=int(position_s * 1000),
            paused=paused,
            listener_ids=tuple(listener_ids),
        ),
    )
    return playing


def post_checked(client: Client, signer: Signer, payload: Mapping[str, Any]) -> HTTPResponse:
    """POST a signed interaction to the api app; a 200 answer is held to what Discord's callback
    endpoint takes (``check_answer`` records any refusal or ping risk for the session guard)."""
    body = json.dumps(payload).encode()
    response = client.http.post("/interactions", headers=signer.headers(body), body=body)
    if response.status_code == 200:
        check_answer(dict(payload), response.json_body)
    return response


@dataclass
class SignedApi:
    client: Client
    signer: Signer
    services: Services
    db_path: Path

    @property
    def store(self) -> Store:
        return self.services.store

    def post(self, payload: Mapping[str, Any] | bytes, *, headers: Mapping[str, str] | None = None) -> HTTPResponse:
        if headers is None and not isinstance(payload, bytes):
            return post_checked(self.client, self.signer, payload)
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = dict(headers) if headers is not None else self.signer.headers(body)
        return self.client.http.post("/interactions", headers=sent, body=body)

    def get(self, path: str) -> HTTPResponse:
        return self.client.http.get(path)


def make_settings(tmp_path: Path, signer: Signer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_public_key": signer.public_key_hex,
        "discord_application_id": APPLICATION_ID,
        "store_backend": "sqlite",
        "sqlite_path": str(tmp_path / "timmybot.sqlite3"),
        "allowlist_extra": (GUILD_ID,),
        "data_dir": str(tmp_path),
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def signed_api(tmp_path: Path, **overrides: Any) -> Iterator[SignedApi]:
    """The api app with test settings (SQLite in ``tmp_path``) installed via ``app_services.override``."""
    signer = Signer()
    settings = make_settings(tmp_path, signer, **overrides)
    services = bootstrap(settings, in_lambda=False)
    with app_services.override(services), Client(app) as client:
        yield SignedApi(client=client, signer=signer, services=services, db_path=Path(settings.sqlite_path))
