"""Voice gateway (v8, over wss) and the voice UDP server of the emulator.

Handshake: client IDENTIFY (op 0) → HELLO (op 8) + READY (op 2: ssrc, 127.0.0.1, UDP port, modes)
→ IP discovery on UDP → SELECT_PROTOCOL (op 1) → SESSION_DESCRIPTION (op 4) with the DAVE version
the guild's mode gives: 1 (DAVE) on a voice channel unless the mode is ``off``, 0 on stage channels.
With DAVE the server then plays the call's MLS external sender (``dave.MediaSession``): op 25 right
after op 4, and the rest of the exchange as members join and leave. In ``required`` mode a client
that does not offer DAVE is closed with 4017, as Discord does.

Heartbeats (op 3) get ACK (op 6). RTP packets are transport-decrypted, then, under DAVE, decrypted
again by each listener in the channel; what the listeners hear is what tests analyse.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import secrets
import struct
import time
from typing import Any, cast

import nacl.bindings
import nacl.exceptions
from aiohttp import WSCloseCode, WSMsgType, web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .dave import BINARY_OPS, DAVE_PROTOCOL_VERSION, DaveMode, DaveOp, MediaSession
from .hub import HUB_KEY, Hub
from .state import JSON, ChannelType

_log = logging.getLogger(__name__)

MODE_XCHACHA = "aead_xchacha20_poly1305_rtpsize"
MODE_AES_GCM = "aead_aes256_gcm_rtpsize"

_DISCOVERY_REQUEST = 0x1
_DISCOVERY_RESPONSE = 0x2
_DISCOVERY_LENGTH = 74
_RTP_HEADER = 12
_RTP_VERSION_2 = 0x80
_RTP_PAYLOAD_OPUS = 0x78
#: How long a member whose voice server "crashed" (4015) stays in its DAVE group awaiting a RESUME.
RESUME_GRACE_S = 10.0


class VoiceOp(enum.IntEnum):
    IDENTIFY = 0
    SELECT_PROTOCOL = 1
    READY = 2
    HEARTBEAT = 3
    SESSION_DESCRIPTION = 4
    SPEAKING = 5
    HEARTBEAT_ACK = 6
    RESUME = 7
    HELLO = 8
    RESUMED = 9
    CLIENT_CONNECT = 11
    CLIENT_DISCONNECT = 13
    DAVE_TRANSITION_READY = 23
    DAVE_MLS_INVALID_COMMIT_WELCOME = 31


class VoiceCloseCode(enum.IntEnum):
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    SESSION_NO_LONGER_VALID = 4006
    DISCONNECTED = 4014
    VOICE_SERVER_CRASHED = 4015
    UNKNOWN_ENCRYPTION_MODE = 4016
    E2EE_REQUIRED = 4017


class VoiceSession:
    """One voice websocket connection (one guild) of the bot."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse) -> None:
        self.hub = hub
        self.ws = ws
        self.connection = hub.next_connection_id()
        self.guild_id = 0
        self.user_id = 0
        self.channel_id: int | None = None
        self.ssrc = 0
        self.mode: str | None = None
        self.secret_key: bytes | None = None
        self.seq = 0
        self.max_dave_version = 0
        self.dave_version = 0
        self.media: MediaSession | None = None
        self.invalidated = False  # closed with 4006: Discord refuses to RESUME it
        # The code the server closed it with (``ws.close_code`` ends up as the client's reply, 1000).
        self.server_close_code: int | None = None

    async def send(self, op: VoiceOp | DaveOp, data: Any) -> None:
        if self.ws.closed:
            return
        self.seq += 1
        await self.ws.send_str(json.dumps({"op": int(op), "d": data, "seq": self.seq}))

    async def send_dave(self, op: DaveOp, payload: bytes | dict[str, Any]) -> None:
        """A DAVE opcode: binary ``seq | op | body`` for ops 25–30, JSON for the rest."""
        self.record(f"sent_{op.name.lower()}", None)
        if isinstance(payload, dict):
            await self.send(op, payload)
            return
        if self.ws.closed:
            return
        self.seq += 1
        await self.ws.send_bytes(struct.pack(">HB", self.seq & 0xFFFF, int(op)) + payload)

    def record(self, kind: str, data: Any) -> None:
        if self.guild_id:
            self.hub.record_voice(self.guild_id, self.connection, kind, data)

    async def run(self) -> None:
        async for msg in self.ws:
            if msg.type is WSMsgType.BINARY:
                await self.handle_binary(bytes(msg.data))
                continue
            if msg.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            try:
                op = VoiceOp(payload["op"])
            except ValueError:
                _log.debug("voice %d: unknown op %s", self.connection, payload.get("op"))
                continue
            await self.handle(op, payload.get("d") or {})

    async def handle_binary(self, frame: bytes) -> None:
        """Client → server binary frames carry ``op | body`` (no sequence number)."""
        if not frame or self.media is None:
            _log.debug("voice %d: binary frame without a DAVE session ignored", self.connection)
            return
        try:
            op = DaveOp(frame[0])
        except ValueError:
            op = None
        if op not in BINARY_OPS:
            await self.ws.close(code=VoiceCloseCode.UNKNOWN_OPCODE, message=b"Unknown opcode")
            return
        self.record(f"dave_{op.name.lower()}", len(frame) - 1)
        if op is DaveOp.MLS_KEY_PACKAGE:
            await self.media.on_key_package(self, frame[1:])
        elif op is DaveOp.MLS_COMMIT_WELCOME:
            await self.media.on_commit_welcome(self, frame[1:])
        else:
            await self.ws.close(code=VoiceCloseCode.UNKNOWN_OPCODE, message=b"Server-only opcode")

    async def handle(self, op: VoiceOp, data: JSON) -> None:
        if op is VoiceOp.HEARTBEAT:
            await self.send(VoiceOp.HEARTBEAT_ACK, {"t": data.get("t") if isinstance(data, dict) else data})
        elif op is VoiceOp.IDENTIFY:
            await self.identify(data)
        elif op is VoiceOp.RESUME:
            await self.resume(data)
        elif op is VoiceOp.SELECT_PROTOCOL:
            await self.select_protocol(data)
        elif op is VoiceOp.SPEAKING:
            self.record("speaking", data)
        elif op is VoiceOp.DAVE_TRANSITION_READY:
            self.record("dave_transition_ready", data)
            if self.media is not None:
                await self.media.on_transition_ready(self, int(data.get("transition_id", 0)))
        elif op is VoiceOp.DAVE_MLS_INVALID_COMMIT_WELCOME:
            self.record("dave_mls_invalid_commit_welcome", data)
            if self.media is not None:
                await self.media.on_invalid_commit_welcome(self, int(data.get("transition_id", 0)))
        else:
            self.record(op.name.lower(), data)

    def _authenticate(self, data: JSON) -> bool:
        guild_id = int(data.get("server_id") or 0)
        expected = self.hub.voice_tokens.get(guild_id)
        self.guild_id = guild_id if guild_id in self.hub.guilds else 0
        self.user_id = int(data.get("user_id") or self.hub.bot_user.id)
        if self.guild_id:
            state = self.hub.guilds[guild_id].voice_states.get(self.hub.bot_user.id)
            self.channel_id = state.channel_id if state else None
        return expected is not None and data.get("token") == expected

    def _channel_type(self) -> ChannelType | None:
        guild = self.hub.guilds.get(self.guild_id)
        channel = guild.channels.get(self.channel_id) if guild and self.channel_id else None
        return channel.type if channel else None

    def _dave_offered(self) -> bool:
        return self.hub.dave_mode(self.guild_id) is not DaveMode.OFF and self._channel_type() is not (
            ChannelType.GUILD_STAGE_VOICE
        )

    async def identify(self, data: JSON) -> None:
        ok = self._authenticate(data)
        self.max_dave_version = int(data.get("max_dave_protocol_version") or 0)
        self.record("identify", data)
        if not ok:
            await self.ws.close(code=VoiceCloseCode.AUTHENTICATION_FAILED, message=b"Authentication failed")
            return
        if self.hub.faults.refused_voice_identifies > 0:
            self.hub.faults.refused_voice_identifies -= 1
            self.record("closed_by_server", int(VoiceCloseCode.SESSION_NO_LONGER_VALID))
            await self.ws.close(code=VoiceCloseCode.SESSION_NO_LONGER_VALID, message=b"voice server failed (fault)")
            return
        if (self.hub.dave_mode(self.guild_id) is DaveMode.REQUIRED and self._dave_offered()
                and self.max_dave_version < DAVE_PROTOCOL_VERSION):  # fmt: skip
            self.record("closed_by_server", int(VoiceCloseCode.E2EE_REQUIRED))
            await self.ws.close(code=VoiceCloseCode.E2EE_REQUIRED, message=b"E2EE/DAVE protocol required")
            return
        self.ssrc = self.hub.next_ssrc()
        self._register()
        await self.send(VoiceOp.HELLO, {"heartbeat_interval": 13750.0, "v": 8})
        await self.send(
            VoiceOp.READY,
            {
                "ssrc": self.ssrc,
                "ip": "127.0.0.1",
                "port": self.hub.udp_port,
                "modes": list(self.hub.voice_modes),
                "heartbeat_interval": 1,
            },
        )

    async def resume(self, data: JSON) -> None:
        ok = self._authenticate(data)
        self.record("resume", data)
        previous = self.hub.voice_sessions.get(self.guild_id)
        if (not ok or previous is None or previous.secret_key is None or previous.invalidated
                or previous.channel_id != self.channel_id):  # fmt: skip
            self.invalidated = True
            await self.ws.close(code=VoiceCloseCode.SESSION_NO_LONGER_VALID, message=b"Session no longer valid")
            return
        self.ssrc, self.mode, self.secret_key = previous.ssrc, previous.mode, previous.secret_key
        self.max_dave_version, self.dave_version = previous.max_dave_version, previous.dave_version
        self.seq = previous.seq
        self._register()
        if previous.media is not None and previous.media.reattach(self):
            self.media = previous.media  # the DAVE group survives a RESUME
        await self.send(VoiceOp.HELLO, {"heartbeat_interval": 13750.0, "v": 8})
        await self.send(VoiceOp.RESUMED, None)

    def _register(self) -> None:
        self.hub.voice_sessions[self.guild_id] = self
        self.hub.voice_by_ssrc[self.ssrc] = self

    async def select_protocol(self, data: JSON) -> None:
        mode = (data.get("data") or {}).get("mode")
        self.record("select_protocol", data)
        if mode not in self.hub.voice_modes:
            await self.ws.close(code=VoiceCloseCode.UNKNOWN_ENCRYPTION_MODE, message=b"Unknown encryption mode")
            return
        self.mode = mode
        self.secret_key = secrets.token_bytes(32)
        offered = self._dave_offered() and self.max_dave_version >= DAVE_PROTOCOL_VERSION
        self.dave_version = DAVE_PROTOCOL_VERSION if offered else 0
        await self.send(
            VoiceOp.SESSION_DESCRIPTION,
            {
                "mode": mode,
                "secret_key": list(self.secret_key),
                "dave_protocol_version": self.dave_version,
                "audio_codec": "opus",
                "video_codec": None,
                "media_session_id": secrets.token_hex(16),
            },
        )
        if self.dave_version and self.channel_id is not None:
            self.media = self.hub.media_session(self.guild_id, self.channel_id)
            await self.media.connect(self)  # op 25 after op 4: discord.py drops binary frames before it

    async def closed(self) -> None:
        """The websocket is gone: a member who can't resume leaves its DAVE group now."""
        media = self.media
        if media is None or media.members.get(self.user_id) is None:
            return
        if media.members[self.user_id].endpoint is not self:
            return  # a newer connection of the bot took over
        code = self.server_close_code if self.server_close_code is not None else self.ws.close_code
        if code == VoiceCloseCode.VOICE_SERVER_CRASHED and not self.invalidated:
            await asyncio.sleep(RESUME_GRACE_S)
            member = media.members.get(self.user_id)
            if member is None or member.endpoint is not self:
                return
        await media.disconnect(self.user_id)

    def decrypt(self, packet: bytes, header_len: int) -> bytes | None:
        """Decrypt one RTP packet of an ``*_rtpsize`` mode; None when it does not authenticate."""
        if self.secret_key is None or len(packet) < header_len + 4:
            return None
        aad, body, counter = packet[:header_len], packet[header_len:-4], packet[-4:]
        try:
            if self.mode == MODE_AES_GCM:
                return AESGCM(self.secret_key).decrypt(counter + bytes(8), body, aad)
            return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                body, aad, counter + bytes(20), self.secret_key
            )
        except (nacl.exceptions.CryptoError, InvalidTag):
            return None


class VoiceUdpServer(asyncio.DatagramProtocol):
    """Answers IP discovery; hands each transport-decrypted RTP payload to the hub's listeners."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        now = time.monotonic()
        if len(data) == _DISCOVERY_LENGTH and struct.unpack_from(">H", data, 0)[0] == _DISCOVERY_REQUEST:
            self._discovery(data, addr)
            return
        if len(data) < _RTP_HEADER + 4 or data[0] & 0xC0 != _RTP_VERSION_2 or data[1] & 0x7F != _RTP_PAYLOAD_OPUS:
            _log.debug("udp: ignoring %d-byte datagram from %s", len(data), addr)
            return
        sequence, timestamp, ssrc = struct.unpack_from(">HII", data, 2)
        session = self.hub.voice_by_ssrc.get(ssrc)
        header_len = _RTP_HEADER + 4 * (data[0] & 0x0F)
        payload = None
        if session is not None and not data[0] & 0x10:
            payload = session.decrypt(data, header_len)
        if session is None or payload is None:
            self.hub.records.undecryptable_packets += 1
            _log.debug("udp: could not decrypt packet seq %d ssrc %d", sequence, ssrc)
            return
        self.hub.hear(session, now, sequence, timestamp, payload)

    def _discovery(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        ssrc = struct.unpack_from(">I", data, 4)[0]
        _log.debug("udp: IP discovery from %s for ssrc %s", addr, ssrc)
        reply = bytearray(_DISCOVERY_LENGTH)
        struct.pack_into(">HHI", reply, 0, _DISCOVERY_RESPONSE, 70, ssrc)
        ip = str(addr[0]).encode("ascii")
        reply[8 : 8 + len(ip)] = ip
        struct.pack_into(">H", reply, _DISCOVERY_LENGTH - 2, int(addr[1]))
        if self.transport is not None:
            self.transport.sendto(bytes(reply), addr)


async def voice_handler(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    session = VoiceSession(hub, ws)
    _log.debug("voice %d: connected", session.connection)
    try:
        await session.run()
    finally:
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY)
        # The session stays in hub.voice_sessions so that a RESUME can reuse its ssrc and key.
        session.record("closed", ws.close_code)
        _log.debug("voice %d: closed with %s", session.connection, ws.close_code)
        hub.spawn(session.closed())
    return ws


async def close_voice(hub: Hub, guild_id: int, code: int) -> bool:
    """Close the guild's voice websocket with ``code`` (a fault); False if there is none."""
    session = hub.voice_sessions.get(guild_id)
    if session is None or session.ws.closed:
        return False
    session.record("closed_by_server", code)
    session.server_close_code = code
    if code == VoiceCloseCode.SESSION_NO_LONGER_VALID:
        session.invalidated = True
    await session.ws.close(code=code, message=b"closed by emulator fault")
    return True


async def move_bot(hub: Hub, guild_id: int, channel_id: int) -> bool:
    """An admin drags the bot to ``channel_id``, as Discord does it: the bot's VOICE_STATE_UPDATE
    (the new channel), a VOICE_SERVER_UPDATE with a new token, then the old voice websocket closed
    with 4014. False if the bot is not in voice."""
    guild = hub.guilds[guild_id]
    session = hub.voice_sessions.get(guild_id)
    if session is None or session.ws.closed or hub.bot_user.id not in guild.voice_states:
        return False
    await hub.set_voice_state(guild, hub.bot_user.id, channel_id)
    await asyncio.sleep(hub.rng.uniform(0.002, 0.02))
    await hub.dispatch_guild(guild_id, "VOICE_SERVER_UPDATE", {
        "token": hub.new_voice_token(guild_id), "guild_id": str(guild_id), "endpoint": hub.voice_endpoint,
    })  # fmt: skip
    await asyncio.sleep(hub.rng.uniform(0.002, 0.02))
    if not session.ws.closed:
        session.record("closed_by_server", VoiceCloseCode.DISCONNECTED)
        await session.ws.close(code=VoiceCloseCode.DISCONNECTED, message=b"moved")
    return True


async def change_voice_server(hub: Hub, guild_id: int) -> bool:
    """Discord moves the call to another voice server: a VOICE_SERVER_UPDATE with a new token (the
    same loopback endpoint stands for the new server), then the old server drops its websocket with
    4014 if the client has not left it by then. False if the bot is not in voice."""
    session = hub.voice_sessions.get(guild_id)
    if session is None or session.ws.closed:
        return False
    session.record("voice_server_changed", None)
    await hub.dispatch_guild(guild_id, "VOICE_SERVER_UPDATE", {
        "token": hub.new_voice_token(guild_id), "guild_id": str(guild_id), "endpoint": hub.voice_endpoint,
    })  # fmt: skip
    await asyncio.sleep(0.5)
    if not session.ws.closed:
        session.record("closed_by_server", VoiceCloseCode.DISCONNECTED)
        await session.ws.close(code=VoiceCloseCode.DISCONNECTED, message=b"voice server changed")
    return True
