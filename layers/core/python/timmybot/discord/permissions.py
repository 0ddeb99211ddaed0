"""A pure calculator of a member's permissions in a guild channel, in Discord's order.

1. Base: the @everyone role's permissions OR every role the member has. The guild owner and
   anyone with Administrator have everything.
2. Channel overwrites, in this order: the @everyone overwrite (deny, then allow); the member's
   role overwrites aggregated (all denies, then all allows); the member's own overwrite (deny,
   then allow). Administrator ignores overwrites.

Inputs are the raw REST payloads (``GET /guilds/{g}`` roles, ``GET /guilds/{g}/members/{u}``,
``GET /channels/{c}``) reduced to plain values, so this module does no I/O and is trivially testable.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from timmybot.discord.types import Permission

ALL_PERMISSIONS = (1 << 64) - 1


class ChannelType(enum.IntEnum):
    GUILD_TEXT = 0
    GUILD_VOICE = 2
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    GUILD_STAGE_VOICE = 13


THREAD_TYPES = frozenset({ChannelType.ANNOUNCEMENT_THREAD, ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD})


class OverwriteType(enum.IntEnum):
    ROLE = 0
    MEMBER = 1


#: What the bot needs in a voice channel before joining, with the name Discord's UI shows.
VOICE_REQUIREMENTS: tuple[tuple[Permission, str], ...] = (
    (Permission.VIEW_CHANNEL, "View Channel"),
    (Permission.CONNECT, "Connect"),
    (Permission.SPEAK, "Speak"),
)
#: What the now-playing post needs in the text channel.
POST_REQUIREMENTS: tuple[tuple[Permission, str], ...] = (
    (Permission.VIEW_CHANNEL, "View Channel"),
    (Permission.SEND_MESSAGES, "Send Messages"),
    (Permission.EMBED_LINKS, "Embed Links"),
)
#: In a thread, Send Messages in Threads stands in for Send Messages.
THREAD_POST_REQUIREMENTS: tuple[tuple[Permission, str], ...] = (
    (Permission.VIEW_CHANNEL, "View Channel"),
    (Permission.SEND_MESSAGES_IN_THREADS, "Send Messages in Threads"),
    (Permission.EMBED_LINKS, "Embed Links"),
)


@dataclass(frozen=True)
class Overwrite:
    id: str
    type: OverwriteType
    allow: int = 0
    deny: int = 0

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Overwrite:
        return cls(
            id=str(data["id"]),
            type=OverwriteType(int(data.get("type", OverwriteType.ROLE))),
            allow=_bits(data.get("allow")),
            deny=_bits(data.get("deny")),
        )


@dataclass(frozen=True)
class ChannelInfo:
    """What the calculator needs from ``GET /channels/{id}``."""

    id: str
    type: int
    overwrites: tuple[Overwrite, ...] = ()
    name: str = ""
    parent_id: str | None = None
    user_limit: int = 0

    @property
    def is_stage(self) -> bool:
        return self.type == ChannelType.GUILD_STAGE_VOICE

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> ChannelInfo:
        raw = data.get("permission_overwrites") or []
        parent = data.get("parent_id")
        return cls(
            id=str(data["id"]),
            type=int(data.get("type", ChannelType.GUILD_TEXT)),
            overwrites=tuple(Overwrite.from_payload(o) for o in raw if isinstance(o, Mapping)),
            name=str(data.get("name") or ""),
            parent_id=str(parent) if parent else None,
            user_limit=int(data.get("user_limit") or 0),
        )


@dataclass(frozen=True)
class GuildRoles:
    """The guild's id, owner and role permissions (``GET /guilds/{g}``), by role id."""

    guild_id: str
    owner_id: str | None
    role_permissions: Mapping[str, int]

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> GuildRoles:
        roles = data.get("roles") or []
        owner = data.get("owner_id")
        return cls(
            guild_id=str(data["id"]),
            owner_id=str(owner) if owner else None,
            role_permissions={str(r["id"]): _bits(r.get("permissions")) for r in roles if isinstance(r, Mapping)},
        )


def base_permissions(guild: GuildRoles, member_id: str, member_roles: Iterable[str]) -> int:
    """Guild-wide permissions: @everyone OR the member's roles; owner and Administrator get all."""
    if guild.owner_id is not None and member_id == guild.owner_id:
        return ALL_PERMISSIONS
    permissions = guild.role_permissions.get(guild.guild_id, 0)
    for role_id in member_roles:
        permissions |= guild.role_permissions.get(str(role_id), 0)
    if permissions & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    return permissions


def apply_overwrites(
    base: int, *, guild_id: str, member_id: str, member_roles: Iterable[str], overwrites: Sequence[Overwrite]
) -> int:
    """Channel permissions from ``base`` and the channel's overwrites, in Discord's order."""
    if base & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    permissions = base
    roles = {str(r) for r in member_roles}
    everyone = next((o for o in overwrites if o.type is OverwriteType.ROLE and o.id == guild_id), None)
    if everyone is not None:
        permissions = (permissions & ~everyone.deny) | everyone.allow
    role_deny = role_allow = 0
    for overwrite in overwrites:
        if overwrite.type is OverwriteType.ROLE and overwrite.id in roles and overwrite.id != guild_id:
            role_deny |= overwrite.deny
            role_allow |= overwrite.allow
    permissions = (permissions & ~role_deny) | role_allow
    member = next((o for o in overwrites if o.type is OverwriteType.MEMBER and o.id == member_id), None)
    if member is not None:
        permissions = (permissions & ~member.deny) | member.allow
    return permissions


def channel_permissions(
    guild: GuildRoles, member_id: str, member_roles: Iterable[str], overwrites: Sequence[Overwrite]
) -> int:
    """The member's effective permissions in a channel with ``overwrites``."""
    roles = tuple(member_roles)
    base = base_permissions(guild, member_id, roles)
    return apply_overwrites(
        base, guild_id=guild.guild_id, member_id=member_id, member_roles=roles, overwrites=overwrites
    )


def missing(permissions: int, required: Iterable[tuple[Permission, str]]) -> list[str]:
    """The names of the required permissions not in ``permissions``, in the order given."""
    return [name for bit, name in required if not permissions & bit]


def _bits(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0
