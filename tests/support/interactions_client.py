"""A signed client for a Discord interactions endpoint, with realistic payload builders.

It holds its own Ed25519 key pair (give ``public_key_hex`` to the app as its Discord public key),
signs ``timestamp + body`` like Discord, POSTs with urllib and returns ``(status, json)``.

Usage::

    client = InteractionsClient("http://127.0.0.1:8000/interactions")
    actor = Actor(guild_id=g.id, channel_id=g.text_channel_id, user_id=alice)
    status, body = client.send(client.command("play", {"query": "tone"}, actor=actor))
    edits = webhook_messages(emulator, client.last_token)
"""

from __future__ import annotations

import enum
import itertools
import json
import secrets
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import nacl.signing

from tests.support.emulator.discord_rules import check_answer

if TYPE_CHECKING:
    from tests.support.emulator import DiscordEmulator, WebhookRecord

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
_counter = itertools.count(1)

#: Permissions a regular member has in a default server (see emulator.state).
DEFAULT_MEMBER_PERMISSIONS = (1 << 0) | (1 << 6) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 18) \
    | (1 << 20) | (1 << 21) | (1 << 25) | (1 << 31)  # fmt: skip
#: What the bot typically has where it is invited with voice permissions.
DEFAULT_APP_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS


class InteractionType(enum.IntEnum):
    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    APPLICATION_COMMAND_AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class OptionType(enum.IntEnum):
    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    NUMBER = 10


class ComponentType(enum.IntEnum):
    ACTION_ROW = 1
    BUTTON = 2
    STRING_SELECT = 3
    TEXT_INPUT = 4


def snowflake() -> str:
    ms = int(time.time() * 1000)
    return str(((ms - DISCORD_EPOCH_MS) << 22) | (next(_counter) & 0x3FFFFF))


@dataclass(frozen=True)
class Actor:
    """Who sends an interaction, and where."""

    guild_id: int | str
    channel_id: int | str
    user_id: int | str = field(default_factory=snowflake)
    username: str = "tester"
    roles: Sequence[int | str] = ()
    permissions: int = DEFAULT_MEMBER_PERMISSIONS
    app_permissions: int = DEFAULT_APP_PERMISSIONS
    locale: str = "en-US"
    guild_locale: str = "en-US"


def _option(name: str, value: Any) -> JSON:
    if isinstance(value, bool):
        kind = OptionType.BOOLEAN
    elif isinstance(value, int):
        kind = OptionType.INTEGER
    elif isinstance(value, float):
        kind = OptionType.NUMBER
    else:
        kind = OptionType.STRING
        value = str(value)
    return {"name": name, "type": int(kind), "value": value}


def options_from(values: Mapping[str, Any] | Sequence[JSON] | None) -> list[JSON]:
    """``{"query": "x", "count": 2}`` → typed option objects; a list of raw option dicts passes through."""
    if values is None:
        return []
    if isinstance(values, Mapping):
        return [_option(k, v) for k, v in values.items()]
    return list(values)


Corruption = Literal["signature", "timestamp", "body", "missing_headers"]


class InteractionsClient:
    def __init__(
        self,
        endpoint_url: str,
        signing_key: nacl.signing.SigningKey | None = None,
        *,
        application_id: int | str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.signing_key = signing_key or nacl.signing.SigningKey.generate()
        self.application_id = str(application_id or snowflake())
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.last_token: str | None = None

    @property
    def public_key_hex(self) -> str:
        return self.signing_key.verify_key.encode().hex()

    # payload builders --------------------------------------------------------------------------
    def _base(self, kind: InteractionType, actor: Actor | None) -> JSON:
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        payload: JSON = {
            "id": snowflake(),
            "application_id": self.application_id,
            "type": int(kind),
            "token": token,
            "version": 1,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if actor is not None:
            user_id = str(actor.user_id)
            payload.update(
                guild_id=str(actor.guild_id),
                channel_id=str(actor.channel_id),
                channel={"id": str(actor.channel_id), "type": 0, "guild_id": str(actor.guild_id), "name": "general",
                         "flags": 0, "permissions": str(actor.permissions)},
                guild={"id": str(actor.guild_id), "locale": actor.guild_locale, "features": []},
                member={
                    "user": {"id": user_id, "username": actor.username, "discriminator": "0",
                             "global_name": actor.username, "avatar": None, "public_flags": 0},
                    "roles": [str(r) for r in actor.roles],
                    "permissions": str(actor.permissions),
                    "nick": None, "avatar": None, "joined_at": "2024-01-01T00:00:00+00:00",
                    "premium_since": None, "deaf": False, "mute": False, "pending": False, "flags": 0,
                    "communication_disabled_until": None,
                },
                app_permissions=str(actor.app_permissions),
                locale=actor.locale,
                guild_locale=actor.guild_locale,
                authorizing_integration_owners={"0": str(actor.guild_id)},
                context=0,
            )  # fmt: skip
        return payload

    def ping(self) -> JSON:
        return self._base(InteractionType.PING, None)

    def command(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        actor: Actor,
        command_id: int | str | None = None,
    ) -> JSON:
        """A slash command (type 2). ``options`` as ``{name: value}`` or raw option dicts."""
        payload = self._base(InteractionType.APPLICATION_COMMAND, actor)
        data: JSON = {"id": str(command_id or snowflake()), "name": name, "type": 1,
                      "options": options_from(options)}  # fmt: skip
        data["guild_id"] = str(actor.guild_id)
        payload["data"] = data
        return payload

    def autocomplete(self, name: str, focused: str, partial: str, other: Mapping[str, Any] | None = None,
                     *, actor: Actor) -> JSON:  # fmt: skip
        """Autocomplete (type 4) for option ``focused`` with the text typed so far."""
        payload = self._base(InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE, actor)
        opts = options_from(other)
        opts.append({"name": focused, "type": int(OptionType.STRING), "value": partial, "focused": True})
        payload["data"] = {"id": snowflake(), "name": name, "type": 1, "options": opts}
        return payload

    def component(
        self,
        custom_id: str,
        *,
        actor: Actor,
        component_type: ComponentType = ComponentType.BUTTON,
        values: Sequence[str] | None = None,
        message: JSON | None = None,
    ) -> JSON:
        """A message component press/select (type 3) on ``message`` (a minimal one by default)."""
        payload = self._base(InteractionType.MESSAGE_COMPONENT, actor)
        data: JSON = {"custom_id": custom_id, "component_type": int(component_type)}
        if values is not None:
            data["values"] = list(values)
        payload["data"] = data
        payload["message"] = message or {
            "id": snowflake(), "channel_id": str(actor.channel_id), "content": "", "embeds": [],
            "components": [], "flags": 0, "type": 20, "author": {"id": self.application_id, "username": "bot",
                                                                "discriminator": "0", "avatar": None, "bot": True},
        }  # fmt: skip
        return payload

    def modal_submit(self, custom_id: str, fields: Mapping[str, str], *, actor: Actor) -> JSON:
        """A modal submit (type 5) with text inputs ``{custom_id: value}``."""
        payload = self._base(InteractionType.MODAL_SUBMIT, actor)
        payload["data"] = {
            "custom_id": custom_id,
            "components": [
                {"type": int(ComponentType.ACTION_ROW),
                 "components": [{"type": int(ComponentType.TEXT_INPUT), "custom_id": k, "value": v}]}
                for k, v in fields.items()
            ],
        }  # fmt: skip
        return payload

    # sending -----------------------------------------------------------------------------------
    def sign(self, timestamp: str, body: bytes) -> str:
        return self.signing_key.sign(timestamp.encode() + body).signature.hex()

    def send(
        self,
        payload: JSON,
        *,
        corrupt: Corruption | None = None,
        timestamp: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """POST ``payload`` signed; ``corrupt`` breaks one part for negative tests.

        Returns ``(status, parsed JSON or text or None)``; HTTP errors are returned, not raised.
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        ts = timestamp or str(int(time.time()))
        signature = self.sign(ts, body)
        if corrupt == "signature":
            signature = ("0" if signature[0] != "0" else "1") + signature[1:]
        elif corrupt == "timestamp":
            ts = str(int(ts) + 1)
        elif corrupt == "body":
            body = body.replace(b'"type":', b'"type" :', 1)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Discord-Interactions/1.0 (+https://discord.com)",
            "X-Signature-Ed25519": signature,
            "X-Signature-Timestamp": ts,
            **(extra_headers or {}),
        }
        if corrupt == "missing_headers":
            del headers["X-Signature-Ed25519"], headers["X-Signature-Timestamp"]
        if isinstance(payload.get("token"), str):
            self.last_token = payload["token"]
        request = urllib.request.Request(self.endpoint_url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.ssl_context) as response:
                status, answer = response.status, _parse(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _parse(exc.read())
        if status == 200 and corrupt is None:
            check_answer(payload, answer)  # held to what Discord's callback endpoint takes
        return status, answer


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def webhook_messages(emulator: DiscordEmulator, token: str) -> list[WebhookRecord]:
    """What the bot sent on an interaction's webhook (edits of @original, follow-ups), oldest first."""
    return emulator.webhook_calls(token)


def wait_for_webhook(emulator: DiscordEmulator, token: str, *, count: int = 1, timeout: float = 10.0
                     ) -> list[WebhookRecord]:  # fmt: skip
    """Wait until at least ``count`` webhook calls arrived for ``token``."""
    return emulator.wait_for(
        lambda: calls if len(calls := emulator.webhook_calls(token)) >= count else None,
        timeout=timeout,
        message=f"{count} webhook call(s) for the interaction",
    )
