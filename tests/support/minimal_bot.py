"""A minimal discord.py 2.7.1 bot driven over stdin/stdout, and the harness that runs it.

The child (``python -m tests.support.minimal_bot``, or forked warm by ``tests.support.warm_start``
with the same pipes) reads ``EMU_API_BASE``, ``EMU_GATEWAY_URL`` and
``EMU_BOT_TOKEN`` (with ``SSL_CERT_FILE`` trusting the emulator's CA), sets the only two discord.py
attributes allowed (``discord.http.Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY``) and closes one
discord.py race (see ``_wait_for_state`` below), logs in,
then obeys JSON-line commands on stdin and reports JSON-line events on stdout:

    {"cmd": "join", "guild": G, "channel": C}          -> {"event": "joined", "dave": {...}, "dave_ready": bool}
                                                          (once DAVE can encrypt, or after dave_timeout)
    {"cmd": "dave", "guild": G}                        -> {"event": "dave", "version", "can_encrypt", "privacy_code"}
    {"cmd": "play", "guild": G, "path": P}             -> {"event": "playing", "t": monotonic}
                                                          {"event": "play_done", "error": null, "t": ...}
    {"cmd": "leave", "guild": G}                       -> {"event": "left"}
    {"cmd": "send", "channel": C, "content": S}        -> {"event": "sent", "message_id": ...}
    {"cmd": "fetch_channel", "channel": C}             -> {"event": "fetched", "t0": ..., "t1": ...}
    {"cmd": "quit"}

A command that fails reports ``{"event": "error", "cmd": ..., "error": repr}``. Logs (discord's at
INFO, ``discord.voice_state`` at DEBUG, so close codes are visible) go to stderr. An exception that
ends ``Client.start`` (e.g. a KeyError from a malformed GUILD_CREATE) exits non-zero with its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
import imageio_ffmpeg
import yarl

if TYPE_CHECKING:
    from tests.support.emulator import DiscordEmulator
    from tests.support.warm_start import WarmProcess, WarmStarter

_log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]

Event = dict[str, Any]


# ------------------------------------------------------------------------------------------------
# child side
# ------------------------------------------------------------------------------------------------
def _emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


async def _child_main() -> None:
    discord.http.Route.BASE = os.environ["EMU_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["EMU_GATEWAY_URL"])
    identify_delay = float(os.environ.get("EMU_IDENTIFY_DELAY", "0"))

    # discord.py's VoiceConnectionState._wait_for_state waits on an event its state setter sets and
    # clears at once, so a change that lands before the waiting task runs is missed and the join
    # hangs until its timeout. On a loaded test machine that happens; the harness polls instead
    # (the voice task does the same in voice_task/voice_client.py). Nothing else is changed.
    async def _wait_for_state(self: Any, state: Any, *others: Any, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            while self.state not in (state, *others):
                await asyncio.sleep(0.01)

    discord.voice_state.VoiceConnectionState._wait_for_state = _wait_for_state  # type: ignore[method-assign]
    if os.environ.get("EMU_NO_DAVE"):
        # A client build without DAVE: it offers max_dave_protocol_version 0 (what Discord refuses).
        discord.voice_state.VoiceConnectionState.max_dave_protocol_version = property(lambda self: 0)  # type: ignore[assignment,method-assign]
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()

    class _AudioOnly(discord.AudioSource):
        """What a careful client does: the Ogg header packets never go out as audio frames."""

        def __init__(self, inner: discord.AudioSource) -> None:
            self.inner = inner

        def read(self) -> bytes:
            frame = self.inner.read()
            while frame.startswith((b"OpusHead", b"OpusTags")):
                frame = self.inner.read()
            return frame

        def is_opus(self) -> bool:
            return True

        def cleanup(self) -> None:
            self.inner.cleanup()

    class MinimalBot(discord.Client):
        async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
            if not initial:
                await asyncio.sleep(identify_delay)

        async def setup_hook(self) -> None:
            self.loop.create_task(self._read_commands(), name="stdin commands")

        async def on_ready(self) -> None:
            _emit("ready", guilds=[str(g.id) for g in self.guilds], t=time.monotonic())

        async def _read_commands(self) -> None:
            # A daemon thread, not the default executor: asyncio.run() would wait for a blocked readline.
            loop = asyncio.get_running_loop()
            lines: asyncio.Queue[str] = asyncio.Queue()

            def pump() -> None:
                for raw in sys.stdin:
                    loop.call_soon_threadsafe(lines.put_nowait, raw)
                loop.call_soon_threadsafe(lines.put_nowait, "")

            threading.Thread(target=pump, name="stdin", daemon=True).start()
            while True:
                line = await lines.get()
                if not line:
                    await self.close()
                    return
                command = json.loads(line)
                if command["cmd"] == "quit":
                    await self.close()
                    return
                try:
                    await self._run(command)
                except Exception as exc:
                    _log.exception("command %s failed", command)
                    _emit("error", cmd=command["cmd"], error=repr(exc))

        @staticmethod
        def _dave(voice: discord.VoiceClient) -> dict[str, Any]:
            state = voice._connection
            return {"version": state.dave_protocol_version, "can_encrypt": state.can_encrypt,
                    "privacy_code": voice.voice_privacy_code}  # fmt: skip

        @staticmethod
        async def _dave_ready(voice: discord.VoiceClient, timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                state = voice._connection
                if state.dave_protocol_version == 0 or state.can_encrypt:
                    return True
                await asyncio.sleep(0.01)
            return False

        def _voice(self, guild_id: str) -> discord.VoiceClient:
            guild = self.get_guild(int(guild_id))
            if guild is None or not isinstance(guild.voice_client, discord.VoiceClient):
                raise RuntimeError(f"not in voice in guild {guild_id}")
            return guild.voice_client

        async def _run(self, command: dict[str, Any]) -> None:
            cmd = command["cmd"]
            if cmd == "join":
                channel = self.get_channel(int(command["channel"]))
                if not isinstance(channel, discord.VoiceChannel | discord.StageChannel):
                    raise RuntimeError(f"no voice channel {command['channel']}")
                voice = await channel.connect(timeout=float(command.get("timeout", 10)), self_deaf=True)
                # Unmodified discord.py sends plain Opus until its DAVE session can encrypt: wait for it,
                # as DAVE_NOTES advises, so "joined" means audio can flow.
                ready = await self._dave_ready(voice, float(command.get("dave_timeout", 5)))
                _emit("joined", guild=str(channel.guild.id), channel=str(channel.id), t=time.monotonic(),
                      dave=self._dave(voice), dave_ready=ready)  # fmt: skip
            elif cmd == "dave":
                _emit("dave", **self._dave(self._voice(command["guild"])))
            elif cmd == "play":
                voice = self._voice(command["guild"])
                source: discord.AudioSource = discord.FFmpegOpusAudio(command["path"], codec="copy",
                                                                      executable=ffmpeg)  # fmt: skip
                if not command.get("ogg_headers"):  # unmodified, it sends OpusHead/OpusTags as frames
                    source = _AudioOnly(source)
                loop = asyncio.get_running_loop()

                def after(error: Exception | None) -> None:
                    loop.call_soon_threadsafe(
                        lambda: _emit("play_done", error=repr(error) if error else None, t=time.monotonic())
                    )

                voice.play(source, after=after)
                _emit("playing", t=time.monotonic())
            elif cmd == "leave":
                await self._voice(command["guild"]).disconnect()
                _emit("left", t=time.monotonic())
            elif cmd == "send":
                channel = self.get_channel(int(command["channel"]))
                if not isinstance(channel, discord.TextChannel):
                    raise RuntimeError(f"no text channel {command['channel']}")
                message = await channel.send(command["content"])
                _emit("sent", message_id=str(message.id), t=time.monotonic())
            elif cmd == "fetch_channel":
                t0 = time.monotonic()
                channel = await self.fetch_channel(int(command["channel"]))
                _emit("fetched", channel=str(channel.id), t0=t0, t1=time.monotonic())
            else:
                raise ValueError(f"unknown command {cmd!r}")

    intents = discord.Intents.none()
    intents.guilds = True
    intents.voice_states = True
    bot = MinimalBot(
        intents=intents,
        allowed_mentions=discord.AllowedMentions.none(),  # what every bot that quotes users' text should send
        chunk_guilds_at_startup=False,
        guild_ready_timeout=float(os.environ.get("EMU_GUILD_READY_TIMEOUT", "0.2")),
    )
    async with bot:
        await bot.start(os.environ["EMU_BOT_TOKEN"])
    _emit("closed", t=time.monotonic())


def child_main(argv: list[str] | None = None) -> int:
    """The bot's entry point (it takes no arguments; ``argv`` is for the warm starter's uniform call)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    logging.getLogger("discord.voice_state").setLevel(logging.DEBUG)
    for name in filter(None, os.environ.get("EMU_DEBUG_LOGGERS", "").split(",")):
        logging.getLogger(name).setLevel(logging.DEBUG)
    asyncio.run(_child_main())
    return 0


# ------------------------------------------------------------------------------------------------
# parent side
# ------------------------------------------------------------------------------------------------
class BotProcessError(AssertionError):
    """The bot process died or did not report an expected event in time."""


class MinimalBotProcess:
    """Runs the minimal bot as a subprocess against an emulator.

    Usage::

        with MinimalBotProcess(emulator) as bot:
            bot.wait_event("ready")
            bot.command("join", guild=gid, channel=cid)
            bot.wait_event("joined")
    """

    def __init__(
        self, emulator: DiscordEmulator, *, env: Mapping[str, str] | None = None, starter: WarmStarter | None = None
    ) -> None:
        self._env = {**os.environ, **emulator.child_env(), "PYTHONUNBUFFERED": "1", **(env or {})}
        self._starter = starter
        self._proc: subprocess.Popen[str] | WarmProcess | None = None
        self._events: list[Event] = []
        self._stderr: list[str] = []
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []

    def start(self) -> MinimalBotProcess:
        """Forked from the warm starter when it can serve the bot's environment (see
        ``tests.support.warm_start``), else ``python -m tests.support.minimal_bot``."""
        warm = self._starter is not None and self._starter.serves(
            self._env, extra_python_path=bool(self._env.get("PYTHONPATH"))
        )
        if warm:
            assert self._starter is not None
            self._proc = self._starter.start_piped(main="minimal_bot", cwd=REPO_ROOT, env=self._env)
        else:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.minimal_bot"],
                cwd=REPO_ROOT, env=self._env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self._proc.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self._proc.stderr, False), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _pump(self, stream: Any, is_stdout: bool) -> None:
        for line in stream:
            with self._cond:
                if is_stdout:
                    try:
                        self._events.append(json.loads(line))
                    except ValueError:
                        self._stderr.append(f"[stdout] {line}")
                else:
                    self._stderr.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> MinimalBotProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._stderr)

    @property
    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    def command(self, cmd: str, **args: Any) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("bot process not started")
        payload = {"cmd": cmd, **{k: str(v) if isinstance(v, int | Path) else v for k, v in args.items()}}
        self._proc.stdin.write(json.dumps(payload) + "\n")
        self._proc.stdin.flush()

    def wait_event(self, name: str, timeout: float = 15.0, predicate: Callable[[Event], bool] | None = None,
                   *, after: int = 0) -> Event:  # fmt: skip
        """Wait for the first event ``name`` (at index ≥ ``after``); raise with the bot's stderr tail
        if the process exits first or the time runs out. An ``error`` event fails too."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._events[after:]:
                    if event.get("event") == name and (predicate is None or predicate(event)):
                        return event
                    if event.get("event") == "error" and name != "error":
                        raise BotProcessError(f"bot reported {event}\n--- bot stderr ---\n{self._tail()}")
                if (
                    self._proc is not None
                    and self._proc.poll() is not None
                    and not any(t.is_alive() for t in self._threads)
                ):
                    raise BotProcessError(
                        f"bot exited with {self._proc.returncode} before {name!r}\n--- bot stderr ---\n{self._tail()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BotProcessError(f"no {name!r} event within {timeout}s\n--- bot stderr ---\n{self._tail()}")
                self._cond.wait(min(remaining, 0.2))

    def wait_stderr(self, text: str, timeout: float = 15.0) -> None:
        """Wait until ``text`` appears in the bot's log."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while text not in "".join(self._stderr):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BotProcessError(f"{text!r} not logged within {timeout}s\n--- bot stderr ---\n{self._tail()}")
                self._cond.wait(min(remaining, 0.2))

    def wait_exit(self, timeout: float = 15.0) -> int:
        if self._proc is None:
            raise RuntimeError("bot process not started")
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BotProcessError(f"bot still running after {timeout}s\n{self._tail()}") from exc

    def _tail(self, lines: int = 60) -> str:
        return "".join(self._stderr[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError, ValueError):
                self.command("quit")
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _log.warning("bot process %d did not quit; terminating", proc.pid)
                proc.terminate()
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=3)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        for thread in self._threads:
            thread.join(timeout=2)


if __name__ == "__main__":
    sys.exit(child_main())
