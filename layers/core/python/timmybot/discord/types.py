"""Discord's interaction vocabulary: named enums and TypedDicts for the raw payloads at the boundary.

Only what TimmyBot reads or writes is described; Discord sends more fields than these.
"""

from __future__ import annotations

import enum
from typing import Any, NotRequired, TypedDict


def no_mentions() -> dict[str, list[str]]:
    """``allowed_mentions`` that let nothing ping: ``<@id>`` still renders, nobody is notified, and a
    title such as ``@everyone`` stays text. Every message the bot writes carries it."""
    return {"parse": []}


def requester_ping(user_id: str) -> dict[str, list[str]]:
    """The one exception to ``no_mentions``: the "your track is playing" message of a member who
    asked for it (/preferences notify) may ping that member and nobody else. The REST client
    (``discord.rest.guarded_mentions``) lets only this shape through, on a message that mentions them."""
    return {"parse": [], "users": [str(user_id)]}


class InteractionType(enum.IntEnum):
    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    APPLICATION_COMMAND_AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class InteractionResponseType(enum.IntEnum):
    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
    MODAL = 9


class MessageFlags(enum.IntFlag):
    EPHEMERAL = 1 << 6


class ApplicationCommandType(enum.IntEnum):
    CHAT_INPUT = 1


class OptionType(enum.IntEnum):
    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


class InteractionContextType(enum.IntEnum):
    GUILD = 0
    BOT_DM = 1
    PRIVATE_CHANNEL = 2


class IntegrationType(enum.IntEnum):
    GUILD_INSTALL = 0
    USER_INSTALL = 1


class ComponentType(enum.IntEnum):
    ACTION_ROW = 1
    BUTTON = 2
    STRING_SELECT = 3
    TEXT_INPUT = 4


class ButtonStyle(enum.IntEnum):
    PRIMARY = 1
    SECONDARY = 2
    SUCCESS = 3
    DANGER = 4
    LINK = 5


class Permission(enum.IntFlag):
    """The permission bits TimmyBot checks (Discord's values): the one enum for the interaction's
    member permissions and for the channel permission calculator (``timmybot.discord.permissions``)."""

    ADMINISTRATOR = 1 << 3
    MANAGE_GUILD = 1 << 5
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    EMBED_LINKS = 1 << 14
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    SEND_MESSAGES_IN_THREADS = 1 << 38


# ---------------------------------------------------------------------- outbound payloads
class EmbedFieldPayload(TypedDict):
    name: str
    value: str
    inline: NotRequired[bool]


class EmbedPayload(TypedDict, total=False):
    title: str
    description: str
    url: str
    color: int
    fields: list[EmbedFieldPayload]
    thumbnail: dict[str, str]
    footer: dict[str, str]


class ComponentPayload(TypedDict, total=False):
    type: int
    style: int
    label: str
    emoji: dict[str, str]
    custom_id: str
    url: str
    disabled: bool
    components: list[ComponentPayload]
    # string select menus
    placeholder: str
    options: list[dict[str, str]]
    min_values: int
    max_values: int


class ResponsePayload(TypedDict):
    type: int
    data: NotRequired[dict[str, Any]]


class OptionSchema(TypedDict, total=False):
    type: int
    name: str
    description: str
    required: bool
    choices: list[dict[str, str | int]]
    min_value: int | float
    max_value: int | float
    min_length: int
    max_length: int
    autocomplete: bool
    options: list[OptionSchema]  # a subcommand's options, or a group's subcommands


class CommandSchema(TypedDict, total=False):
    type: int
    name: str
    description: str
    options: list[OptionSchema]
    contexts: list[int]
    integration_types: list[int]
    dm_permission: bool
    default_member_permissions: str
