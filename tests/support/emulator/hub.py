"""The emulator's core: Discord state, recordings and fault switches shared by REST, gateway and voice.

A ``Hub`` lives on the emulator's event-loop thread; only code running on that loop touches it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .dave import OPUS_SILENCE, DaveEvent, DaveMode, MediaSession, is_protocol_frame
from .listener import Listener
from .records import (
    GatewayEvent,
    IdentifyRecord,
    MessageRecord,
    RestRequest,
    RtpPacket,
    VoiceStateChange,
    VoiceWsEvent,
    WebhookRecord,
)
from .state import JSON, Application, ChannelType, Guild, User, VoiceState, shard_for, snowflake

if TYPE_CHECKING:
    from .gateway import GatewaySession
    from .voice import VoiceSession

_log = logging.getLogger(__name__)

GuildCreateHook = Callable[[JSON], JSON]


@dataclass
class RateLimitFault:
    method: str
    path: str
    times: int
    retry_after: float
    is_global: bool


@dataclass
class LatencyFault:
    seconds: float
    method: str | None
    path: str | None


@dataclass
class Faults:
    invalid_session_identifies: int = 0
    refused_voice_identifies: int = 0  # voice IDENTIFYs answered with a close 4006 (a voice server that fails)
    # Seconds between a new session's GUILD_CREATEs, as Discord streams a large shard's guilds in
    # after READY (0: all at once). The gateway goes on reading the bot's ops meanwhile.
    guild_create_gap_s: float = 0.0
    rate_limits: list[RateLimitFault] = field(default_factory=list)
    latencies: list[LatencyFault] = field(default_factory=list)

    def take_rate_limit(self, method: str, path: str) -> RateLimitFault | None:
        for fault in self.rate_limits:
            if fault.times > 0 and fault.method == method and fault.path == path:
                fault.times -= 1
                return fault
        return None

    def latency_for(self, method: str, path: str) -> float:
        return sum(
            f.seconds
            for f in self.latencies
            if (f.method is None or f.method == method) and (f.path is None or f.path == path)
        )


@dataclass
class SessionStartLimit:
    total: int = 1000
    remaining: int = 1000
    reset_after_ms: int = 14_400_000
    max_concurrency: int = 1

    def to_json(self) -> JSON:
        return {
            "total": self.total,
            "remaining": self.remaining,
            "reset_after": self.reset_after_ms,
            "max_concurrency": self.max_concurrency,
        }


@dataclass
class Recordings:
    rest: list[RestRequest] = field(default_factory=list)
    messages: list[MessageRecord] = field(default_factory=list)
    webhooks: list[WebhookRecord] = field(default_factory=list)
    identifies: list[IdentifyRecord] = field(default_factory=list)
    gateway_events: list[GatewayEvent] = field(default_factory=list)
    guild_creates: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time sent, guild id)
    bot_voice: dict[int, list[VoiceStateChange]] = field(default_factory=lambda: defaultdict(list))
    voice_ws: dict[int, list[VoiceWsEvent]] = field(default_factory=lambda: defaultdict(list))
    packets: dict[int, list[RtpPacket]] = field(default_factory=lambda: defaultdict(list))
    undecryptable_packets: int = 0
    # DAVE: what each listener decrypted, plain Opus frames sent while DAVE was in force (real clients
    # drop them), DAVE frames no listener could read, frames that are not Opus audio, the exchange.
    heard: dict[tuple[int, int], list[RtpPacket]] = field(default_factory=lambda: defaultdict(list))
    plaintext_frames: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    unread_dave_frames: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    not_audio_frames: dict[int, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    dave_events: dict[int, list[DaveEvent]] = field(default_factory=lambda: defaultdict(list))
    # Bodies refused as Discord would (400 / 50035), and message bodies that could ping.
    refused: list[tuple[str, Any]] = field(default_factory=list)
    pings: list[tuple[str, Any]] = field(default_factory=list)
    # Files uploaded with a message (multipart), by the attachment URL the message names them by.
    uploads: dict[str, bytes] = field(default_factory=dict)
    # The order the voice join events went out in, e.g. ("server:null", "server", "state").
    voice_dispatches: dict[int, list[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(list))


class Hub:
    """Shared state of one emulated Discord."""

    def __init__(self, *, bot_token: str, application_id: int, heartbeat_interval_ms: int,
                 voice_modes: list[str], dave_mode: DaveMode = DaveMode.REQUIRED, seed: int = 0) -> None:  # fmt: skip
        bot = User(application_id, "TimmyBot", bot=True)
        self.app = Application(id=application_id, bot=bot, token=bot_token)
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.voice_modes = voice_modes
        self.guilds: dict[int, Guild] = {}
        self.joined_at: dict[int, str] = {}
        self.records = Recordings()
        self.faults = Faults()
        self.session_start_limit = SessionStartLimit()
        self.recommended_shards = 1
        self.guild_create_hook: GuildCreateHook | None = None
        # Connections: main gateway sessions by connection id, voice sessions by guild.
        self.gateway_sessions: dict[int, GatewaySession] = {}
        self.known_session_ids: dict[str, tuple[int, int] | None] = {}
        self.voice_sessions: dict[int, VoiceSession] = {}
        self.voice_by_ssrc: dict[int, VoiceSession] = {}
        self.voice_tokens: dict[int, str] = {}
        # DAVE: the default mode and per-guild overrides, one media session per voice channel, the
        # listener of each human member in voice, and listeners who left (still fed, to prove they
        # can no longer decrypt).
        self.default_dave_mode = dave_mode
        self.dave_modes: dict[int, DaveMode] = {}
        self.media_sessions: dict[int, MediaSession] = {}
        self.listeners: dict[tuple[int, int], Listener] = {}
        self.departed: list[Listener] = []
        self.withheld_keys: set[tuple[int, int]] = set()
        self.seed = seed
        self.rng = random.Random(seed)
        self._tasks: set[asyncio.Task[Any]] = set()
        # Message storage for GET/PATCH.
        self.channel_messages: dict[int, dict[int, JSON]] = defaultdict(dict)
        self.webhook_messages: dict[str, dict[int | str, JSON]] = defaultdict(dict)
        self.commands: dict[int | None, list[JSON]] = {}
        # Filled in by the server once sockets are bound.
        self.gateway_url = ""
        self.voice_endpoint = ""
        self.udp_port = 0
        self._next_connection = 0
        self._next_ssrc = 1000

    # ids ---------------------------------------------------------------------------------------
    def next_connection_id(self) -> int:
        self._next_connection += 1
        return self._next_connection

    def next_ssrc(self) -> int:
        self._next_ssrc += 1
        return self._next_ssrc

    @property
    def bot_user(self) -> User:
        return self.app.bot

    def check_bot_auth(self, header: str | None) -> bool:
        return header == f"Bot {self.app.token}"

    # gateway fan-out ---------------------------------------------------------------------------
    def sessions_for_guild(self, guild_id: int) -> list[GatewaySession]:
        return [s for s in self.gateway_sessions.values() if s.identified and s.covers(guild_id)]

    def guilds_for_shard(self, shard: tuple[int, int] | None) -> list[Guild]:
        if shard is None:
            return list(self.guilds.values())
        shard_id, num_shards = shard
        return [g for g in self.guilds.values() if shard_for(g.id, num_shards) == shard_id]

    def guild_create_payload(self, guild: Guild) -> JSON:
        payload = guild.guild_create(joined_at=self.joined_at[guild.id])
        if self.guild_create_hook is not None:
            payload = self.guild_create_hook(payload)
        return payload

    async def dispatch_guild(self, guild_id: int, event: str, data: JSON) -> None:
        for session in self.sessions_for_guild(guild_id):
            await session.dispatch(event, data)

    # voice state -------------------------------------------------------------------------------
    async def set_voice_state(
        self,
        guild: Guild,
        user_id: int,
        channel_id: int | None,
        *,
        self_mute: bool = False,
        self_deaf: bool = False,
        session_id: str | None = None,
    ) -> VoiceState:
        """Move ``user_id`` to ``channel_id`` (None = disconnect) and tell connected bots."""
        current = guild.voice_states.get(user_id)
        if channel_id is None:
            state = current or VoiceState(guild.id, user_id, None)
            state.channel_id = None
            guild.voice_states.pop(user_id, None)
        else:
            if current is None:
                current = VoiceState(guild.id, user_id, channel_id)
                guild.voice_states[user_id] = current
            state = current
            state.channel_id = channel_id
            state.self_mute = self_mute
            state.self_deaf = self_deaf
        if session_id is not None:
            state.session_id = session_id
        if user_id == self.bot_user.id:
            self.records.bot_voice[guild.id].append(
                VoiceStateChange(time.monotonic(), guild.id, channel_id, self_mute, self_deaf)
            )
        member = guild.members.get(user_id)
        await self.dispatch_guild(guild.id, "VOICE_STATE_UPDATE", state.to_json(member))
        if user_id != self.bot_user.id and member is not None and not member.user.bot:
            await self._move_listener(guild, user_id, channel_id)
        return state

    def new_voice_token(self, guild_id: int) -> str:
        token = secrets.token_hex(8)
        self.voice_tokens[guild_id] = token
        return token

    # DAVE ------------------------------------------------------------------------------------------
    def dave_mode(self, guild_id: int) -> DaveMode:
        return self.dave_modes.get(guild_id, self.default_dave_mode)

    def dave_applies(self, guild: Guild, channel_id: int | None) -> bool:
        channel = guild.channels.get(channel_id) if channel_id else None
        return (channel is not None and channel.type == ChannelType.GUILD_VOICE
                and self.dave_mode(guild.id) is not DaveMode.OFF)  # fmt: skip

    def media_session(self, guild_id: int, channel_id: int) -> MediaSession:
        media = self.media_sessions.get(channel_id)
        if media is None:
            media = self.media_sessions[channel_id] = MediaSession(self, guild_id, channel_id)
        return media

    async def _move_listener(self, guild: Guild, user_id: int, channel_id: int | None) -> None:
        """A human's client joins the DAVE group of the channel it is in, and leaves the one it was in."""
        key = (guild.id, user_id)
        current = self.listeners.get(key)
        if current is not None and current.channel_id == channel_id:
            return
        if current is not None:
            del self.listeners[key]
            current.leave()
            self.departed.append(current)
            await self.media_session(guild.id, current.channel_id).disconnect(user_id)
        if channel_id is not None and self.dave_applies(guild, channel_id):
            media = self.media_session(guild.id, channel_id)
            listener = Listener(media, user_id, rng=self.rng)
            listener.withhold_key = key in self.withheld_keys
            self.listeners[key] = listener
            await media.connect(listener)

    def hear(self, session: Any, now: float, sequence: int, timestamp: int, payload: bytes) -> None:
        """One transport-decrypted frame from the bot's ``session`` (a ``VoiceSession``)."""
        guild_id = session.guild_id
        records = self.records
        packet = RtpPacket(now, guild_id, session.ssrc, sequence, timestamp, payload)
        if not session.dave_version or payload == OPUS_SILENCE:
            records.packets[guild_id].append(packet)
            self._check_audio(guild_id, payload)
            return
        if not is_protocol_frame(payload):
            records.plaintext_frames[guild_id].append(now)
            _log.debug("udp: plain Opus frame seq %d from a DAVE session in guild %s", sequence, guild_id)
            return
        # Credit only the listeners of the channel the bot is in now: a session left over from before
        # a move (its channel stale) is heard by no one there.
        guild = self.guilds.get(guild_id)
        state = guild.voice_states.get(self.bot_user.id) if guild is not None else None
        here = state.channel_id if state is not None and state.channel_id == session.channel_id else None
        heard = None
        for listener in [*self.listeners.values(), *self.departed]:
            if listener.media.guild_id != guild_id:
                continue
            opus = listener.decrypt(session.user_id, payload)
            if opus is None:
                continue
            records.heard[(guild_id, listener.user_id)].append(
                RtpPacket(now, guild_id, session.ssrc, sequence, timestamp, opus)
            )
            if listener.departed_at is None and here is not None and listener.channel_id == here:
                heard = opus
        if heard is None:
            records.unread_dave_frames[guild_id] += 1
            return
        records.packets[guild_id].append(RtpPacket(now, guild_id, session.ssrc, sequence, timestamp, heard))
        self._check_audio(guild_id, heard)

    def _check_audio(self, guild_id: int, opus: bytes) -> None:
        """Frames a Discord client would feed its Opus decoder that are not Opus audio."""
        if not opus or opus.startswith((b"OpusHead", b"OpusTags")):
            self.records.not_audio_frames[guild_id].append(opus[:16])

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # recording helpers -------------------------------------------------------------------------
    def record_voice(self, guild_id: int, connection: int, kind: str, data: Any) -> None:
        self.records.voice_ws[guild_id].append(VoiceWsEvent(time.monotonic(), guild_id, connection, kind, data))

    def new_message_id(self) -> int:
        return snowflake()


#: Where the aiohttp application keeps its Hub.
HUB_KEY = web.AppKey("hub", Hub)
