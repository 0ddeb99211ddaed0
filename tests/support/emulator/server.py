"""``DiscordEmulator``: a loopback Discord (REST + gateway v10 + voice v8/UDP) in its own thread.

One HTTPS/WSS port serves REST under ``/api/v10``, the main gateway at ``/gateway`` and the voice
gateway at ``/`` (discord.py builds ``wss://{endpoint}/?v=8``); one UDP port takes voice packets.
All state lives on the emulator's event loop; the public methods below are synchronous, safe to
call from any other thread, and run their work on that loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from aiohttp import web

from .dave import DaveEvent, DaveMode, DaveOp
from .gateway import gateway_handler
from .hub import HUB_KEY, GuildCreateHook, Hub, LatencyFault, RateLimitFault
from .listener import PrivacyCode
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
from .rest import API_PREFIX, _record_message, rest_handler
from .state import (
    DEFAULT_EVERYONE_PERMISSIONS,
    JSON,
    Channel,
    ChannelType,
    Guild,
    Member,
    Overwrite,
    OverwriteType,
    Role,
    User,
    iso_now,
    snowflake,
)
from .tls import TlsMaterial, make_tls
from .voice import MODE_XCHACHA, VoiceUdpServer, change_voice_server, close_voice, move_bot, voice_handler

_log = logging.getLogger(__name__)

T = TypeVar("T")

_CALL_TIMEOUT = 10.0


@dataclass(frozen=True)
class GuildHandle:
    """Ids of a guild made by ``add_guild`` (with its default channels when asked for)."""

    id: int
    everyone_role_id: int
    text_channel_id: int | None
    voice_channel_id: int | None


@dataclass(frozen=True)
class EmulatorReport:
    """What one emulator saw over its life that a real Discord listener would not accept."""

    seed: int
    plaintext_frames: int
    listener_failures: list[str]
    not_audio_frames: int = 0  # frames a client would feed its Opus decoder that are not audio (Ogg headers, empty)


class DiscordEmulator:
    """A loopback Discord for end-to-end tests.

    Usage::

        with DiscordEmulator() as emu:
            guild = emu.add_guild("Test")
            alice = emu.add_member(guild.id, "alice")
            emu.set_member_voice(guild.id, alice, guild.voice_channel_id)
            env = emu.child_env()   # SSL_CERT_FILE + EMU_* for a bot subprocess
    """

    def __init__(
        self,
        *,
        bot_token: str | None = None,
        application_id: int | None = None,
        heartbeat_interval_ms: int = 41_250,
        voice_modes: Iterable[str] = (MODE_XCHACHA,),
        dave_mode: DaveMode | str = DaveMode.REQUIRED,
        seed: int | None = None,
    ) -> None:
        self.bot_token = bot_token or f"emulated.{secrets.token_urlsafe(24)}"
        self.application_id = application_id or snowflake()
        if seed is None:
            seed = int(os.environ.get("EMU_SEED") or secrets.randbelow(2**32))
        self.seed = seed
        self._hub = Hub(
            bot_token=self.bot_token,
            application_id=self.application_id,
            heartbeat_interval_ms=heartbeat_interval_ms,
            voice_modes=list(voice_modes),
            dave_mode=DaveMode(dave_mode),
            seed=seed,
        )
        self._tmp: Path | None = None
        self._tls: TlsMaterial | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._port = 0

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> DiscordEmulator:
        if self._thread is not None:
            return self
        self._tmp = Path(tempfile.mkdtemp(prefix="discord-emulator-"))
        self._tls = make_tls(self._tmp)
        self._loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run_loop, args=(ready,), name="discord-emulator", daemon=True)
        self._thread.start()
        ready.result(timeout=_CALL_TIMEOUT)
        _log.info("Discord emulator up: api %s, gateway %s, voice %s, udp %d, seed %s (EMU_SEED repeats it)",
                  self.api_base, self.gateway_url, self.voice_endpoint, self.udp_port, self.seed)  # fmt: skip
        return self

    def _run_loop(self, ready: concurrent.futures.Future[None]) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # surface start-up failures to start()
            if not ready.done():
                ready.set_exception(exc)
            raise
        ready.set_result(None)
        self._loop.run_forever()
        self._loop.run_until_complete(self._shutdown())
        self._loop.close()

    async def _serve(self) -> None:
        assert self._tls is not None and self._loop is not None
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app[HUB_KEY] = self._hub
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", rest_handler)
        app.router.add_get("/gateway", gateway_handler)
        app.router.add_get("/", voice_handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._tls.server_context())
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self._port = int(server.sockets[0].getsockname()[1])
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: VoiceUdpServer(self._hub), local_addr=("127.0.0.1", 0)
        )
        self._udp = transport
        self._hub.udp_port = int(transport.get_extra_info("sockname")[1])
        self._hub.gateway_url = self.gateway_url
        self._hub.voice_endpoint = self.voice_endpoint

    async def _shutdown(self) -> None:
        for listener in [*self._hub.listeners.values(), *self._hub.departed]:
            listener.leave()
        for session in list(self._hub.gateway_sessions.values()):
            await session.ws.close(code=1001, message=b"emulator stopping")
        for voice in list(self._hub.voice_sessions.values()):
            if not voice.ws.closed:
                await voice.ws.close(code=1001, message=b"emulator stopping")
        if self._udp is not None:
            self._udp.close()
        if self._runner is not None:
            await self._runner.cleanup()

    #: One report per emulator that stopped in this process (the suite's DAVE guard reads them).
    finished: ClassVar[list[EmulatorReport]] = []

    def report(self) -> EmulatorReport:
        def run() -> EmulatorReport:
            listeners = [*self._hub.listeners.values(), *self._hub.departed]
            return EmulatorReport(
                self.seed,
                sum(len(times) for times in self._hub.records.plaintext_frames.values()),
                [f for li in listeners for f in li.failures],
                sum(len(frames) for frames in self._hub.records.not_audio_frames.values()),
            )

        return self._call(run)

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        DiscordEmulator.finished.append(self.report())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)
        if self._thread.is_alive():
            _log.warning("Discord emulator thread did not stop in time")
        self._thread = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> DiscordEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # running code on the loop ------------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        if self._loop is None:
            raise RuntimeError("emulator not started")
        if self._thread is not None and threading.current_thread() is self._thread:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=_CALL_TIMEOUT)

    def _call_async(self, factory: Callable[[], Any]) -> Any:
        if self._loop is None:
            raise RuntimeError("emulator not started")
        return asyncio.run_coroutine_threadsafe(factory(), self._loop).result(timeout=_CALL_TIMEOUT)

    # addresses ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def api_base(self) -> str:
        """REST base, e.g. ``https://127.0.0.1:PORT/api/v10`` (set as ``discord.http.Route.BASE``)."""
        return f"https://127.0.0.1:{self._port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Main gateway, e.g. ``wss://127.0.0.1:PORT/gateway`` (``DiscordWebSocket.DEFAULT_GATEWAY``)."""
        return f"wss://127.0.0.1:{self._port}/gateway"

    @property
    def voice_endpoint(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def udp_port(self) -> int:
        return self._hub.udp_port

    @property
    def ca_file(self) -> Path:
        """PEM of the throwaway CA; give it to a bot process as ``SSL_CERT_FILE``."""
        if self._tls is None:
            raise RuntimeError("emulator not started")
        return self._tls.ca_file

    def ssl_context(self) -> Any:
        """An ``ssl.SSLContext`` trusting the emulator (for in-process urllib/aiohttp calls)."""
        if self._tls is None:
            raise RuntimeError("emulator not started")
        return self._tls.client_context()

    @property
    def bot_user_id(self) -> int:
        return self._hub.bot_user.id

    @property
    def public_key_hex(self) -> str:
        """The application's ``verify_key`` as ``/oauth2/applications/@me`` reports it."""
        return self._hub.app.verify_key

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a bot subprocess: ``SSL_CERT_FILE`` plus ``EMU_API_BASE``,
        ``EMU_GATEWAY_URL`` and ``EMU_BOT_TOKEN``."""
        env = dict(base or {})
        env.update(
            SSL_CERT_FILE=str(self.ca_file),
            EMU_API_BASE=self.api_base,
            EMU_GATEWAY_URL=self.gateway_url,
            EMU_BOT_TOKEN=self.bot_token,
        )
        return env

    # state: guilds, roles, channels, members ---------------------------------------------------
    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        guild_id: int | None = None,
        owner_id: int | None = None,
        default_channels: bool = True,
        everyone_permissions: int = int(DEFAULT_EVERYONE_PERMISSIONS),
    ) -> GuildHandle:
        """Add a guild with an @everyone role and the bot as a member; with ``default_channels``
        also a text channel ``general`` and a voice channel ``General``."""

        def run() -> GuildHandle:
            gid = guild_id or snowflake()
            owner = owner_id or snowflake()
            guild = Guild(id=gid, name=name, owner_id=owner)
            guild.roles[gid] = Role(gid, "@everyone", everyone_permissions, position=0)
            guild.members[self.bot_user_id] = Member(self._hub.bot_user)
            text_id = voice_id = None
            if default_channels:
                text_id = snowflake()
                voice_id = snowflake()
                guild.channels[text_id] = Channel(text_id, gid, "general", ChannelType.GUILD_TEXT, position=0)
                guild.channels[voice_id] = Channel(voice_id, gid, "General", ChannelType.GUILD_VOICE, position=1)
            self._hub.guilds[gid] = guild
            self._hub.joined_at[gid] = iso_now()
            return GuildHandle(gid, gid, text_id, voice_id)

        return self._call(run)

    def add_role(self, guild_id: int, name: str, permissions: int, *, position: int = 1) -> int:
        def run() -> int:
            role_id = snowflake()
            self._hub.guilds[guild_id].roles[role_id] = Role(role_id, name, int(permissions), position)
            return role_id

        return self._call(run)

    def add_channel(
        self,
        guild_id: int,
        name: str,
        type: ChannelType = ChannelType.GUILD_VOICE,
        *,
        user_limit: int = 0,
        position: int = 0,
        parent_id: int | None = None,
        overwrites: Iterable[Overwrite] = (),
    ) -> int:
        """Add a channel (voice by default; ``ChannelType.GUILD_STAGE_VOICE`` for a stage)."""

        async def run() -> int:
            channel_id = snowflake()
            channel = Channel(
                channel_id, guild_id, name, ChannelType(type), position=position, user_limit=user_limit,
                parent_id=parent_id, permission_overwrites=list(overwrites),
            )  # fmt: skip
            self._hub.guilds[guild_id].channels[channel_id] = channel
            await self._hub.dispatch_guild(guild_id, "CHANNEL_CREATE", channel.to_json())  # as Discord tells bots
            return channel_id

        return int(self._call_async(run))

    def set_overwrites(self, channel_id: int, overwrites: Iterable[Overwrite]) -> None:
        def run() -> None:
            for guild in self._hub.guilds.values():
                if channel_id in guild.channels:
                    guild.channels[channel_id].permission_overwrites = list(overwrites)
                    return
            raise KeyError(channel_id)

        self._call(run)

    def add_member(
        self,
        guild_id: int,
        username: str,
        *,
        roles: Iterable[int] = (),
        user_id: int | None = None,
        nick: str | None = None,
        bot: bool = False,
    ) -> int:
        """Add a member; returns the user id."""

        def run() -> int:
            uid = user_id or snowflake()
            self._hub.guilds[guild_id].members[uid] = Member(User(uid, username, bot=bot), list(roles), nick)
            return uid

        return self._call(run)

    def set_member_voice(
        self, guild_id: int, user_id: int, channel_id: int | None, *, self_mute: bool = False,
        self_deaf: bool = False,
    ) -> None:  # fmt: skip
        """Move a member (or the bot: a forced move/disconnect) to ``channel_id``; None disconnects.

        Sends VOICE_STATE_UPDATE to every connected bot session covering the guild. Moving the bot to
        another channel while its voice session is open is Discord's whole move (``move_bot``): the
        state, a voice server update with a new token and the old voice websocket closed with 4014.
        """

        async def run() -> None:
            hub = self._hub
            guild = hub.guilds[guild_id]
            current = guild.voice_states.get(user_id)
            session = hub.voice_sessions.get(guild_id)
            open_session = session is not None and not session.ws.closed
            moved = channel_id is not None and current is not None and current.channel_id != channel_id
            if user_id == hub.bot_user.id and moved and open_session and channel_id is not None:
                await move_bot(hub, guild_id, channel_id)
                return
            await hub.set_voice_state(guild, user_id, channel_id, self_mute=self_mute, self_deaf=self_deaf)

        self._call_async(run)

    def set_guild_create_hook(self, hook: GuildCreateHook | None) -> None:
        """Let a test rewrite (or break) each GUILD_CREATE payload before it is sent."""
        self._call(lambda: setattr(self._hub, "guild_create_hook", hook))

    def dispatch(self, guild_id: int, event: str, data: JSON) -> None:
        """Send a raw dispatch to every session covering ``guild_id``."""
        self._call_async(lambda: self._hub.dispatch_guild(guild_id, event, data))

    def set_session_start_limit(self, *, total: int = 1000, remaining: int = 1000,
                                reset_after_ms: int = 14_400_000, recommended_shards: int = 1) -> None:  # fmt: skip
        def run() -> None:
            limit = self._hub.session_start_limit
            limit.total, limit.remaining, limit.reset_after_ms = total, remaining, reset_after_ms
            self._hub.recommended_shards = recommended_shards

        self._call(run)

    def session_start_remaining(self) -> int:
        return self._call(lambda: self._hub.session_start_limit.remaining)

    # faults ------------------------------------------------------------------------------------
    def close_voice(self, guild_id: int, code: int) -> bool:
        """Close the guild's voice websocket with ``code`` (4006, 4014, 4015, 4017…)."""
        return bool(self._call_async(lambda: close_voice(self._hub, guild_id, code)))

    def move_bot(self, guild_id: int, channel_id: int) -> bool:
        """An admin drags the bot to another voice channel (state, new server token, close 4014)."""
        return bool(self._call_async(lambda: move_bot(self._hub, guild_id, channel_id)))

    def change_voice_server(self, guild_id: int) -> bool:
        """Discord moves the call to another voice server (a server update with a new token)."""
        return bool(self._call_async(lambda: change_voice_server(self._hub, guild_id)))

    def refuse_voice_identifies(self, times: int) -> None:
        """Close the next ``times`` voice IDENTIFYs with 4006: each new voice session fails at once."""
        self._call(lambda: setattr(self._hub.faults, "refused_voice_identifies", times))

    def gateway_op(self, guild_id: int, op: int) -> int:
        """Send op 7 (RECONNECT) or op 9 (INVALID_SESSION, not resumable) to every gateway session
        covering ``guild_id``, as Discord does when it moves or drops a session; returns how many."""
        from .gateway import GatewayOp  # noqa: PLC0415

        async def run() -> int:
            sessions = self._hub.sessions_for_guild(guild_id)
            for session in sessions:
                await session.send(GatewayOp(op), False if op == GatewayOp.INVALID_SESSION else None)
            return len(sessions)

        return int(self._call_async(run))

    def stream_guild_creates(self, gap_s: float) -> None:
        """Send each new session's GUILD_CREATEs ``gap_s`` apart, as Discord streams a large shard's
        guilds in after READY (``guild_creates()`` says when each went)."""
        self._call(lambda: setattr(self._hub.faults, "guild_create_gap_s", gap_s))

    def invalidate_next_identify(self, times: int = 1) -> None:
        """Answer the next ``times`` IDENTIFYs with op 9 (invalid session, not resumable)."""
        self._call(lambda: setattr(self._hub.faults, "invalid_session_identifies", times))

    def rate_limit(self, method: str, path: str, *, times: int = 1, retry_after: float = 0.5,
                   is_global: bool = False) -> None:  # fmt: skip
        """Answer ``method path`` (relative to the API base, e.g. ``/channels/1/messages``) with 429
        ``times`` times."""
        fault = RateLimitFault(method.upper(), path, times, retry_after, is_global)
        self._call(lambda: self._hub.faults.rate_limits.append(fault))

    def set_rest_latency(self, seconds: float, *, method: str | None = None, path: str | None = None) -> None:
        """Delay matching REST answers (all of them when method and path are None)."""
        fault = LatencyFault(seconds, method.upper() if method else None, path)
        self._call(lambda: self._hub.faults.latencies.append(fault))

    def clear_faults(self) -> None:
        def run() -> None:
            faults = self._hub.faults
            faults.invalid_session_identifies = 0
            faults.refused_voice_identifies = 0
            faults.guild_create_gap_s = 0.0
            faults.rate_limits.clear()
            faults.latencies.clear()

        self._call(run)

    # recordings --------------------------------------------------------------------------------
    def requests(self, method: str | None = None, path: str | None = None) -> list[RestRequest]:
        """REST requests received, oldest first (``path`` relative to the API base)."""
        return self._call(
            lambda: [r for r in self._hub.records.rest
                     if (method is None or r.method == method.upper()) and (path is None or r.path == path)]
        )  # fmt: skip

    def unmatched_requests(self) -> list[RestRequest]:
        return [r for r in self.requests() if not r.matched]

    def messages(self, channel_id: int | None = None) -> list[MessageRecord]:
        return self._call(
            lambda: [m for m in self._hub.records.messages if channel_id is None or m.channel_id == channel_id]
        )

    def delete_message(self, channel_id: int, message_id: int) -> bool:
        """A member (a moderator) deletes a message in the client: the bot then gets 404 / 10008 for it."""

        def run() -> bool:
            stored = self._hub.channel_messages.get(channel_id, {})
            if message_id not in stored:
                return False
            del stored[message_id]
            _record_message(self._hub, "delete", channel_id, message_id, {})
            return True

        return self._call(run)

    def webhook_calls(self, token: str | None = None) -> list[WebhookRecord]:
        """Calls on interaction webhooks (edits of @original, follow-ups, callbacks), oldest first."""
        return self._call(lambda: [w for w in self._hub.records.webhooks if token is None or w.token == token])

    def uploaded(self, url: str) -> bytes | None:
        """The bytes of a file a message was sent with, by its attachment URL."""
        return self._call(lambda: self._hub.records.uploads.get(url))

    def original_message(self, token: str) -> JSON | None:
        """The interaction's @original message as last edited, or None."""
        return self._call(lambda: self._hub.webhook_messages.get(token, {}).get("@original"))

    def registered_commands(self, guild_id: int | None = None) -> list[JSON]:
        return self._call(lambda: list(self._hub.commands.get(guild_id, [])))

    def identifies(self) -> list[IdentifyRecord]:
        return self._call(lambda: list(self._hub.records.identifies))

    def guild_creates(self) -> list[tuple[float, int]]:
        """Each GUILD_CREATE sent: (monotonic time, guild id), in order."""
        return self._call(lambda: list(self._hub.records.guild_creates))

    def gateway_events(self, op: int | None = None) -> list[GatewayEvent]:
        return self._call(lambda: [e for e in self._hub.records.gateway_events if op is None or e.op == op])

    def gateway_connections(self) -> int:
        """Number of open main-gateway connections."""
        return self._call(lambda: len(self._hub.gateway_sessions))

    def bot_voice_history(self, guild_id: int) -> list[VoiceStateChange]:
        return self._call(lambda: list(self._hub.records.bot_voice.get(guild_id, [])))

    def bot_voice_channel(self, guild_id: int) -> int | None:
        def run() -> int | None:
            state = self._hub.guilds[guild_id].voice_states.get(self.bot_user_id)
            return state.channel_id if state else None

        return self._call(run)

    def voice_state(self, guild_id: int, user_id: int) -> JSON | None:
        def run() -> JSON | None:
            state = self._hub.guilds[guild_id].voice_states.get(user_id)
            return state.to_json() if state else None

        return self._call(run)

    def voice_events(self, guild_id: int, kind: str | None = None) -> list[VoiceWsEvent]:
        return self._call(
            lambda: [e for e in self._hub.records.voice_ws.get(guild_id, []) if kind is None or e.kind == kind]
        )

    def packets(
        self, guild_id: int, *, since: float | None = None, until: float | None = None,
        include_silence: bool = False,
    ) -> list[RtpPacket]:  # fmt: skip
        """Decrypted RTP packets for ``guild_id`` (times are ``time.monotonic()``)."""
        return self._call(
            lambda: [
                p for p in self._hub.records.packets.get(guild_id, [])
                if (since is None or p.time >= since) and (until is None or p.time <= until)
                and (include_silence or not p.is_silence)
            ]
        )  # fmt: skip

    def undecryptable_packets(self) -> int:
        return self._call(lambda: self._hub.records.undecryptable_packets)

    def refused_bodies(self) -> list[tuple[str, Any]]:
        """REST bodies refused as Discord would refuse them (route, body), oldest first."""
        return self._call(lambda: list(self._hub.records.refused))

    def ping_bodies(self) -> list[tuple[str, Any]]:
        """Message bodies taken that could ping (no ``allowed_mentions`` that allow nothing)."""
        return self._call(lambda: list(self._hub.records.pings))

    # DAVE --------------------------------------------------------------------------------------
    def set_dave_mode(self, guild_id: int, mode: DaveMode | str) -> None:
        """``off`` (version 0), ``on`` (v1 offered) or ``required`` (v1; no DAVE → 4017) for one guild."""
        self._call(lambda: self._hub.dave_modes.__setitem__(guild_id, DaveMode(mode)))

    def add_listener(self, guild_id: int, channel_id: int, name: str = "listener", *,
                     withhold_key: bool = False) -> int:  # fmt: skip
        """A human member who joins ``channel_id`` now; returns the user id. Every human in a voice
        channel is a libdave listener; ``withhold_key`` keeps the bot's key from this one (a negative
        control: it hears nothing)."""
        user_id = self.add_member(guild_id, name)
        if withhold_key:
            self._call(lambda: self._hub.withheld_keys.add((guild_id, user_id)))
        self.set_member_voice(guild_id, user_id, channel_id)
        return user_id

    def listeners(self, guild_id: int) -> list[int]:
        """User ids of the listeners in the guild's voice channels now."""
        return self._call(lambda: sorted(uid for (gid, uid) in self._hub.listeners if gid == guild_id))

    def heard(self, guild_id: int, user_id: int, *, since: float | None = None, until: float | None = None,
              include_silence: bool = False) -> list[RtpPacket]:  # fmt: skip
        """What one listener decrypted (also after it left: it must then decrypt nothing new)."""
        return self._call(
            lambda: [
                p for p in self._hub.records.heard.get((guild_id, user_id), [])
                if (since is None or p.time >= since) and (until is None or p.time <= until)
                and (include_silence or not p.is_silence)
            ]
        )  # fmt: skip

    def plaintext_frames(self, guild_id: int | None = None, *, since: float | None = None) -> int:
        """Frames the bot sent as plain Opus while DAVE was in force (silence frames aside): real
        clients drop them. Every guild's when ``guild_id`` is None."""

        def run() -> int:
            times = self._hub.records.plaintext_frames
            chosen = [times.get(guild_id, [])] if guild_id is not None else list(times.values())
            return sum(1 for group in chosen for t in group if since is None or t >= since)

        return self._call(run)

    def not_audio_frames(self, guild_id: int | None = None) -> list[bytes]:
        """Frames a listener would hand its Opus decoder that are no audio (empty, Ogg headers)."""
        records = self._hub.records.not_audio_frames
        return self._call(lambda: [f for gid, frames in records.items() if guild_id in (None, gid) for f in frames])

    def unread_dave_frames(self, guild_id: int) -> int:
        """DAVE frames that no listener in the channel could decrypt."""
        return self._call(lambda: self._hub.records.unread_dave_frames.get(guild_id, 0))

    def privacy_codes(self, guild_id: int, user_id: int | None = None) -> list[PrivacyCode]:
        """Each code a listener computed after a transition (libdave's epoch authenticator), oldest first."""

        def run() -> list[PrivacyCode]:
            listeners = [*self._hub.listeners.values(), *self._hub.departed]
            codes = [c for li in listeners if li.media.guild_id == guild_id for c in li.codes]
            return sorted((c for c in codes if user_id in (None, c.user_id)), key=lambda c: c.time)

        return self._call(run)

    def dave_events(self, guild_id: int, kind: str | None = None) -> list[DaveEvent]:
        return self._call(
            lambda: [e for e in self._hub.records.dave_events.get(guild_id, []) if kind in (None, e.kind)]
        )

    def dave_group(self, channel_id: int) -> dict[str, Any]:
        """The voice server's view of a channel's DAVE group: established, epoch, leaves, members."""

        def run() -> dict[str, Any]:
            media = self._hub.media_sessions.get(channel_id)
            return media.snapshot() if media is not None else {"established": False, "members": []}

        return self._call(run)

    def voice_dispatches(self, guild_id: int) -> list[tuple[str, ...]]:
        """For each voice join: the order VOICE_STATE_UPDATE ("state") and VOICE_SERVER_UPDATE
        ("server", or "server:null" without an endpoint) went out in."""
        return self._call(lambda: list(self._hub.records.voice_dispatches.get(guild_id, [])))

    def listener_failures(self, guild_id: int) -> list[str]:
        """libdave failures and errors any listener of the guild hit (should stay empty)."""

        def run() -> list[str]:
            listeners = [*self._hub.listeners.values(), *self._hub.departed]
            return [f for li in listeners if li.media.guild_id == guild_id for f in li.failures]

        return self._call(run)

    def inject_invalid_dave(self, guild_id: int, op: int = DaveOp.MLS_ANNOUNCE_COMMIT_TRANSITION) -> bool:
        """Send the bot a corrupt op 29 (or 30): it should answer op 31 and be re-added."""

        async def run() -> bool:
            session = self._hub.voice_sessions.get(guild_id)
            if session is None or session.media is None:
                return False
            return await session.media.send_invalid(session.user_id, DaveOp(op))

        return bool(self._call_async(run))

    def replay_dave_commit(self, channel_id: int) -> bool:
        """Send the channel's last accepted commit (op 28) again from its sender, as a stale or second
        commit for its epoch: the voice server must refuse it (a ``commit_refused`` event)."""

        async def run() -> bool:
            media = self._hub.media_sessions.get(channel_id)
            return media is not None and await media.replay_commit()

        return bool(self._call_async(run))

    def hold_dave_commits(self, channel_id: int, seconds: float) -> None:
        """Make the channel's group ready ``seconds`` late: each winning commit waits that long."""

        def run() -> None:
            guild_id = next(g.id for g in self._hub.guilds.values() if channel_id in g.channels)
            self._hub.media_session(guild_id, channel_id).faults.hold_commits_s = seconds

        self._call(run)

    # waiting -----------------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
                 message: str = "condition") -> T:  # fmt: skip
        """Poll ``predicate`` until it returns something truthy; raise TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {message}")
            time.sleep(interval)


__all__ = ["ChannelType", "DiscordEmulator", "GuildHandle", "Overwrite", "OverwriteType"]
