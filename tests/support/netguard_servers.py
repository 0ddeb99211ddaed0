"""Loopback servers for the network guard's tests: a canary that must never be reached, and a
small route server (plain or TLS) that answers redirects, playlists and media from a table.

``CanaryServer`` counts every TCP connection it accepts (before any HTTP parsing), so a TLS
handshake or a CONNECT tunnel that reached it counts too. It is never in the guard's allowance.
``RouteServer`` registers its exact port with the guard while it runs (as ``MediaServer`` does).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.loopback import serve_in_thread
from timmybot import netguard

Route = tuple[int, dict[str, str], bytes]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None,
                 on_connect: Callable[[], None]) -> None:  # fmt: skip
        super().__init__(("127.0.0.1", 0), handler)
        self._tls = tls
        self._on_connect = on_connect

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        self._on_connect()
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Failed handshakes are what several tests expect: keep them quiet."""


class _Base:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self.connections = 0
        self.paths: list[str] = []
        self._tls = tls
        self._server: _Server | None = None

    def _counted(self) -> None:
        with self._lock:
            self.connections += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Any:
        self._server = _Server(self._handler(), self._tls, self._counted)
        serve_in_thread(self._server, type(self).__name__)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first"
        return int(self._server.server_address[1])

    def url(self, path: str, *, scheme: str | None = None, host: str = "127.0.0.1") -> str:
        chosen = scheme or ("https" if self._tls is not None else "http")
        return f"{chosen}://{host}:{self.port}{path}"


class CanaryServer(_Base):
    """Answers anything with 200 "canary", and counts every connection: tests assert it stays at 0."""

    def __enter__(self) -> CanaryServer:
        return self.start()  # type: ignore[no-any-return]

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                with owner._lock:
                    owner.paths.append(self.path)
                body = b"canary: instance credentials would be here"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

        return Handler


class RouteServer(_Base):
    """Serves ``routes[path] = (status, headers, body)``; 404 otherwise. Allowed by the guard while running."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(tls)
        self.routes: dict[str, Route] = {}
        self._allowance = ""

    def __enter__(self) -> RouteServer:
        self.start()
        self._allowance = f"127.0.0.1:{self.port}"
        netguard.configure(allow=[self._allowance])
        return self

    def __exit__(self, *exc: object) -> None:
        netguard.revoke(self._allowance)
        self.stop()

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = (status, {"Location": location}, b"")
        return self.url(path)

    def file(self, path: str, source: Path, content_type: str = "audio/webm") -> str:
        self.routes[path] = (200, {"Content-Type": content_type}, source.read_bytes())
        return self.url(path)

    def text(self, path: str, body: str, content_type: str) -> str:
        self.routes[path] = (200, {"Content-Type": content_type}, body.encode())
        return self.url(path)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, *, head: bool) -> None:
                with owner._lock:
                    owner.paths.append(self.path)
                status, headers, body = owner.routes.get(self.path.split("?", 1)[0], (404, {}, b"not here"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(head=False)

            def do_HEAD(self) -> None:
                self._answer(head=True)

        return Handler
