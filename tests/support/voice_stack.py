"""The voice half end to end: a real ``python -m voice_task`` against the loopback emulator.

``VoiceStack`` holds the settings every process shares (the emulator's REST and gateway URLs, its
throwaway CA, an SQLite store file, the test-only local media source) and starts voice tasks as
real subprocesses, exactly as the local launcher does. Given a ``RecordingDynamoDB``, the store is
DynamoDB (moto on 127.0.0.1) instead, and the endpoint records every call the tasks make. Given a
``WarmStarter``, a task whose start it serves is forked from its already-imported process instead
of starting cold (``tests.support.warm_start`` says when that is the same).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.audio import AudioAnalysis, analyse
from tests.support.dave_checks import privacy_code_problems
from tests.support.emulator import DiscordEmulator, GuildHandle, RtpPacket
from tests.support.emulator.records import MessageRecord
from tests.support.media import MediaServer, sweep_file, tone_file
from timmybot import netguard
from timmybot.config import Settings
from timmybot.models import GuildRecord, LeaseState, QueueEntry
from timmybot.sources import SourceChain, resolve_query
from timmybot.store import schema
from timmybot.store.base import Store
from timmybot.store.dynamodb import DynamoDBStore
from timmybot.store.sqlite import SQLiteStore
from timmybot.wake import send_hints

if TYPE_CHECKING:
    from tests.support.dynamodb_recorder import RecordingDynamoDB
    from tests.support.warm_start import WarmProcess, WarmStarter

ROOT = Path(__file__).resolve().parents[2]
_entry_ids = itertools.count(1)


class VoiceTaskProcess:
    def __init__(self, process: subprocess.Popen[bytes] | WarmProcess, log_path: Path, guild_id: str) -> None:
        self.process = process
        self.log_path = log_path
        self.guild_id = guild_id

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"voice task did not exit within {timeout} s; log:\n{self.log[-4000:]}") from exc

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class VoiceStack:
    def __init__(self, emulator: DiscordEmulator, media: MediaServer, tmp_path: Path, *,
                 dynamodb: RecordingDynamoDB | None = None, starter: WarmStarter | None = None,
                 **settings: str) -> None:  # fmt: skip
        self.emulator = emulator
        self.starter = starter
        self.media = media
        self.tmp_path = tmp_path
        self.db_path = tmp_path / "timmybot.sqlite3"
        self.env: dict[str, str] = {
            "TIMMYBOT_STORE_BACKEND": "sqlite",
            "TIMMYBOT_SQLITE_PATH": str(self.db_path),
            "TIMMYBOT_DISCORD_BOT_TOKEN": emulator.bot_token,
            "TIMMYBOT_DISCORD_APPLICATION_ID": str(emulator.application_id),
            "TIMMYBOT_DISCORD_API_BASE": emulator.api_base,
            "TIMMYBOT_DISCORD_GATEWAY_URL": emulator.gateway_url,
            "TIMMYBOT_ALLOW_LOCAL_MEDIA": "true",
            "TIMMYBOT_TICK_S": "0.1",
            "TIMMYBOT_STRICT_STATES": "true",
            "TIMMYBOT_LOG_LEVEL": "INFO",
            "SSL_CERT_FILE": str(emulator.ca_file),
        }
        table = f"timmybot-{tmp_path.name}"[:255]
        if dynamodb is not None:
            self.env.update(dynamodb.task_env(table))
        self.env.update(settings)
        self.settings = Settings.from_env(self.env)
        store: Store
        if dynamodb is not None:
            client = dynamodb.client()
            client.create_table(**schema.table_definition(table))
            store = DynamoDBStore(table, client=client)
        else:
            store = SQLiteStore(self.db_path)
        # The stack's writes stand for the api's and the worker's: they send wake hints as those do.
        self.store = send_hints(store, self.settings)
        self.tasks: list[VoiceTaskProcess] = []

    # ------------------------------------------------------------------ queue set-up
    def tone_entry(self, freq_hz: int, seconds: float = 4.0, *, fmt: str = "webm", requester: str = "1") -> QueueEntry:
        name = f"tone-{freq_hz}-{seconds}.{fmt}"
        self.media.add(name, tone_file(freq_hz, seconds, fmt))  # type: ignore[arg-type]
        return self._entry(name, requester)

    def sweep_entry(self, seconds: float, *, requester: str = "1") -> QueueEntry:
        """A track whose frequency tells the position (``media.sweep_file``)."""
        name = f"sweep-{seconds}.webm"
        self.media.add(name, sweep_file(seconds))
        return self._entry(name, requester)

    def file_entry(self, name: str, path: Path, *, requester: str = "1") -> QueueEntry:
        """A track of any media file (``media.signal_file``), served by the media server as ``name``."""
        self.media.add(name, path)
        return self._entry(name, requester)

    def _entry(self, name: str, requester: str) -> QueueEntry:
        tracks = resolve_query(
            self.media.url_for(name), SourceChain.over_store(self.settings.source_settings(), self.store)
        )
        return QueueEntry(
            entry_id=f"e{next(_entry_ids):05d}",
            track=tracks[0],
            requester_id=requester,
            added_at=time.time(),
        )

    def enqueue(self, guild_id: str, *entries: QueueEntry, voice_channel_id: str, text_channel_id: str) -> None:
        self.store.set_channels(guild_id, voice_channel_id=voice_channel_id, text_channel_id=text_channel_id)
        self.store.append_entries(guild_id, list(entries), cap=self.settings.queue_cap)

    # ------------------------------------------------------------------ processes
    def start_task(self, guild_id: str, *, generation: int | None = None, python_path: Sequence[Path] = (),
                   **extra_env: str) -> VoiceTaskProcess:  # fmt: skip
        """``python_path``: folders put first on the task's PYTHONPATH (test wiring, e.g. a site hook)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMMYBOT_")}
        env.update(self.env)
        # The media servers this test runs are allowed through the task's network guard.
        allowed = [part for part in env.get(netguard.ALLOW_ENV, "").split(",") if part]
        env[netguard.ALLOW_ENV] = ",".join(dict.fromkeys([*allowed, *netguard.allowance_entries()]))
        env.update(extra_env)
        env["TIMMYBOT_GUILD_ID"] = guild_id
        if generation is not None:
            env["TIMMYBOT_LEASE_GENERATION"] = str(generation)
        env["PYTHONPATH"] = os.pathsep.join(
            [*(str(p) for p in python_path), str(ROOT / "layers" / "core" / "python"), str(ROOT)]
        )
        log_path = self.tmp_path / f"voice-task-{guild_id}-{len(self.tasks)}.log"
        process: subprocess.Popen[bytes] | WarmProcess
        with log_path.open("wb") as log:
            if self.starter is not None and self.starter.serves(env, extra_python_path=bool(python_path)):
                process = self.starter.start(cwd=ROOT, env=env, log_path=log_path)
            else:
                process = subprocess.Popen(
                    [sys.executable, "-m", "voice_task"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        task = VoiceTaskProcess(process, log_path, guild_id)
        self.tasks.append(task)
        return task

    def launch(self, guild_id: str, *, python_path: Sequence[Path] = (), **extra_env: str) -> VoiceTaskProcess:
        """What the local launcher does: take a launching lease, then start the task with its generation."""
        lease = self.store.acquire_lease(
            guild_id, holder="test-launcher", state=LeaseState.LAUNCHING, ttl_s=self.settings.launching_ttl_s
        )
        assert lease is not None, "the guild already has a live lease"
        return self.start_task(guild_id, generation=lease.generation, python_path=python_path, **extra_env)

    def close(self) -> None:
        for task in self.tasks:
            task.stop()
        if isinstance(self.store, SQLiteStore):
            self.store.close()
        self.check_privacy_codes()

    def check_privacy_codes(self) -> None:
        """After each DAVE transition, the code the bot logged is the one its listeners computed."""
        by_guild: dict[str, list[str]] = {}
        for task in self.tasks:
            by_guild.setdefault(task.guild_id, []).append(task.log)
        problems = [
            f"guild {guild_id}: {problem}"
            for guild_id, logs in by_guild.items()
            for problem in privacy_code_problems(self.emulator, int(guild_id), logs)
        ]
        assert not problems, "; ".join(problems)

    # ------------------------------------------------------------------ observing
    def record(self, guild_id: str) -> GuildRecord:
        return self.store.get_guild(guild_id)

    def wait_record(
        self, guild_id: str, predicate: Callable[[GuildRecord], bool], timeout: float = 15.0, what: str = ""
    ) -> GuildRecord:
        deadline = time.monotonic() + timeout
        record = self.record(guild_id)
        while time.monotonic() < deadline:
            record = self.record(guild_id)
            if predicate(record):
                return record
            time.sleep(0.05)
        logs = "\n".join(task.log[-3000:] for task in self.tasks)
        raise AssertionError(f"timed out waiting for {what or 'the guild record'}: {record!r}\n{logs}")

    def wait_for_audio(self, guild_id: str, *, since: float, timeout: float = 15.0, packets: int = 10) -> float:
        """Monotonic time of the first non-silent packet received after ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.emulator.packets(int(guild_id), since=since)
            if len(got) >= packets:
                return got[0].time
            time.sleep(0.02)
        logs = "\n".join(task.log[-3000:] for task in self.tasks)
        raise AssertionError(f"no audio for guild {guild_id} within {timeout} s\n{logs}")

    def hear(self, guild_id: str, seconds: float, *, settle: float = 0.3) -> AudioAnalysis:
        """Listen for ``seconds`` (after ``settle``) and analyse what arrived."""
        time.sleep(settle)
        start = time.monotonic()
        time.sleep(seconds)
        return analyse(self.emulator.packets(int(guild_id), since=start, until=time.monotonic()))

    def packets(self, guild_id: str, *, since: float, until: float | None = None) -> list[RtpPacket]:
        return self.emulator.packets(int(guild_id), since=since, until=until)


def cards(
    emulator: DiscordEmulator, guild: GuildHandle, since: float = 0.0, *, deletes: bool = False
) -> list[MessageRecord]:
    """The now-playing card's messages in ``guild``'s text channel since ``since``, oldest first: each
    create and edit with an embed, and with ``deletes`` each deletion too."""
    assert guild.text_channel_id is not None
    return [
        m
        for m in emulator.messages(guild.text_channel_id)
        if m.time >= since and (m.embeds or (deletes and m.action == "delete"))
    ]


def env_for(settings: Mapping[str, Any]) -> dict[str, str]:
    return {f"TIMMYBOT_{k.upper()}": str(v) for k, v in settings.items()}
