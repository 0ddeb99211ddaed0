"""Running the loopback fakes' HTTP servers: one way, with a short shutdown poll.

``LoopbackHttp`` is the server every fake of an HTTP API uses: a free port on 127.0.0.1, its
answers by method, optional TLS, and the network guard's allowance while it runs.

``socketserver``'s ``serve_forever`` polls for shutdown every 0.5 s by default, so each fake's
``stop()`` used to cost up to half a second of teardown in every test that started one. The fakes
serve in a daemon thread through ``serve_in_thread``; their ``stop()`` then returns within one poll.
"""

from __future__ import annotations

import json
import socketserver
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from timmybot import netguard

POLL_INTERVAL_S = 0.02


def serve_in_thread(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """Start ``server.serve_forever`` in a daemon thread named ``name``; returns the thread."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S}, name=name, daemon=True
    )
    thread.start()
    return thread


Answer = Callable[[BaseHTTPRequestHandler], None]


class LoopbackHttp:
    """A fake's HTTP server on 127.0.0.1, on a free port: ``get`` and ``post`` answer the requests
    of their method (the others get 501), TLS with ``tls``. While it runs, the network guard lets
    connections to it through; ``stop`` withdraws that again.

    Every loopback fake of an HTTP API serves through this, so each one is only its answers."""

    def __init__(
        self, name: str, *, get: Answer | None = None, post: Answer | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        answers = {"do_GET": get, "do_POST": post}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

        for method, answer in answers.items():
            if answer is not None:
                setattr(Handler, method, lambda handler, answer=answer: answer(handler))
        self._name = name
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self.allowance = f"127.0.0.1:{self.port}"
        self.origin = f"{'https' if tls is not None else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> LoopbackHttp:
        serve_in_thread(self._server, self._name)
        netguard.configure(allow=[self.allowance])
        return self

    def stop(self) -> None:
        netguard.revoke(self.allowance)
        self._server.shutdown()
        self._server.server_close()


def send_json(
    handler: BaseHTTPRequestHandler, status: int, body: Any, *, content_type: str = "application/json"
) -> None:
    """Answer ``handler`` with ``body`` as JSON (UTF-8); a client that stopped waiting is no error."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)
    except OSError:
        return
