"""What the emulator records, as immutable values handed to tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The three-byte Opus frame discord.py sends five of when a source ends.
OPUS_SILENCE = b"\xf8\xff\xfe"


@dataclass(frozen=True)
class RestRequest:
    """One REST request the bot made (path relative to the API base, e.g. ``/users/@me``)."""

    time: float
    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int
    authorized: bool
    matched: bool


@dataclass(frozen=True)
class MessageRecord:
    """A message created or edited through ``/channels/{c}/messages``."""

    time: float
    action: str  # "create" | "edit" | "delete"
    channel_id: int
    message_id: int
    content: str | None
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    body: dict[str, Any]


@dataclass(frozen=True)
class WebhookRecord:
    """A call on an interaction's webhook (``@original`` edit/get, follow-up, or callback)."""

    time: float
    token: str
    action: str  # "edit_original" | "get_original" | "delete_original" | "followup" | "edit_followup" | "callback"
    message_id: int | None
    body: dict[str, Any]

    @property
    def content(self) -> str | None:
        value = self.body.get("content")
        return value if isinstance(value, str) else None

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.body.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        return list(self.body.get("components") or [])


@dataclass(frozen=True)
class IdentifyRecord:
    """One IDENTIFY (op 2) received on the main gateway."""

    time: float
    shard: tuple[int, int] | None
    intents: int | None
    token_ok: bool
    answered_with_invalid_session: bool


@dataclass(frozen=True)
class GatewayEvent:
    """A payload the bot sent on the main gateway (anything but heartbeats)."""

    time: float
    connection: int
    op: int
    data: Any


@dataclass(frozen=True)
class VoiceStateChange:
    """The bot's voice state changed in a guild (``channel_id`` None = left)."""

    time: float
    guild_id: int
    channel_id: int | None
    self_mute: bool
    self_deaf: bool


@dataclass(frozen=True)
class VoiceWsEvent:
    """Something on a guild's voice websocket.

    ``kind``: "connect", "identify", "resume", "select_protocol", "speaking", "client_disconnect",
    "closed_by_server" (a fault; ``data`` = close code) or "closed" (``data`` = close code seen).
    """

    time: float
    guild_id: int
    connection: int
    kind: str
    data: Any


@dataclass(frozen=True)
class RtpPacket:
    """One decrypted RTP packet received on the voice UDP socket."""

    time: float
    guild_id: int
    ssrc: int
    sequence: int
    timestamp: int
    opus: bytes

    @property
    def is_silence(self) -> bool:
        return self.opus == OPUS_SILENCE
