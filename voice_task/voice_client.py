"""The voice client the task connects with: discord.py's, made strict about DAVE and in charge of
its own reconnects.

**DAVE.** discord.py 2.7.1 sends plain Opus whenever its DAVE session cannot encrypt yet (while a
group forms, after a reset, after an op 31), and real Discord clients drop those frames. Here nothing
but the exact Opus silence frame (which DAVE passes through by design) leaves unencrypted once DAVE
is in force. discord.py has no public readiness API, so the check lives in one function,
``dave_ready``; the audio source (``voice_task.audio.TrackSource``) and the packet sender below both
use it. After each DAVE transition the client logs the call's privacy code at INFO: the code users
compare in Discord's UI.

**Reconnects.** discord.py's own voice reconnect cannot be trusted with a long track:
- after a 4006 it backs off, leaves, and rejoins under a 30 s wait that can stall in IP discovery;
- its 4015 resume waits for a secret key that a RESUMED never carries;
- ``VoiceClient.disconnect()`` leaves the old runner alive, and its later clean-up drops the
  guild's *current* voice client from discord.py's cache.
So ``ResilientConnection`` replaces the websocket poller (``_poll_voice_ws``): every close is
reported by code; a 4015 is resumed for real (same session, same UDP socket, same DAVE group);
anything else that can be recovered gets a fresh voice session at once (a voice state update for the
channel the bot is in, a new websocket and a new UDP socket), retried with backoff until a deadline.
Moves and voice server changes (4014 after the gateway told of a new server) are followed with a
new websocket, UDP socket and reader, as a fresh session is; 4014 kicks, 4017 and 4021 end the
connection without a loop. ``disconnect`` also ends the runner and connector, and ``cleanup`` only
removes this client from the cache, never a newer one.

Two more discord.py races turned up by repeated reconnects against the emulator, each of which hung
a fresh session until its timeout:
- ``_wait_for_state`` can miss a state change made before its waiting task first runs (the state
  setter sets and clears an event at once); here the state is polled instead;
- the UDP socket reader can be left in ``select()`` on the closed socket, whose file descriptor
  number the new socket then reuses, so IP discovery's answer sits unread; each fresh session gets
  a new reader, which starts idle so it cannot swallow that answer before its listener exists.

This module relies on discord.py internals (``VoiceConnectionState``, ``ConnectionFlowState``, the
websocket hook); ``SUPPORTED_DISCORD_VERSION`` pins the version they were read from, and a test
fails when the installed discord.py differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import discord
from discord.gateway import DiscordVoiceWebSocket
from discord.voice_state import ConnectionFlowState, SocketReader, VoiceConnectionState

_log = logging.getLogger(__name__)

SUPPORTED_DISCORD_VERSION = "2.7.1"
#: The one frame DAVE lets through unencrypted (discord.py sends five of them when a source ends).
OPUS_SILENCE = b"\xf8\xff\xfe"

NORMAL_CLOSURE = 1000
DISCONNECTED = 4014  # kicked, channel deleted, or moved / voice server changed
VOICE_SERVER_CRASHED = 4015  # resume
DAVE_REQUIRED = 4017
RATE_LIMITED = 4021
CALL_TERMINATED = 4022
#: Closes after which reconnecting would only loop.
FINAL_CLOSES = frozenset({4004, DAVE_REQUIRED, RATE_LIMITED})

_SESSION_DESCRIPTION = 4
_RESUMED = 9
_DAVE_PREPARE_TRANSITION = 21
_DAVE_EXECUTE_TRANSITION = 22

RESUME_TIMEOUT_S = 5.0
STATE_POLL_S = 0.01
ATTEMPT_TIMEOUT_S = 10.0
MOVE_WAIT_S = 1.0  # after a 4014, how long the gateway may take to tell of a move or a new server
MAX_BACKOFF_S = 5.0


def dave_ready(voice: discord.VoiceClient | None) -> bool:
    """True when audio may go out: DAVE is not in force on this call, or its session can encrypt.

    The only readiness check in the voice task (discord.py's ``can_encrypt`` and the protocol
    version are internals; nothing else reads them).
    """
    if voice is None:
        return False
    connection = voice._connection
    if connection.dave_protocol_version == 0:
        return True
    return bool(connection.can_encrypt)


@dataclass
class VoiceEvents:
    """What the voice connection tells the task (each runs on the event loop)."""

    on_close: Callable[[int | None], None]  # every voice websocket close, by code (None: timed out)
    on_transition: Callable[[], None]  # a DAVE transition was executed
    on_recovered: Callable[[float], None]  # audio can flow again after this many seconds
    reconnect_deadline_s: float = 60.0


class _IdleSocketReader(SocketReader):
    """A socket reader that starts idle: the first listener registered starts it.

    IP discovery sends its request before it registers its listener; a reader that was already
    reading would take the answer first and drop it.
    """

    def __init__(self, state: VoiceConnectionState) -> None:
        super().__init__(state, start_paused=False)
        self._idle_paused = True

    def run(self) -> None:
        self._end.clear()
        try:
            self._do_run()
        except Exception:
            _log.exception("error in %s", self)
        finally:
            self.stop()
            self._running.clear()
            self._callbacks.clear()


@dataclass
class _RetiredState:
    """What a retired socket reader still sees: only the socket it was reading."""

    socket: socket.socket | None


class ResilientConnection(VoiceConnectionState):
    """discord.py's voice connection with the task's reconnect policy (see the module docstring)."""

    def __init__(self, voice_client: DaveVoiceClient, events: VoiceEvents) -> None:
        super().__init__(voice_client, hook=self._on_message)
        self.events = events
        self.reconnecting = False
        self.gave_up = False  # tried until the deadline: the task leaves
        self._resumed = asyncio.Event()

    async def _wait_for_state(self, state: ConnectionFlowState, *other_states: ConnectionFlowState,
                              timeout: float | None = None) -> None:  # fmt: skip
        """discord.py waits on an event that its state setter sets and clears at once: a state change
        made before the waiting task first runs is missed, and the wait hangs (seen on reconnects,
        where Discord's answer is quick). Polling the state cannot miss one."""
        states = (state, *other_states)
        async with asyncio.timeout(timeout):
            while self.state not in states:
                await asyncio.sleep(STATE_POLL_S)

    # ------------------------------------------------------------------ messages
    async def _on_message(self, ws: Any, message: dict[str, Any]) -> None:
        """discord.py's websocket hook: runs after it handled each JSON voice message."""
        op = message.get("op")
        data = message.get("d") or {}
        if op == _RESUMED:
            self._resumed.set()
        elif op == _SESSION_DESCRIPTION:
            _log.info("voice session: DAVE protocol version %s", data.get("dave_protocol_version"))
        elif op == _DAVE_EXECUTE_TRANSITION or (op == _DAVE_PREPARE_TRANSITION and data.get("transition_id") == 0):
            code = self.dave_session.voice_privacy_code if self.dave_session is not None else None
            _log.info("DAVE transition %s executed; privacy code %s", data.get("transition_id"), code)
            self.events.on_transition()

    # ------------------------------------------------------------------ the websocket poller
    async def _poll_voice_ws(self, reconnect: bool) -> None:
        while True:
            try:
                await self.ws.poll_event()
            except asyncio.CancelledError:
                return
            except (discord.ConnectionClosed, TimeoutError) as exc:
                code = exc.code if isinstance(exc, discord.ConnectionClosed) else None
                self.events.on_close(code)
                if not await self._handle_close(code):
                    return

    async def _handle_close(self, code: int | None) -> bool:
        """True when the connection goes on (recovered or moved); False when it ended."""
        if code == NORMAL_CLOSURE:
            if not self._expecting_disconnect:
                _log.info("voice websocket closed normally: disconnecting")
                await self.disconnect()
            return False
        if code in (DISCONNECTED, CALL_TERMINATED):
            if self._disconnected.is_set():
                _log.info("disconnected from voice by Discord (%s)", code)
                await self.disconnect()
                return False
            _log.info("voice closed with %s: following a move or a new voice server", code)
            started = time.monotonic()
            self.reconnecting = True
            try:
                followed = await self._follow_new_server()
            finally:
                self.reconnecting = False
            if followed:
                self.events.on_recovered(time.monotonic() - started)
                return True
            _log.info("no new voice server after %s: reconnecting from scratch", code)
        elif code in FINAL_CLOSES:
            _log.error("voice closed with %s: not reconnecting", code)
            await self.disconnect()
            return False
        if await self._recover(resume=code == VOICE_SERVER_CRASHED):
            return True
        await self.disconnect()
        return False

    async def _recover(self, *, resume: bool) -> bool:
        started = time.monotonic()
        deadline = started + self.events.reconnect_deadline_s
        self.reconnecting = True
        try:
            if resume and await self._try_resume():
                self.events.on_recovered(time.monotonic() - started)
                return True
            attempt = 0
            while time.monotonic() < deadline:
                attempt += 1
                remaining = deadline - time.monotonic()
                try:
                    await asyncio.wait_for(self._fresh_session(leave_first=attempt > 1),
                                           timeout=min(ATTEMPT_TIMEOUT_S, remaining))  # fmt: skip
                except (discord.ConnectionClosed, TimeoutError, OSError) as exc:
                    if isinstance(exc, discord.ConnectionClosed):
                        self.events.on_close(exc.code)
                        if exc.code in FINAL_CLOSES:
                            _log.error("voice closed with %s while reconnecting: giving up", exc.code)
                            return False
                    pause = min(MAX_BACKOFF_S, 0.5 * 2 ** (attempt - 1), max(0.0, deadline - time.monotonic()))
                    _log.warning("voice reconnect attempt %s failed (%r); next in %.1f s", attempt, exc, pause)
                    await asyncio.sleep(pause)
                    continue
                elapsed = time.monotonic() - started
                _log.info("voice reconnected after %.2f s (attempt %s)", elapsed, attempt)
                self.events.on_recovered(elapsed)
                return True
            _log.error("voice reconnect gave up after %.0f s", time.monotonic() - started)
            self.gave_up = True
            return False
        finally:
            self.reconnecting = False

    async def _try_resume(self) -> bool:
        """A real RESUME: same session, token, UDP socket, secret key and DAVE group."""
        self._registered()
        old = self.ws
        self._resumed.clear()
        try:
            ws = await DiscordVoiceWebSocket.from_connection_state(self, resume=True, hook=self.hook,
                                                                   seq_ack=old.seq_ack)  # fmt: skip
            self.ws = ws
            async with asyncio.timeout(RESUME_TIMEOUT_S):
                while not self._resumed.is_set():
                    await ws.poll_event()
        except (discord.ConnectionClosed, TimeoutError, OSError) as exc:
            _log.info("voice resume failed (%r): starting a new voice session", exc)
            return False
        finally:
            with contextlib.suppress(Exception):
                await old.close()
        _log.info("voice session resumed")
        return True

    async def _follow_new_server(self) -> bool:
        """After a 4014 that came with a move or a new voice server (both already told by the
        gateway): connect to it with a new websocket, UDP socket and reader, under a timeout.
        discord.py's own ``_potential_reconnect`` reuses the socket with a reader that can swallow
        IP discovery's answer, and then waits for it with no timeout."""
        self._registered()
        try:
            await self._wait_for_state(ConnectionFlowState.got_voice_server_update,
                                       ConnectionFlowState.got_both_voice_updates,
                                       ConnectionFlowState.disconnected, timeout=MOVE_WAIT_S)  # fmt: skip
        except TimeoutError:
            return False
        if self.state is ConnectionFlowState.disconnected:
            return False
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                retired_socket = self._retire_socket()
                self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.socket.setblocking(False)
                self._replace_socket_reader(retired_socket)
                self.ws = await self._connect_websocket(False)
                await self._handshake_websocket()
        except (discord.ConnectionClosed, TimeoutError, OSError) as exc:
            _log.info("could not follow the new voice server (%r)", exc)
            return False
        return True

    def _registered(self) -> None:
        """Be in discord.py's voice-client cache again if a new gateway session emptied it.

        discord.py clears that cache on every READY: after an op 9 (or any new session rather than a
        resume) the gateway's voice events no longer reach this connection, so every reconnect would
        wait for voice updates that never come. A newer client of the guild is left alone."""
        client = self.voice_client
        key_id, _ = client.channel._get_voice_client_key()
        cache = client.client._connection
        if cache._get_voice_client(key_id) is None:
            _log.warning("discord.py forgot this voice client (a new gateway session): registering it again")
            cache._add_voice_client(key_id, client)

    async def _fresh_session(self, *, leave_first: bool) -> None:
        """A new voice session in the same channel: voice state update, new websocket, new UDP socket."""
        self._registered()
        with contextlib.suppress(Exception):
            await self.ws.close()
        retired_socket = self._retire_socket()
        if leave_first:
            # The fallback when the voice state update alone brought no new server: leave, then join.
            self._expecting_disconnect = True
            await self.voice_client.channel.guild.change_voice_state(channel=None)
        self.state = ConnectionFlowState.set_guild_voice_state
        await self._voice_connect(self_deaf=self.self_deaf, self_mute=self.self_mute)
        await self._wait_for_state(ConnectionFlowState.got_both_voice_updates)
        self._replace_socket_reader(retired_socket)
        self.ws = await self._connect_websocket(False)
        await self._handshake_websocket()

    def _retire_socket(self) -> socket.socket | None:
        """Stop reading and close the UDP socket, forgetting the address IP discovery found on it;
        returns the closed socket (for ``_replace_socket_reader``)."""
        self._socket_reader.pause()
        retired = self.socket or None
        self._close_socket()
        self.ip = discord.utils.MISSING
        self.port = discord.utils.MISSING
        return retired

    def _replace_socket_reader(self, retired_socket: socket.socket | None) -> None:
        """A new reader thread for the new UDP socket.

        The old reader may sit in a 30 s ``select()`` on the old socket: closing a socket does not
        reliably wake a ``select()`` in another thread, and the new socket usually gets the same file
        descriptor number, so the old reader would keep waiting on a dead file while IP discovery's
        answer waited unread on the new one. The old reader is told to end, and pointed at the old
        socket so that it can never read the new one's packets.
        """
        old = self._socket_reader
        old.state = _RetiredState(retired_socket)  # type: ignore[assignment]
        old.stop()
        self._socket_reader = _IdleSocketReader(self)
        self._socket_reader.start()

    def _close_socket(self) -> None:
        """Close the UDP socket so that the reader thread notices: a socket closed under its
        ``select()`` would keep it waiting up to 30 s, and IP discovery on the new socket with it."""
        if not self.socket:
            return
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()

    # ------------------------------------------------------------------ ending
    async def disconnect(self, *, force: bool = True, cleanup: bool = True, wait: bool = False) -> None:
        current = asyncio.current_task()
        for task in (self._connector, self._runner):
            if task is not None and task is not current and not task.done():
                task.cancel()
        self._close_socket()
        await super().disconnect(force=force, cleanup=cleanup, wait=wait)


class DaveVoiceClient(discord.VoiceClient):
    """A voice client that never sends plaintext under DAVE and owns its reconnects.

    Built by ``channel.connect(cls=functools.partial(DaveVoiceClient, events=...))``.
    """

    def __init__(self, client: discord.Client, channel: discord.abc.Connectable, *, events: VoiceEvents) -> None:
        self._events = events
        super().__init__(client, channel)
        self.withheld_frames = 0

    def create_connection_state(self) -> VoiceConnectionState:
        return ResilientConnection(self, self._events)

    @property
    def reconnecting(self) -> bool:
        connection = self._connection
        return isinstance(connection, ResilientConnection) and connection.reconnecting

    @property
    def gave_up(self) -> bool:
        connection = self._connection
        return isinstance(connection, ResilientConnection) and connection.gave_up

    def connection_tasks(self) -> frozenset[asyncio.Task[Any]]:
        """This client's own voice connection tasks still running (discord.py's connector and
        websocket poller): any other task of those names belongs to a discarded connection."""
        connection = self._connection
        tasks = (connection._connector, connection._runner)
        return frozenset(t for t in tasks if t is not None and not t.done())

    def send_audio_packet(self, data: bytes, *, encode: bool = True) -> None:
        if not dave_ready(self) and (encode or data != OPUS_SILENCE):
            self.withheld_frames += 1  # discord.py would send it in plain text
            return
        super().send_audio_packet(data, encode=encode)

    def cleanup(self) -> None:
        """Leave discord.py's voice-client cache, unless a newer client of this guild is in it."""
        key_id, _ = self.channel._get_voice_client_key()
        if self.client._connection._get_voice_client(key_id) in (self, None):
            super().cleanup()
