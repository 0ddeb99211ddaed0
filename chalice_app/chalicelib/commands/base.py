"""What every handler gets (``CommandContext``) and how commands describe themselves (``Command``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.replies import Reply
from timmybot.config import Settings
from timmybot.custom_ids import CustomId
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
from timmybot.store.base import Store

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


Handler = Callable[[CommandContext, Store], Reply]


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
