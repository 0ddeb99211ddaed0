"""The guard itself: a small forward proxy on 127.0.0.1 that checks every address it connects to.

- ``CONNECT host:443`` (https, and FFmpeg's ``httpproxy`` tunnels): the guard resolves ``host``
  itself, checks every address it got (``addresses.refusal_reason``) and connects to one of those
  addresses, never resolving twice, so a DNS answer cannot change between check and connect.
- Absolute-form requests (``GET http://host:port/...``, plain http) and any port other than 443 are
  refused, except to an explicit allowance (``Allowances``): the operator's endpoints, the operator
  secret's PO-token provider, and, in tests and the demo only, named loopback ``host:port`` pairs.
- A refusal is ``403`` with one short sentence, logged once with the host escaped (``%r``) and never
  a path or query. At most ``max_tunnels`` connections are served at once (``503`` beyond), and each
  has a head timeout and an idle timeout, so the guard cannot be used to tie the process up.

One listening socket and one daemon accept thread per process; a thread per tunnel. A frozen and
thawed Lambda keeps its listening socket, so the guard simply carries on.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import selectors
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .addresses import IPAddress, parse_address, refusal_reason

_log = logging.getLogger(__name__)

HTTPS_PORT = 443
MAX_HEAD_BYTES = 16 * 1024
HEAD_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
#: A tunnel with no byte either way for this long is closed (FFmpeg reconnects with a Range request).
IDLE_TIMEOUT_S = 300.0
DEFAULT_MAX_TUNNELS = 64
_RELAY_CHUNK = 64 * 1024
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "socks5": 1080, "socks5h": 1080}
_HOP_HEADERS = frozenset({"proxy-connection", "proxy-authorization", "connection", "keep-alive"})


class Refused(Exception):
    """The guard will not connect; ``status`` and the short reason are what the client reads."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _normal_ip(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def split_host_port(text: str, *, default_port: int | None = None) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (or a URL) → (lower-cased host without brackets, port)."""
    value = text.strip()
    if "://" in value:
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        host = parts.hostname or ""
        port = port if port is not None else _DEFAULT_PORTS.get(parts.scheme.lower())
        if not host or port is None:
            raise ValueError(f"expected scheme://host[:port], got {value!r}")
        return host.lower(), port
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            host, port_text = value, ""
    if not port_text:
        if default_port is None:
            raise ValueError(f"expected host:port, got {value!r}")
        return host.lower(), default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {value!r}")
    if not host:
        raise ValueError(f"expected host:port, got {value!r}")
    return host.lower(), int(port_text)


@dataclass
class Allowances:
    """Destinations reachable whatever their address, on their exact port, plain http included.

    A name (``bgutil:4416``) matches what the client asked for; an IP literal (``127.0.0.1:8080``)
    matches the address the guard resolved and connects to.
    """

    names: set[tuple[str, int]] = field(default_factory=set)
    addresses: set[tuple[IPAddress, int]] = field(default_factory=set)

    def add(self, entry: str) -> None:
        """Add ``host:port``, ``[v6]:port`` or a URL (its scheme's default port when it names none)."""
        host, port = split_host_port(entry)
        ip = parse_address(host)
        if ip is None:
            self.names.add((host, port))
        else:
            self.addresses.add((_normal_ip(ip), port))

    def update(self, entries: Iterable[str]) -> None:
        for entry in entries:
            self.add(entry)

    def merged(self, other: Allowances) -> Allowances:
        return Allowances(self.names | other.names, self.addresses | other.addresses)

    def names_host(self, host: str, port: int) -> bool:
        return (host.lower(), port) in self.names

    def has_address(self, ip: IPAddress, port: int) -> bool:
        return (_normal_ip(ip), port) in self.addresses


def parse_allowances(text: str) -> Allowances:
    """``"127.0.0.1:4567, [::1]:80, http://fake:9000"`` → Allowances (bad entries raise ValueError)."""
    allowances = Allowances()
    allowances.update(part for part in text.split(",") if part.strip())
    return allowances


def _resolve(host: str, port: int) -> list[IPAddress]:
    ip = parse_address(host)
    if ip is not None:
        return [ip]
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise Refused("the name does not resolve", 502) from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in answers:
        address = parse_address(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    if not found:
        raise Refused("the name does not resolve", 502)
    return found


def check_destination(host: str, port: int, *, tunnel: bool, allowances: Allowances) -> list[IPAddress]:
    """The addresses the guard may connect to for ``host:port``, every one checked; else ``Refused``.

    ``tunnel`` is a CONNECT (TLS inside); anything else is plain http. A destination named in
    ``allowances`` passes as it is; otherwise every resolved address must be public (or an allowed
    address on this port) and a port other than 443 needs an allowance, as plain http always does.
    """
    if not host or len(host) > 253 or (parse_address(host) is None and not _HOST_RE.fullmatch(host)):
        raise Refused("that is not a host name", 400)
    named = allowances.names_host(host, port)
    addresses = _resolve(host, port)
    if named:
        return addresses
    for ip in addresses:
        if allowances.has_address(ip, port):
            continue
        if not tunnel:
            raise Refused("plain http is not allowed")
        if port != HTTPS_PORT:
            raise Refused(f"port {port} is not allowed")
        reason = refusal_reason(ip)
        if reason is not None:
            raise Refused(f"{host} leads to {reason}")
    return addresses


def _connect(addresses: list[IPAddress], port: int) -> socket.socket:
    last: OSError | None = None
    for ip in addresses:
        family = socket.AF_INET6 if isinstance(ip, ipaddress.IPv6Address) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect((str(ip), port))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise Refused(f"the server did not answer ({type(last).__name__})", 502)


def _answer(client: socket.socket, status: int, reason: str) -> None:
    titles = {400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed", 502: "Bad Gateway", 503: "Busy"}
    body = f"TimmyBot network guard: {reason}\n".encode("ascii", "replace")
    head = (
        f"HTTP/1.1 {status} {titles.get(status, 'Refused')}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    with contextlib.suppress(OSError):
        client.sendall(head + body)


def _read_head(client: socket.socket) -> tuple[bytes, bytes]:
    """The request head (through the blank line) and whatever followed it."""
    client.settimeout(HEAD_TIMEOUT_S)
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD_BYTES:
            raise Refused("request head too large", 400)
        try:
            chunk = client.recv(4096)
        except OSError:
            raise Refused("no request in time", 400) from None
        if not chunk:
            raise Refused("no request", 400)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _relay(a: socket.socket, b: socket.socket, idle_s: float) -> None:
    """Copy bytes both ways until one side closes or neither speaks for ``idle_s``."""
    a.settimeout(idle_s)
    b.settimeout(idle_s)
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while True:
            events = selector.select(idle_s)
            if not events:
                return
            for key, _mask in events:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                target: socket.socket = key.data
                try:
                    chunk = source.recv(_RELAY_CHUNK)
                    if not chunk:
                        return
                    target.sendall(chunk)
                except OSError:
                    return


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]


def _parse_head(head: bytes) -> _Request:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        raise Refused("unreadable request", 400) from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise Refused("not an HTTP/1 request", 400)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if "\n" in line or "\0" in line:
            raise Refused("malformed header", 400)
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise Refused("malformed header", 400)
        headers.append((name, value.strip()))
    return _Request(parts[0].upper(), parts[1], parts[2], headers)


class NetGuard:
    """The listening proxy. ``allowances()`` is asked afresh for every connection."""

    def __init__(self, allowances: Allowances | None = None, *, max_tunnels: int = DEFAULT_MAX_TUNNELS,
                 idle_timeout_s: float = IDLE_TIMEOUT_S,
                 allowance_source: Callable[[], Allowances] | None = None) -> None:  # fmt: skip
        self._static = allowances or Allowances()
        self._source = allowance_source
        self._slots = threading.BoundedSemaphore(max_tunnels)
        self._idle_s = idle_timeout_s
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="timmybot-netguard", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()

    def allowances(self) -> Allowances:
        if self._source is None:
            return self._static
        return self._static.merged(self._source())

    # -- serving -----------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _peer = self._listener.accept()
            except OSError:
                if self._closed:
                    return
                continue
            if not self._slots.acquire(blocking=False):
                _log.warning("net guard busy: refused a connection over the tunnel limit")
                client.settimeout(1.0)
                _answer(client, 503, "too many connections at once")
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), name="timmybot-netguard-tunnel", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        host, port = "", 0
        try:
            head, rest = _read_head(client)
            request = _parse_head(head)
            if request.method == "CONNECT":
                host, port = split_host_port(request.target)
                addresses = check_destination(host, port, tunnel=True, allowances=self.allowances())
                upstream = _connect(addresses, port)
                try:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                except OSError:
                    upstream.close()
                    raise
            else:
                host, port, origin_form = _plain_destination(request)
                addresses = check_destination(host, port, tunnel=False, allowances=self.allowances())
                upstream = _connect(addresses, port)
                rest = _origin_request(request, origin_form) + rest
            with upstream:
                if rest:
                    upstream.sendall(rest)
                _relay(client, upstream, self._idle_s)
        except Refused as refusal:
            _log.warning("net guard refused %r port %s: %s", host[:255], port, refusal.reason)
            _answer(client, refusal.status, refusal.reason)
        except ValueError:
            _log.warning("net guard refused a malformed destination")
            _answer(client, 400, "malformed destination")
        except OSError as exc:
            _log.debug("net guard tunnel to %r port %s ended: %s", host[:255], port, type(exc).__name__)
        finally:
            with contextlib.suppress(OSError):
                client.close()
            self._slots.release()


def _plain_destination(request: _Request) -> tuple[str, int, str]:
    """Host, port and origin-form target of an absolute-form (plain http) request."""
    parts = urlsplit(request.target)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise Refused("only CONNECT and http:// requests are proxied", 405)
    try:
        port = parts.port or 80
    except ValueError:
        raise Refused("bad port", 400) from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname.lower(), port, path


def _origin_request(request: _Request, origin_form: str) -> bytes:
    """The request head as the origin server reads it: origin form, no proxy headers, one request."""
    lines = [f"{request.method} {origin_form} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers if name.lower() not in _HOP_HEADERS]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
