"""What every handler gets (``CommandContext``) and how commands describe themselves (``Command``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.replies import Reply
from chalicelib.services import PORTS
from timmybot.config import Settings
from timmybot.discord.custom_ids import CustomId
from timmybot.discord.types import (
    ApplicationCommandType,
    CommandSchema,
    IntegrationType,
    InteractionContextType,
    InteractionType,
    OptionSchema,
    OptionType,
    Permission,
)
from timmybot.errors import InvalidInputError, PermissionDeniedError
from timmybot.models import GuildRecord

if TYPE_CHECKING:
    from chalicelib.services import Services

OptionValue = str | int | float | bool

NO_PERMISSIONS = Permission(0)
NAME_MAX = 32
DESCRIPTION_MAX = 100
OPTIONS_MAX = 25


@dataclass(frozen=True)
class CommandContext:
    """One verified, allowed interaction, reduced to what handlers need."""

    interaction_id: str
    application_id: str
    kind: InteractionType
    name: str  # the command name, or the component route (e.g. "queue.page")
    guild_id: str
    channel_id: str | None
    user_id: str
    settings: Settings
    now: float
    roles: frozenset[str] = frozenset()
    permissions: Permission = NO_PERMISSIONS
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    subcommand: str = ""  # the chosen subcommand, a group's name first ("dj only"); "" for a flat command
    custom_id: CustomId | None = None
    values: tuple[str, ...] = ()  # a select menu's chosen option values (untrusted: parse them)
    token: str = field(default="", repr=False)  # the interaction token (15 min); never log it
    app_permissions: int = 0
    locale: str | None = None
    username: str = ""  # the acting user's unique username (untrusted text: escape it where shown)
    display_name: str = ""  # their global_name, else the username (untrusted text)
    #: ``data.resolved.attachments`` of a command, by id: url, filename, size (untrusted: check them)
    attachments: Mapping[str, Mapping[str, str | int]] = field(default_factory=dict)

    def int_option(self, name: str, *, default: int | None = None) -> int:
        value = self.options.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"`{name}` must be a whole number.")
        return value

    def number_option(self, name: str, *, default: float | None = None) -> float:
        value = self.options.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"`{name}` must be a number.")
        return float(value)

    def str_option(self, name: str, *, default: str | None = None) -> str:
        value = self.options.get(name, default)
        if not isinstance(value, str):
            raise InvalidInputError(f"`{name}` is missing.")
        return value

    def job_envelope(self) -> dict[str, Any]:
        """What every deferred job carries of its interaction: to answer it and to judge its user."""
        return {
            "interaction_id": self.interaction_id,
            "application_id": self.application_id,
            "token": self.token,
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "user_id": self.user_id,
            "roles": tuple(sorted(self.roles)),
            "permissions": int(self.permissions),
        }

    def is_manager(self) -> bool:
        return bool(self.permissions & (Permission.MANAGE_GUILD | Permission.ADMINISTRATOR))


Handler = Callable[..., Reply]
"""A command or component handler: ``(ctx, <the ports it uses, by name>) -> Reply``, for example
``def skip(ctx: CommandContext, store: Store) -> Reply`` or ``def play(ctx, store, dispatcher)``.
The names it may use are ``chalicelib.services.PORTS``; ``bind`` checks them at import."""

CONTEXT_PARAMETER = "ctx"


class UnknownPortError(TypeError):
    """A handler names a parameter the bootstrap does not provide (raised at import, not per request)."""


@dataclass(frozen=True)
class BoundHandler:
    """A handler and the ports its signature names, read once at registration. Calling it with the
    process's services passes exactly those ports, each built on first use; nothing else is built."""

    function: Handler
    ports: tuple[str, ...]

    def __call__(self, ctx: CommandContext, services: Services) -> Reply:
        return self.function(ctx, **{name: PORTS[name](services) for name in self.ports})

    @property
    def name(self) -> str:
        return f"{self.function.__module__}.{self.function.__qualname__}"


def bind(handler: Handler) -> BoundHandler:
    """Read ``handler``'s parameters once: the first is the context, every other one must name a
    port of ``PORTS``. Anything else (an unknown name, ``*args``, a default) fails here, at import,
    with the handler's name and what the bootstrap provides."""
    where = f"{handler.__module__}.{handler.__qualname__}"
    parameters = list(inspect.signature(handler).parameters.values())
    if not parameters or parameters[0].name != CONTEXT_PARAMETER:
        raise UnknownPortError(f"handler {where} must take `{CONTEXT_PARAMETER}` (the CommandContext) first")
    ports: list[str] = []
    for parameter in parameters[1:]:
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise UnknownPortError(f"handler {where}: `{parameter}` is not a port (name each port it uses)")
        if parameter.name not in PORTS:
            provided = ", ".join(sorted(PORTS))
            raise UnknownPortError(
                f"handler {where} asks for `{parameter.name}`, which the bootstrap does not provide "
                f"(it provides: {provided})"
            )
        if parameter.default is not parameter.empty:
            raise UnknownPortError(f"handler {where}: port `{parameter.name}` must not have a default")
        ports.append(parameter.name)
    return BoundHandler(handler, tuple(ports))


def is_dj(ctx: CommandContext, record: GuildRecord) -> bool:
    """Manage Server, the guild's DJ role, or being alone with the bot (nobody else to disturb)."""
    if ctx.is_manager():
        return True
    dj_role = record.settings.dj_role_id
    if dj_role and dj_role in ctx.roles:
        return True
    return record.actual.listener_ids == (ctx.user_id,)


def require_control(ctx: CommandContext, record: GuildRecord) -> None:
    """BRIEF §5: listeners in the bot's channel control it; the DJ role and Manage Server always may.

    Before the voice task has published who listens (no listener ids) anyone may. In DJ-only mode
    (``/settings dj only``) only the DJ role, Manage Server and a member alone with the bot may:
    nobody else, listening or not, and no vote stands in for it.
    """
    if is_dj(ctx, record):
        return
    if record.settings.dj_only:
        raise PermissionDeniedError(dj_only_refusal(record, "control playback"))
    listeners = record.actual.listener_ids
    if not listeners or ctx.user_id in listeners:
        return
    dj_role = record.settings.dj_role_id
    dj_hint = f", have the <@&{dj_role}> role" if dj_role else ""
    raise PermissionDeniedError(
        f"Only members listening in my voice channel{dj_hint} or with Manage Server can control playback. "
        "Join the channel first."
    )


def require_adding(ctx: CommandContext, record: GuildRecord) -> None:
    """With DJ-only mode and ``dj_only_adding`` on, only DJs (as above) add tracks."""
    if record.settings.dj_only and record.settings.dj_only_adding and not is_dj(ctx, record):
        raise PermissionDeniedError(dj_only_refusal(record, "add tracks"))


def dj_only_refusal(record: GuildRecord, what: str) -> str:
    dj_role = record.settings.dj_role_id
    if dj_role:
        return f"DJ-only mode is on: only members with the <@&{dj_role}> role or Manage Server can {what}."
    return f"DJ-only mode is on and no DJ role is set, so only members with Manage Server can {what}."


@dataclass(frozen=True)
class Choice:
    name: str
    value: str | int


@dataclass(frozen=True)
class Option:
    name: str
    description: str
    type: OptionType
    required: bool = True
    min_value: int | float | None = None
    max_value: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[Choice, ...] = ()
    options: tuple[Option, ...] = ()  # a subcommand's own options, or a group's subcommands
    autocomplete: bool = False  # Discord asks for choices while the user types (never with ``choices``)

    def schema(self) -> OptionSchema:
        if self.type in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
            nested: OptionSchema = {"type": self.type, "name": self.name, "description": self.description}
            if self.options:
                nested["options"] = [option.schema() for option in self.options]
            return nested
        data: OptionSchema = {
            "type": self.type,
            "name": self.name,
            "description": self.description,
            "required": self.required,
        }
        if self.min_value is not None:
            data["min_value"] = self.min_value
        if self.max_value is not None:
            data["max_value"] = self.max_value
        if self.min_length is not None:
            data["min_length"] = self.min_length
        if self.max_length is not None:
            data["max_length"] = self.max_length
        if self.choices:
            data["choices"] = [{"name": c.name, "value": c.value} for c in self.choices]
        if self.autocomplete:
            data["autocomplete"] = True
        return data


def subcommand(name: str, description: str, *options: Option) -> Option:
    return Option(name, description, OptionType.SUB_COMMAND, required=False, options=options)


def group(name: str, description: str, *subcommands: Option) -> Option:
    return Option(name, description, OptionType.SUB_COMMAND_GROUP, required=False, options=subcommands)


@dataclass(frozen=True)
class Command:
    """A slash command: its schema and its handler, defined side by side."""

    name: str
    description: str
    handler: Handler
    options: tuple[Option, ...] = ()
    default_member_permissions: Permission | None = None  # hides the command from members without these
    rate: str | None = None  # the rate-limit bucket (timmybot.ratelimit) it counts against, if any
    bound: BoundHandler = field(init=False, repr=False, compare=False)  # the handler with its ports, read once

    def __post_init__(self) -> None:
        object.__setattr__(self, "bound", bind(self.handler))

    def schema(self) -> CommandSchema:
        data: CommandSchema = {
            "type": ApplicationCommandType.CHAT_INPUT,
            "name": self.name,
            "description": self.description,
            "contexts": [InteractionContextType.GUILD],
            "integration_types": [IntegrationType.GUILD_INSTALL],
            "dm_permission": False,
        }
        if self.options:
            data["options"] = [option.schema() for option in self.options]
        if self.default_member_permissions is not None:
            data["default_member_permissions"] = str(int(self.default_member_permissions))
        return data
