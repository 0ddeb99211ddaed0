"""Voice tasks (and the minimal bot) started warm: each one a fork of a process that has already
imported them.

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

The same server also starts the emulator tests' minimal discord.py bot
(``tests.support.minimal_bot``), which a cold start runs as ``python -m tests.support.minimal_bot`` with
pipes for its stdin, stdout and stderr: ``start_piped`` makes three pipes and hands the child's ends
to the server with the request (``SCM_RIGHTS``), so the forked bot has the very pipes ``Popen`` would
have given it.

Protocol: the server's stdin is a Unix ``SOCK_SEQPACKET`` socket, one JSON request per packet,
``{"id", "main", "cwd", "env"}`` plus ``"log"`` (stdout and stderr to that file, stdin from
``/dev/null``), or three file descriptors passed with the packet (stdin, stdout, stderr). The server
answers on its stdout in JSON lines, ``{"id", "pid"}`` (or ``{"id", "error"}``), and when a child ends
``{"exit": pid, "code": c}`` with ``c`` as ``Popen.returncode`` gives it (``-N`` for signal N). The
server exits when the socket's other end closes.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from timmybot.launcher.local import CORE_PYTHON
from timmybot.launcher.local import REPO_ROOT as ROOT

_REAP_INTERVAL_S = 0.02
_MAX_REQUEST = 1 << 20  # one request packet: the environment is its bulk
#: What each ``main`` is: the script a cold start names as ``sys.argv[0]``, and where its entry point is.
MAINS = {
    "voice_task": (ROOT / "voice_task" / "__main__.py", "voice_task.__main__", "main"),
    "minimal_bot": (ROOT / "tests" / "support" / "minimal_bot.py", "tests.support.minimal_bot", "child_main"),
}


# ---------------------------------------------------------------------------------- client side
class WarmProcess:
    """A forked voice task, with the part of ``subprocess.Popen``'s interface the tests use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._done = threading.Event()
        # The parent's ends of the child's pipes, for a child started with ``start_piped``.
        self.stdin: IO[str] | None = None
        self.stdout: IO[str] | None = None
        self.stderr: IO[str] | None = None

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
        self._control: socket.socket | None = None
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
        """A voice task, as ``python -m voice_task`` with stdout and stderr to ``log_path``."""
        return self._request({"main": "voice_task", "cwd": str(cwd), "env": dict(env), "log": str(log_path)})

    def start_piped(self, *, main: str, cwd: Path, env: Mapping[str, str]) -> WarmProcess:
        """``main`` (one of ``MAINS``) with pipes for its stdin, stdout and stderr, as
        ``Popen(..., stdin=PIPE, stdout=PIPE, stderr=PIPE, text=True)`` gives them."""
        (in_read, in_write), (out_read, out_write), (err_read, err_write) = os.pipe(), os.pipe(), os.pipe()
        try:
            child = self._request({"main": main, "cwd": str(cwd), "env": dict(env)}, (in_read, out_write, err_write))
        except BaseException:
            for fd in (in_write, out_read, err_read):
                os.close(fd)
            raise
        finally:
            for fd in (in_read, out_write, err_write):  # the child has its own copies now
                os.close(fd)
        child.stdin = os.fdopen(in_write, "w", encoding="utf-8")
        child.stdout = os.fdopen(out_read, encoding="utf-8")
        child.stderr = os.fdopen(err_read, encoding="utf-8")
        return child

    def _request(self, request: Mapping[str, Any], fds: Sequence[int] = ()) -> WarmProcess:
        with self._lock:
            control = self._ensure_server()
            self._next_id += 1
            request_id = self._next_id
            socket.send_fds(control, [json.dumps({**request, "id": request_id}).encode()], list(fds))
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
            control, self._control = self._control, None
        if server is None:
            return
        if control is not None:
            control.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)

    def _ensure_server(self) -> socket.socket:
        if self._server is not None and self._control is not None and self._server.poll() is None:
            return self._control
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMMYBOT_")}
        env["SSL_CERT_FILE"] = str(self._ca_file)
        env["PYTHONPATH"] = os.pathsep.join([str(CORE_PYTHON), str(ROOT)])
        control, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with self._log_path.open("ab") as log, server_end:
            self._server = subprocess.Popen(
                [sys.executable, "-m", "tests.support.warm_start"],
                cwd=ROOT, env=env, stdin=server_end.fileno(), stdout=subprocess.PIPE, stderr=log,
            )  # fmt: skip
        self._control = control
        self._reader = threading.Thread(target=self._read, args=(self._server,), name="warm-start-reader", daemon=True)
        self._reader.start()
        return control

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
    """Import the voice task and the minimal bot, then fork a child per request. Returns the request
    (with the file descriptors that came with it as ``"fds"``) in a child, and None in the server
    once the client has closed its end."""
    import imageio_ffmpeg  # noqa: F401, PLC0415 - what the task imports first thing when it plays

    import tests.support.minimal_bot  # noqa: F401, PLC0415
    import voice_task.__main__  # noqa: PLC0415
    import voice_task.bootstrap  # noqa: PLC0415
    import voice_task.task  # noqa: F401, PLC0415

    control = socket.socket(fileno=0)
    while True:
        ready, _, _ = select.select([control], [], [], _REAP_INTERVAL_S)
        _reap()
        if not ready:
            continue
        data, fds, _, _ = socket.recv_fds(control, _MAX_REQUEST, 3)
        if not data:
            return None
        request = json.loads(data)
        refusal = _fork_refusal()
        if refusal is None and request.get("main") not in MAINS:
            refusal = f"no such main: {request.get('main')!r}"
        if refusal is None and len(fds) != (0 if "log" in request else 3):
            refusal = f"{len(fds)} file descriptors came with the request"
        if refusal is not None:
            for fd in fds:
                os.close(fd)
            _write({"id": request["id"], "error": refusal})
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            control.detach()  # become() replaces fd 0: this socket object must never close the new one
            return {**request, "fds": fds}
        for fd in fds:  # the child's now: the client sees end of file when the child closes them
            os.close(fd)
        _write({"id": request["id"], "pid": pid})


def become(request: Mapping[str, Any]) -> None:
    """In the child: take the working directory, environment and standard streams a cold start
    would have had."""
    fds: list[int] = list(request["fds"])
    if fds:
        streams = fds
    else:
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        streams = [os.open(os.devnull, os.O_RDONLY), log, log]
    for target, fd in enumerate(streams):
        os.dup2(fd, target)
    for fd in set(streams):
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if os.environ.get("PYTHONUNBUFFERED"):  # what -u would have set up at start
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(write_through=True)
    sys.argv = [str(MAINS[request["main"]][0])]


def run(request: Mapping[str, Any]) -> int:
    """The child's entry point: ``main``'s, as its cold start would call it."""
    _, module_name, function = MAINS[request["main"]]
    code: int = getattr(importlib.import_module(module_name), function)([])
    return code


if __name__ == "__main__":
    child_request = serve()
    if child_request is None:
        sys.exit(0)
    become(child_request)
    sys.exit(run(child_request))
