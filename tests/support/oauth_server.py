"""Shared plumbing of the loopback OAuth fakes: secrets they issue, and a Flask app on 127.0.0.1.

Every token and code a fake issues carries a recognisable marker (``tbfake``) and is registered in
``ISSUED``; the session-wide log guard (tests/support/log_guard.py) fails the run if any captured
log message contains one. User codes are not secret (Discord shows them) and carry no marker.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.support.loopback import serve_in_thread
from timmybot import netguard

# Authlib refuses plain http unless told this is a test; the fakes only listen on loopback.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
# Authlib logs issued tokens at DEBUG ("Issue token ..."): that is the fake server's own log, not
# ours, and the guard must not count it. Our code is checked at every level.
logging.getLogger("authlib").setLevel(logging.INFO)

MARKER = "tbfake"
SECRET_PATTERN = re.compile(MARKER + r"[a-z]*_[0-9a-f]{24,}")
ISSUED: set[str] = set()
_issued_lock = threading.Lock()


def issue(kind: str) -> str:
    """A fresh secret value such as ``tbfakeaccess_3f2a...`` registered for the log guard."""
    value = f"{MARKER}{kind}_{secrets.token_hex(16)}"
    with _issued_lock:
        ISSUED.add(value)
    return value


class _QuietHandler(WSGIRequestHandler):
    """No access log: request lines carry codes in query strings."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Quiet."""


class LoopbackServer:
    """Serve a WSGI app on 127.0.0.1 (a free port) in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> LoopbackServer:
        self._thread = serve_in_thread(self._server, "oauth-fake")
        netguard.configure(allow=[self.base_url])  # the network guard lets this fake through
        return self

    def stop(self) -> None:
        netguard.revoke(self.base_url)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class LoopbackFake:
    """A fake provider served by ``LoopbackServer``: subclasses build ``self.app`` and call this."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._server = LoopbackServer(app)

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    @property
    def base_url(self) -> str:
        return self._server.base_url
