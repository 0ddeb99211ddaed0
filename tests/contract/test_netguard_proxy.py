"""The network guard against real clients on loopback: urllib, requests, yt-dlp (issue 15, finding 1).

A canary server outside the allowance counts every connection it accepts; it must stay at zero.
"""

from __future__ import annotations

import socket
import time
import urllib.error
from collections.abc import Iterator

import pytest
import requests
import yt_dlp
from yt_dlp.utils import DownloadError

from tests.support.media import MediaServer, tone_file
from tests.support.netguard_servers import CanaryServer, RouteServer
from timmybot import netguard
from timmybot.netguard.proxy import Allowances, NetGuard
from timmybot.sources import SourceSettings, build_ytdl_options


@pytest.fixture
def canary() -> Iterator[CanaryServer]:
    with CanaryServer() as server:
        yield server


def _raw(guard_port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", guard_port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(4096)


def _guard_port() -> int:
    return int(netguard.guard_proxy_url().rsplit(":", 1)[1])


def test_plain_http_to_a_server_outside_the_allowance_is_refused(canary: CanaryServer) -> None:
    """Before the guard, nothing stood between urllib and any address."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        netguard.guarded_opener().open(canary.url("/latest/meta-data/"), timeout=5)
    assert refused.value.code == 403
    assert canary.connections == 0


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1", "[::ffff:127.0.0.1]"])
def test_connect_to_a_name_or_form_that_resolves_to_loopback_is_refused(canary: CanaryServer, host: str) -> None:
    """A DNS name that resolves to the canary (``localhost``) and other spellings of loopback."""
    answer = _raw(_guard_port(), f"CONNECT {host}:{canary.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403")
    answer = _raw(_guard_port(), f"CONNECT {host}:443 HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith((b"HTTP/1.1 403", b"HTTP/1.1 502"))
    assert canary.connections == 0


def test_requests_sessions_go_through_the_guard_whatever_the_environment(
    canary: CanaryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    session = netguard.guard_session()
    answer = session.get(canary.url("/", host="localhost"), timeout=5)
    assert answer.status_code == 403
    assert "network guard" in answer.text
    with pytest.raises(requests.exceptions.ProxyError):
        session.get(f"https://localhost:{canary.port}/", timeout=5)
    assert canary.connections == 0


def test_urllib_opener_ignores_no_proxy_and_refuses_other_schemes(
    canary: CanaryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("no_proxy", "*")
    opener = netguard.guarded_opener()
    with pytest.raises(urllib.error.HTTPError):
        opener.open(canary.url("/"), timeout=5)
    with pytest.raises(urllib.error.URLError, match="unknown url type"):
        opener.open("file:///etc/hostname", timeout=5)
    assert canary.connections == 0


def test_a_redirect_from_an_allowed_server_to_the_canary_is_refused(canary: CanaryServer) -> None:
    with RouteServer() as site:
        start = site.redirect("/go", canary.url("/latest/meta-data/"))
        with pytest.raises(urllib.error.HTTPError) as refused:
            netguard.guarded_opener().open(start, timeout=5)
    assert refused.value.code == 403
    assert site.paths == ["/go"]
    assert canary.connections == 0


def test_allowances_come_from_the_environment_and_are_exact(
    canary: CanaryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(netguard.ALLOW_ENV, f"127.0.0.1:{canary.port + 1 if canary.port < 65535 else 1}")
    with pytest.raises(urllib.error.HTTPError):
        netguard.guarded_opener().open(canary.url("/"), timeout=5)
    assert canary.connections == 0
    monkeypatch.setenv(netguard.ALLOW_ENV, f"127.0.0.1:{canary.port}")
    assert netguard.guarded_opener().open(canary.url("/"), timeout=5).status == 200
    assert canary.connections == 1


def test_ytdlp_with_our_options_does_not_follow_a_redirect_to_the_canary(canary: CanaryServer) -> None:
    """yt-dlp followed redirects from an allowed host to any address (the generic extractor stands in
    for a site, in this test only, as in test_sources_ytdlp_loopback.py)."""
    with MediaServer() as media, RouteServer() as site:
        media.add("tone.webm", tone_file(440, 1, "webm"))
        targets = [
            site.redirect("/plain", canary.url("/a.webm")),
            site.redirect("/name", canary.url("/a.webm", host="localhost")),
            site.redirect("/imds", "http://169.254.169.254/latest/meta-data/"),
        ]
        options = {**build_ytdl_options(SourceSettings(), purpose="stream"), "allowed_extractors": ["generic"]}
        options["socket_timeout"] = 5
        for target in targets:
            with yt_dlp.YoutubeDL(options) as ydl, pytest.raises(DownloadError):
                ydl.extract_info(target, download=False)
        # The allowed server itself still works through the guard.
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(media.url_for("tone.webm"), download=False)
        assert info is not None and info["url"] == media.url_for("tone.webm")
    assert canary.connections == 0


def test_the_guard_bounds_its_tunnels_and_times_out_silent_clients(canary: CanaryServer) -> None:
    with RouteServer() as site:
        site.text("/", "hello", "text/plain")
        allowed = Allowances()
        allowed.add(f"127.0.0.1:{site.port}")
        guard = NetGuard(allowed, max_tunnels=1, idle_timeout_s=5)
        try:
            holder = socket.create_connection(("127.0.0.1", guard.port), timeout=5)
            holder.sendall(f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n".encode())
            assert holder.recv(100).startswith(b"HTTP/1.1 200")
            # The one slot is taken: the next client is told so at once.
            assert _raw(guard.port, b"GET http://x/ HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
            holder.close()
            time.sleep(0.3)
            answer = _raw(guard.port, f"GET http://127.0.0.1:{site.port}/ HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200")
        finally:
            guard.close()
    assert canary.connections == 0


@pytest.mark.parametrize(
    "request_line",
    [
        b"CONNECT bad\x00host:443 HTTP/1.1\r\n\r\n",
        b"CONNECT example.com:25 HTTP/1.1\r\n\r\n",
        b"GET /relative HTTP/1.1\r\n\r\n",
        b"GET ftp://example.com/ HTTP/1.1\r\n\r\n",
        b"CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n",
        b"CONNECT [fd00:ec2::254]:443 HTTP/1.1\r\n\r\n",
        b"CONNECT [::ffff:169.254.170.2]:443 HTTP/1.1\r\n\r\n",
        b"GARBAGE\r\n\r\n",
    ],
)
def test_malformed_or_forbidden_requests_get_a_4xx(request_line: bytes) -> None:
    answer = _raw(_guard_port(), request_line)
    assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.1 502"))
    assert b"network guard" in answer


def test_refusals_are_logged_once_with_the_host_escaped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="timmybot.netguard.proxy")
    _raw(_guard_port(), b"CONNECT evil\x1b[31m.example:8443 HTTP/1.1\r\n\r\n")
    deadline = time.monotonic() + 2
    while not caplog.records and time.monotonic() < deadline:
        time.sleep(0.02)
    messages = [r.getMessage() for r in caplog.records]
    assert any("refused" in m for m in messages)
    assert any("\\x1b" in m for m in messages)  # escaped, never the raw control character
    assert all("\x1b" not in m and "\n" not in m for m in messages)
