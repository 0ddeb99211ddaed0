"""Local adapter: the voice task as a subprocess (``python -m voice_task``) of this process.

The child gets this process's environment, the launcher's own settings rendered as ``TIMMYBOT_*``
variables (so it opens the same store even when settings were built in code), its guild and
lease generation, and a ``PYTHONPATH`` with ``layers/core/python`` and the repository root. It runs
in its own session (a Ctrl-C in the terminal goes to ``chalice local`` only) and a daemon thread
waits on it, so no child is ever left a zombie.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from timmybot import netguard
from timmybot.config import PREFIX, Settings
from timmybot.store.base import Store

from .base import GENERATION_ENV, GUILD_ENV, Launcher, LaunchFailedError

_log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[5]
CORE_PYTHON = Path(__file__).resolve().parents[2]
PID_PREFIX = "pid:"
_PATH_FIELD = re.compile(r".*_(path|dir|file)$")

Popen = Callable[..., "subprocess.Popen[bytes]"]


def settings_environment(settings: Settings, *, cwd: Path | None = None) -> dict[str, str]:
    """``settings`` as ``TIMMYBOT_*`` variables that ``Settings.from_env`` reads back to equal values.

    Relative paths are made absolute against ``cwd`` (this process's working directory), since
    the child runs from the repository root.
    """
    base = cwd or Path.cwd()
    env: dict[str, str] = {}
    for f in dataclasses.fields(settings):
        value: Any = getattr(settings, f.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ",".join(str(part) for part in value)
        else:
            text = str(value)
        if text and _PATH_FIELD.match(f.name) and not Path(text).is_absolute():
            text = str(base / text)
        env[PREFIX + f.name.upper()] = text
    return env


class LocalLauncher(Launcher):
    """Starts ``settings.voice_task_command`` (default ``python -m voice_task``) per guild."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        command: Sequence[str] | None = None,
        repo_root: Path = REPO_ROOT,
        environ: Mapping[str, str] | None = None,
        popen: Popen = subprocess.Popen,
    ) -> None:
        super().__init__(store, settings)
        self._command = list(command or settings.voice_task_command)
        self._repo_root = repo_root
        self._environ = environ
        self._popen = popen
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._reapers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _start(self, guild_id: str, generation: int) -> str:
        env = self.child_environment(guild_id, generation)
        log_file = self._open_log(guild_id)
        try:
            process = self._popen(
                self._command,
                cwd=str(self._repo_root),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT if log_file is not None else None,
                start_new_session=True,
            )
        except OSError as error:
            if log_file is not None:
                log_file.close()
            _log.warning("could not run the voice task command for guild %s: %s", guild_id, error)
            raise LaunchFailedError() from error
        reaper = threading.Thread(
            target=self._reap, args=(process, guild_id, log_file), name=f"reap-voice-task-{guild_id}", daemon=True
        )
        with self._lock:
            self._children[process.pid] = process
            self._reapers.append(reaper)
        reaper.start()
        return f"{PID_PREFIX}{process.pid}"

    def is_alive(self, holder: str) -> bool | None:
        if not holder.startswith(PID_PREFIX) or not holder[len(PID_PREFIX) :].isdigit():
            return None
        with self._lock:
            process = self._children.get(int(holder[len(PID_PREFIX) :]))
        if process is None:
            return None  # not started by this process: a pid alone could have been reused
        return process.poll() is None

    def child_environment(self, guild_id: str, generation: int) -> dict[str, str]:
        env = dict(os.environ if self._environ is None else self._environ)
        env.update(settings_environment(self._settings))
        # The task may reach what this process's network guard allows (endpoints, test servers).
        allowed = [*self._settings.net_guard_allow, *netguard.allowance_entries()]
        env[netguard.ALLOW_ENV] = ",".join(dict.fromkeys(allowed))
        env[GUILD_ENV] = guild_id
        env[GENERATION_ENV] = str(generation)
        paths = [str(CORE_PYTHON), str(self._repo_root)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def wait_children(self, timeout: float) -> bool:
        """Wait until every child has exited and been reaped (tests, shutdown); False on timeout."""
        with self._lock:
            reapers = list(self._reapers)
        for reaper in reapers:
            reaper.join(timeout)
        return not any(r.is_alive() for r in reapers)

    @property
    def launched(self) -> int:
        """How many children this launcher started."""
        with self._lock:
            return len(self._reapers)

    def _open_log(self, guild_id: str) -> IO[bytes] | None:
        if not self._settings.voice_task_log_dir:
            return None
        directory = Path(self._settings.voice_task_log_dir)
        directory.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^0-9A-Za-z_-]", "_", guild_id)
        return (directory / f"voice_task-{safe}.log").open("ab")

    def _reap(self, process: subprocess.Popen[bytes], guild_id: str, log_file: IO[bytes] | None) -> None:
        try:
            code = process.wait()
        finally:
            if log_file is not None:
                log_file.close()
        level = logging.INFO if code == 0 else logging.WARNING
        _log.log(level, "voice task pid %s for guild %s exited with %s", process.pid, guild_id, code)
