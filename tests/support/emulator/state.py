"""In-memory Discord state held by the emulator, and the JSON payloads built from it.

Everything here is touched only on the emulator's event-loop thread (see ``server.DiscordEmulator``),
so there are no locks. Payload builders produce the shapes Discord's API v10 sends, complete enough
for discord.py 2.7.1 to parse.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000

JSON = dict[str, Any]


class ChannelType(enum.IntEnum):
    GUILD_TEXT = 0
    GUILD_VOICE = 2
    GUILD_CATEGORY = 4
    GUILD_STAGE_VOICE = 13


class OverwriteType(enum.IntEnum):
    ROLE = 0
    MEMBER = 1


class Permission(enum.IntFlag):
    """The permission bits the bot cares about (Discord's values)."""

    CREATE_INSTANT_INVITE = 1 << 0
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    PRIORITY_SPEAKER = 1 << 8
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    EMBED_LINKS = 1 << 14
    READ_MESSAGE_HISTORY = 1 << 16
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MUTE_MEMBERS = 1 << 22
    MOVE_MEMBERS = 1 << 24
    USE_VAD = 1 << 25
    USE_APPLICATION_COMMANDS = 1 << 31
    REQUEST_TO_SPEAK = 1 << 32


#: What @everyone gets in a freshly created server (close enough to Discord's default).
DEFAULT_EVERYONE_PERMISSIONS = (
    Permission.CREATE_INSTANT_INVITE
    | Permission.ADD_REACTIONS
    | Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.READ_MESSAGE_HISTORY
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.CONNECT
    | Permission.SPEAK
    | Permission.USE_VAD
    | Permission.USE_APPLICATION_COMMANDS
    | Permission.REQUEST_TO_SPEAK
)

_counter = itertools.count(1)


def snowflake(at_ms: int | None = None) -> int:
    """A new, unique snowflake for the current time (or ``at_ms``, Unix milliseconds)."""
    ms = int(time.time() * 1000) if at_ms is None else at_ms
    return ((ms - DISCORD_EPOCH_MS) << 22) | (next(_counter) & 0x3FFFFF)


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def shard_for(guild_id: int, num_shards: int) -> int:
    """Discord's sharding formula."""
    return (guild_id >> 22) % num_shards


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    def to_json(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0

    def to_json(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(int(self.permissions)),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class Overwrite:
    id: int
    type: OverwriteType
    allow: int = 0
    deny: int = 0

    def to_json(self) -> JSON:
        return {"id": str(self.id), "type": int(self.type), "allow": str(int(self.allow)), "deny": str(int(self.deny))}


@dataclass
class Channel:
    id: int
    guild_id: int
    name: str
    type: ChannelType
    position: int = 0
    user_limit: int = 0
    bitrate: int = 64000
    parent_id: int | None = None
    permission_overwrites: list[Overwrite] = field(default_factory=list)

    @property
    def is_voice(self) -> bool:
        return self.type in (ChannelType.GUILD_VOICE, ChannelType.GUILD_STAGE_VOICE)

    def to_json(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "type": int(self.type),
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": [o.to_json() for o in self.permission_overwrites],
            "nsfw": False,
            "flags": 0,
        }
        if self.type == ChannelType.GUILD_TEXT:
            data.update(topic=None, last_message_id=None, rate_limit_per_user=0, default_thread_rate_limit_per_user=0)
        elif self.is_voice:
            data.update(
                bitrate=self.bitrate,
                user_limit=self.user_limit,
                rtc_region=None,
                video_quality_mode=1,
                last_message_id=None,
                rate_limit_per_user=0,
            )
        return data


@dataclass
class Member:
    user: User
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)

    def to_json(self) -> JSON:
        return {
            "user": self.user.to_json(),
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in self.roles],
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }


@dataclass
class VoiceState:
    guild_id: int
    user_id: int
    channel_id: int | None
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    self_mute: bool = False
    self_deaf: bool = False
    mute: bool = False
    deaf: bool = False
    suppress: bool = False

    def to_json(self, member: Member | None = None, *, with_guild: bool = True) -> JSON:
        data: JSON = {
            "channel_id": str(self.channel_id) if self.channel_id else None,
            "user_id": str(self.user_id),
            "session_id": self.session_id,
            "deaf": self.deaf,
            "mute": self.mute,
            "self_deaf": self.self_deaf,
            "self_mute": self.self_mute,
            "self_video": False,
            "self_stream": False,
            "suppress": self.suppress,
            "request_to_speak_timestamp": None,
        }
        if with_guild:
            data["guild_id"] = str(self.guild_id)
        if member is not None:
            data["member"] = member.to_json()
        return data


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    voice_states: dict[int, VoiceState] = field(default_factory=dict)
    preferred_locale: str = "en-US"

    @property
    def everyone_role(self) -> Role:
        return self.roles[self.id]

    def text_channels(self) -> list[Channel]:
        return [c for c in self.channels.values() if c.type == ChannelType.GUILD_TEXT]

    def voice_channels(self) -> list[Channel]:
        return [c for c in self.channels.values() if c.is_voice]

    def to_json(self, *, with_counts: bool = False) -> JSON:
        """The guild object as ``GET /guilds/{id}`` returns it."""
        data: JSON = {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.to_json() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.preferred_locale,
            "public_updates_channel_id": None,
            "max_video_channel_users": 25,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None,
        }
        if with_counts:
            data["approximate_member_count"] = len(self.members)
            data["approximate_presence_count"] = 0
        return data

    def guild_create(self, *, joined_at: str) -> JSON:
        """The GUILD_CREATE dispatch payload."""
        data = self.to_json()
        data.update(
            joined_at=joined_at,
            large=False,
            unavailable=False,
            member_count=len(self.members),
            voice_states=[vs.to_json(with_guild=False) for vs in self.voice_states.values() if vs.channel_id],
            members=[m.to_json() for m in self.members.values()],
            channels=[c.to_json() for c in self.channels.values()],
            threads=[],
            presences=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return data


@dataclass
class Application:
    id: int
    bot: User
    token: str
    name: str = "TimmyBot (emulated)"
    verify_key: str = field(default_factory=lambda: secrets.token_hex(32))

    def to_json(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": self.verify_key,
            "flags": 0,
            "owner": User(self.id + 1, "owner").to_json(),
            "team": None,
            "bot": self.bot.to_json(),
            "approximate_guild_count": 0,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "tags": [],
        }


def message_json(
    *,
    message_id: int,
    channel_id: int,
    author: User,
    body: JSON,
    guild_id: int | None = None,
    webhook_id: int | None = None,
    edited: bool = False,
) -> JSON:
    """A message object built from a create/edit body."""
    data: JSON = {
        "id": str(message_id),
        "channel_id": str(channel_id),
        "author": author.to_json(),
        "content": body.get("content") or "",
        "timestamp": iso_now(),
        "edited_timestamp": iso_now() if edited else None,
        "tts": bool(body.get("tts", False)),
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "mention_channels": [],
        "attachments": [],
        "embeds": list(body.get("embeds") or []),
        "components": list(body.get("components") or []),
        "reactions": [],
        "pinned": False,
        "type": 0,
        "flags": int(body.get("flags") or 0),
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    if webhook_id is not None:
        data["webhook_id"] = str(webhook_id)
    return data
