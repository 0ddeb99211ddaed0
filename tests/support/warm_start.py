"""Voice tasks started warm: each one a fork of a process that has already imported the voice task.

A cold ``python -m voice_task`` spends most of a second of CPU starting the interpreter and
importing discord.py, aiohttp, davey and the core before it does anything, and the end-to-end
tests start well over a hundred of them. ``WarmStarter`` runs one server process per test process
(``python -m tests.support.warm_start``) that imports all of that once and then forks a child per
start. The child becomes what the cold command would have been: the given working directory and
environment, the log file as stdout and stderr, ``/dev/null`` as stdin, ``voice_task.__main__``'s
``main()``, then the interpreter's usual exit (atexit, thread joins, flushes).

What a fork cannot change is what was decided at import, before the child's environment was set.
So the starter serves only starts whose import-time inputs are its own: no extra ``PYTHONPATH``
(the site hooks some tests add) and the same CA in ``SSL_CERT_FILE`` (aiohttp builds its default
TLS context at import; every emulator in a process signs with ``tls.shared_authority()``).
``VoiceStack`` starts anything else cold. The launcher's own subprocess is still tested cold
(``tests/contract/test_launcher_local.py``), and the bench scripts always start cold, since they
measure the start itself.

Protocol, JSON lines: the client writes ``{"id", "cwd", "env", "log"}``; the server answers
``{"id", "pid"}`` (or ``{"id", "error"}``) and, when a child ends, ``{"exit": pid, "code": c}`` with
``c`` as ``Popen.returncode`` gives it (``-N`` for signal N). The server exits at end of input.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from timmybot.launcher.local import CORE_PYTHON
from timmybot.launcher.local import REPO_ROOT as ROOT

_REAP_INTERVAL_S = 0.02


# ---------------------------------------------------------------------------------- client side
class WarmProcess:
    """A forked voice task, with the part of ``subprocess.Popen``'s interface the tests use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._done = threading.Event()

    def _finished(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"voice task pid {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:  # once reaped, the pid may belong to someone else
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmStarter:
    """The client: starts the server lazily, sends it starts, tracks the children it reports. The
    server trusts the CA ``ca_pem`` (the test process's ``tls.shared_authority()``), written to
    ``directory``, and logs there."""

    def __init__(self, directory: Path, ca_pem: bytes) -> None:
        self._ca_pem = ca_pem
        self._ca_file = directory / "ca.pem"
        self._ca_file.write_bytes(self._ca_pem)
        self._log_path = directory / "warm-start.log"
        self._server: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._replies: dict[int, dict[str, Any]] = {}
        self._replied = threading.Condition()
        self._children: dict[int, WarmProcess] = {}
        self._next_id = 0

    def serves(self, env: Mapping[str, str], *, extra_python_path: bool) -> bool:
        """Whether a start with ``env`` would be the same warm as cold (see the module's docstring)."""
        if extra_python_path:
            return False
        ca = env.get("SSL_CERT_FILE", "")
        try:
            return bool(ca) and Path(ca).read_bytes() == self._ca_pem
        except OSError:
            return False

    def start(self, *, cwd: Path, env: Mapping[str, str], log_path: Path) -> WarmProcess:
        with self._lock:
            server = self._ensure_server()
            self._next_id += 1
            request_id = self._next_id
            line = json.dumps({"id": request_id, "cwd": str(cwd), "env": dict(env), "log": str(log_path)})
            assert server.stdin is not None
            server.stdin.write(line.encode() + b"\n")
            server.stdin.flush()
        with self._replied:
            if not self._replied.wait_for(lambda: request_id in self._replies or self._server_gone(), timeout=30):
                raise AssertionError(f"the warm starter did not answer; its log:\n{self._server_log()}")
            reply = self._replies.pop(request_id, None)
        if reply is None or "pid" not in reply:
            raise AssertionError(f"the warm starter could not fork: {reply}; its log:\n{self._server_log()}")
        return self._children[int(reply["pid"])]

    def close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is None:
            return
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)

    def _ensure_server(self) -> subprocess.Popen[bytes]:
        if self._server is not None and self._server.poll() is None:
            return self._server
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMMYBOT_")}
        env["SSL_CERT_FILE"] = str(self._ca_file)
        env["PYTHONPATH"] = os.pathsep.join([str(CORE_PYTHON), str(ROOT)])
        with self._log_path.open("ab") as log:
            self._server = subprocess.Popen(
                [sys.executable, "-m", "tests.support.warm_start"],
                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            )  # fmt: skip
        self._reader = threading.Thread(target=self._read, args=(self._server,), name="warm-start-reader", daemon=True)
        self._reader.start()
        return self._server

    def _read(self, server: subprocess.Popen[bytes]) -> None:
        assert server.stdout is not None
        for raw in server.stdout:
            message = json.loads(raw)
            if "exit" in message:
                child = self._children.get(int(message["exit"]))
                if child is not None:
                    child._finished(int(message["code"]))
                continue
            if "pid" in message:  # registered here, before any exit report for it can be read
                self._children[int(message["pid"])] = WarmProcess(int(message["pid"]))
            with self._replied:
                self._replies[int(message["id"])] = message
                self._replied.notify_all()
        with self._replied:
            self._replied.notify_all()

    def _server_gone(self) -> bool:
        return self._server is None or self._server.poll() is not None

    def _server_log(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:] if self._log_path.exists() else ""


# ---------------------------------------------------------------------------------- server side
def _write(message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _write({"exit": pid, "code": _returncode(status)})


def _fork_refusal() -> str | None:
    """Why forking here would not give what a cold start gives, or None."""
    threads = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["main"]
    if len(threads) != 1 or threading.active_count() != 1:
        return f"the warm process has {len(threads)} threads: a fork would copy their locks, not them"
    if logging.getLogger().handlers:
        return "the warm process configured logging: a child's basicConfig would do nothing"
    return None


def serve() -> dict[str, Any] | None:
    """Import the voice task, then fork a child per request. Returns the request in a child, and
    None in the server once its input ends."""
    import imageio_ffmpeg  # noqa: F401, PLC0415 - what the task imports first thing when it plays

    import voice_task.__main__  # noqa: PLC0415
    import voice_task.bootstrap  # noqa: PLC0415
    import voice_task.task  # noqa: F401, PLC0415

    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], _REAP_INTERVAL_S)
        _reap()
        if not ready:
            continue
        data = os.read(0, 1 << 16)
        if not data:
            return None
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            refusal = _fork_refusal()
            if refusal is not None:
                _write({"id": request["id"], "error": refusal})
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                return dict(request)
            _write({"id": request["id"], "pid": pid})


def become(request: Mapping[str, Any]) -> None:
    """In the child: take the working directory, environment and output a cold start would have."""
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [str(ROOT / "voice_task" / "__main__.py")]


if __name__ == "__main__":
    child_request = serve()
    if child_request is None:
        sys.exit(0)
    become(child_request)
    from voice_task.__main__ import main

    sys.exit(main([]))
