"""Main gateway (v10, JSON text frames) of the emulator.

Sequence: HELLO → heartbeats/ACKs → IDENTIFY → READY (guilds unavailable, ``resume_gateway_url`` =
this gateway) → one GUILD_CREATE per guild of the identifying shard. Op 4 voice state updates are
answered with VOICE_STATE_UPDATE (+ VOICE_SERVER_UPDATE on joins).

RESUME (op 6) is supported minimally: a known session id gets a RESUMED dispatch (no replay of
missed events); an unknown one gets op 9 ``false``. Zlib compression is never used (discord.py
only inflates binary frames, and the emulator sends text frames).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import secrets
import time
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from .hub import HUB_KEY, Hub
from .records import GatewayEvent, IdentifyRecord
from .state import JSON, Guild, shard_for

_log = logging.getLogger(__name__)


#: How long after a voice state update (op 4) the gateway answers with the voice events.
VOICE_ANSWER_LATENCY_S = (0.002, 0.02)
#: ...and between one voice event and the next.
VOICE_EVENT_GAP_S = (0.001, 0.01)


class GatewayOp(enum.IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class GatewayCloseCode(enum.IntEnum):
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005


class GatewaySession:
    """One main-gateway websocket connection."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse) -> None:
        self.hub = hub
        self.ws = ws
        self.connection = hub.next_connection_id()
        self.seq = 0
        self.session_id: str | None = None
        self.shard: tuple[int, int] | None = None
        self.identified = False
        self._streaming: asyncio.Task[None] | None = None  # GUILD_CREATEs sent apart (Faults.guild_create_gap_s)

    def covers(self, guild_id: int) -> bool:
        if self.shard is None:
            return True
        shard_id, num_shards = self.shard
        return shard_for(guild_id, num_shards) == shard_id

    async def send(self, op: GatewayOp, data: Any) -> None:
        payload: JSON = {"op": int(op), "d": data, "s": None, "t": None}
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: Any) -> None:
        if self.ws.closed:
            return
        self.seq += 1
        await self.ws.send_str(json.dumps({"op": int(GatewayOp.DISPATCH), "d": data, "s": self.seq, "t": event}))

    # handlers ----------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.send(GatewayOp.HELLO, {"heartbeat_interval": self.hub.heartbeat_interval_ms})
        async for msg in self.ws:
            if msg.type is not WSMsgType.TEXT:
                _log.debug("gateway %d: ignoring %s frame", self.connection, msg.type)
                continue
            try:
                payload = json.loads(msg.data)
                op = GatewayOp(payload["op"])
            except (ValueError, KeyError, TypeError):
                _log.warning("gateway %d: undecodable payload %r", self.connection, msg.data[:200])
                await self.ws.close(code=GatewayCloseCode.DECODE_ERROR, message=b"Decode error")
                break
            await self.handle(op, payload.get("d"))

    async def handle(self, op: GatewayOp, data: Any) -> None:
        if op is GatewayOp.HEARTBEAT:
            await self.send(GatewayOp.HEARTBEAT_ACK, None)
            return
        self.hub.records.gateway_events.append(GatewayEvent(time.monotonic(), self.connection, int(op), data))
        if op is GatewayOp.IDENTIFY:
            await self.identify(data)
        elif op is GatewayOp.RESUME:
            await self.resume(data)
        elif not self.identified:
            await self.ws.close(code=GatewayCloseCode.NOT_AUTHENTICATED, message=b"Not authenticated")
        elif op is GatewayOp.VOICE_STATE_UPDATE:
            await self.voice_state_update(data)
        elif op is GatewayOp.REQUEST_GUILD_MEMBERS:
            await self.request_members(data)
        else:
            _log.debug("gateway %d: op %s recorded, no answer", self.connection, op.name)

    async def identify(self, data: JSON) -> None:
        hub = self.hub
        token_ok = data.get("token") == hub.app.token
        raw_shard = data.get("shard")
        shard = (int(raw_shard[0]), int(raw_shard[1])) if raw_shard else None
        invalid = token_ok and hub.faults.invalid_session_identifies > 0
        hub.records.identifies.append(IdentifyRecord(time.monotonic(), shard, data.get("intents"), token_ok, invalid))
        if not token_ok:
            await self.ws.close(code=GatewayCloseCode.AUTHENTICATION_FAILED, message=b"Authentication failed")
            return
        if self.identified:
            await self.ws.close(code=GatewayCloseCode.ALREADY_AUTHENTICATED, message=b"Already authenticated")
            return
        if invalid:
            hub.faults.invalid_session_identifies -= 1
            _log.info("gateway %d: answering IDENTIFY with op 9 (fault)", self.connection)
            await self.send(GatewayOp.INVALID_SESSION, False)
            return
        hub.session_start_limit.remaining = max(hub.session_start_limit.remaining - 1, 0)
        guilds = hub.guilds_for_shard(shard)
        for guild in guilds:  # a new session (not a resume): Discord drops the old one's voice (4014),
            await self._drop_voice_of_old_session(guild.id)  # told to others, not to this session
        self.shard = shard
        self.session_id = secrets.token_hex(16)
        self.identified = True
        hub.known_session_ids[self.session_id] = shard
        ready: JSON = {
            "v": 10,
            "user": {**hub.bot_user.to_json(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": self.session_id,
            "session_type": "normal",
            "resume_gateway_url": hub.gateway_url,
            "application": {"id": str(hub.app.id), "flags": 0},
            "private_channels": [],
            "presences": [],
            "relationships": [],
            "guild_join_requests": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": ["local"],
            "_trace": ["discord-emulator"],
        }
        if shard is not None:
            ready["shard"] = list(shard)
        await self.dispatch("READY", ready)
        if hub.faults.guild_create_gap_s > 0:
            self._streaming = asyncio.create_task(self._send_guild_creates(guilds, hub.faults.guild_create_gap_s))
        else:
            await self._send_guild_creates(guilds, 0.0)

    async def _send_guild_creates(self, guilds: list[Guild], gap_s: float) -> None:
        for n, guild in enumerate(guilds):
            if n and gap_s:
                await asyncio.sleep(gap_s)
            self.hub.records.guild_creates.append((time.monotonic(), guild.id))
            await self.dispatch("GUILD_CREATE", self.hub.guild_create_payload(guild))

    async def _drop_voice_of_old_session(self, guild_id: int) -> None:
        hub = self.hub
        guild = hub.guilds[guild_id]
        voice = hub.voice_sessions.get(guild_id)
        if hub.bot_user.id not in guild.voice_states or voice is None or voice.ws.closed:
            return
        if any(s is not self and s.identified and s.covers(guild_id) for s in hub.gateway_sessions.values()):
            return  # another live session covers the guild (e.g. a second task on the same shard)
        _log.info("gateway %d: new session; dropping the bot's voice in guild %d (4014)", self.connection, guild_id)
        await hub.set_voice_state(guild, hub.bot_user.id, None)
        voice.record("closed_by_server", 4014)
        await voice.ws.close(code=4014, message=b"Disconnected: the main gateway session was dropped")

    async def resume(self, data: JSON) -> None:
        session_id = data.get("session_id")
        if data.get("token") != self.hub.app.token or session_id not in self.hub.known_session_ids:
            await self.send(GatewayOp.INVALID_SESSION, False)
            return
        self.session_id = session_id
        self.shard = self.hub.known_session_ids[session_id]
        self.identified = True
        self.seq = int(data.get("seq") or 0)
        await self.dispatch("RESUMED", {"_trace": ["discord-emulator"]})

    async def voice_state_update(self, data: JSON) -> None:
        hub = self.hub
        guild = hub.guilds.get(int(data["guild_id"]))
        if guild is None:
            _log.warning("gateway %d: voice state update for unknown guild %s", self.connection, data)
            return
        raw_channel = data.get("channel_id")
        channel_id = int(raw_channel) if raw_channel is not None else None
        if channel_id is not None and channel_id not in guild.channels:
            _log.warning("gateway %d: voice state update for unknown channel %s", self.connection, channel_id)
            return

        async def state_update() -> None:
            await hub.set_voice_state(
                guild,
                hub.bot_user.id,
                channel_id,
                self_mute=bool(data.get("self_mute")),
                self_deaf=bool(data.get("self_deaf")),
                session_id=self.session_id,
            )

        if channel_id is None:
            await state_update()
            return
        # As on Discord, the two events come in either order, and the server update may first come
        # without an endpoint (the voice server is still being allocated), then again with one. They
        # come a few milliseconds after op 4 and apart, as over a real network: unmodified discord.py
        # misses a state change that lands before its waiting task runs (the voice task does not).
        await asyncio.sleep(hub.rng.uniform(*VOICE_ANSWER_LATENCY_S))
        token = hub.new_voice_token(guild.id)
        server_updates = [{"token": token, "guild_id": str(guild.id), "endpoint": hub.voice_endpoint}]
        if hub.rng.random() < 0.3:
            server_updates.insert(0, {"token": token, "guild_id": str(guild.id), "endpoint": None})
        server_first = hub.rng.random() < 0.5
        order = [*("server" if u["endpoint"] else "server:null" for u in server_updates)]
        hub.records.voice_dispatches[guild.id].append(("state", *order) if not server_first else (*order, "state"))

        async def gap() -> None:  # separate dispatches, a moment apart, as they arrive from Discord
            await asyncio.sleep(hub.rng.uniform(*VOICE_EVENT_GAP_S))

        if not server_first:
            await state_update()
            await gap()
        for update in server_updates:
            await self.dispatch("VOICE_SERVER_UPDATE", update)
            await gap()
        if server_first:
            await state_update()

    async def request_members(self, data: JSON) -> None:
        guild = self.hub.guilds.get(int(data["guild_id"]))
        if guild is None:
            return
        await self.dispatch(
            "GUILD_MEMBERS_CHUNK",
            {
                "guild_id": str(guild.id),
                "members": [m.to_json() for m in guild.members.values()],
                "chunk_index": 0,
                "chunk_count": 1,
                "nonce": data.get("nonce"),
            },
        )


async def gateway_handler(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
    await ws.prepare(request)
    session = GatewaySession(hub, ws)
    hub.gateway_sessions[session.connection] = session
    _log.debug("gateway %d: connected (%s)", session.connection, request.query_string)
    try:
        await session.run()
    finally:
        hub.gateway_sessions.pop(session.connection, None)
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY)
        _log.debug("gateway %d: closed with %s", session.connection, ws.close_code)
    return ws
