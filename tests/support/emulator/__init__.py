"""A loopback Discord emulator (REST subset, gateway v10, voice gateway v8 + UDP) for end-to-end tests."""

from .dave import DaveEvent, DaveMode
from .listener import PrivacyCode
from .records import (
    OPUS_SILENCE,
    GatewayEvent,
    IdentifyRecord,
    MessageRecord,
    RestRequest,
    RtpPacket,
    VoiceStateChange,
    VoiceWsEvent,
    WebhookRecord,
)
from .server import DiscordEmulator, GuildHandle
from .state import ChannelType, Overwrite, OverwriteType, Permission, shard_for, snowflake

__all__ = [
    "OPUS_SILENCE",
    "ChannelType",
    "DaveEvent",
    "DaveMode",
    "DiscordEmulator",
    "GatewayEvent",
    "GuildHandle",
    "IdentifyRecord",
    "MessageRecord",
    "Overwrite",
    "OverwriteType",
    "Permission",
    "PrivacyCode",
    "RestRequest",
    "RtpPacket",
    "VoiceStateChange",
    "VoiceWsEvent",
    "WebhookRecord",
    "shard_for",
    "snowflake",
]
