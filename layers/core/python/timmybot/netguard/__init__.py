"""One network guard for every outbound request whose destination can come from outside.

Every process (api, worker, voice task) starts, on first use, one local forward proxy on
``127.0.0.1:<ephemeral>`` (``timmybot.netguard.proxy``). yt-dlp (its ``proxy`` option), urllib
(``guarded_opener``), requests/spotipy (``guard_session``) and FFmpeg (``-http_proxy``) go through
it. It resolves each name itself, refuses loopback, private, link-local, CGNAT, multicast, reserved
and unique-local addresses (and their IPv6 forms; ``timmybot.netguard.addresses``), refuses plain
http and every port but 443, and connects to the very address it checked.

Allowances, explicit and narrow (``configure``):

- the operator's endpoints (``Settings``: the Google, Spotify, YouTube and LRCLIB API URLs) and the
  operator secret's PO-token provider and upstream proxy: configuration, not user input;
- ``TIMMYBOT_NET_GUARD_ALLOW`` (``Settings.net_guard_allow``): named loopback ``host:port`` pairs
  for tests and the offline demo only. Re-read whenever it changes, so a voice task subprocess and
  a test's ``monkeypatch.setenv`` both work.

Nothing is imported at module level beyond the stdlib's ``os`` and ``threading``: the interactions
fast path may import this package and pays nothing until a guarded call is made.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import urllib.request

    from timmybot.config import Settings

    from .proxy import Allowances, NetGuard

ALLOW_ENV = "TIMMYBOT_NET_GUARD_ALLOW"

_lock = threading.Lock()
_guard: NetGuard | None = None
_guard_pid: int | None = None
_configured: list[str] = []
_env_cache: tuple[str, Allowances] | None = None


def _current_allowances() -> Allowances:
    """What ``configure`` added plus what ``TIMMYBOT_NET_GUARD_ALLOW`` names right now."""
    from .proxy import Allowances, parse_allowances  # noqa: PLC0415 - lazy: import-light package

    global _env_cache  # noqa: PLW0603 - one cache per process
    raw = os.environ.get(ALLOW_ENV, "")
    cached = _env_cache
    if cached is None or cached[0] != raw:
        try:
            from_env = parse_allowances(raw)
        except ValueError:
            from_env = Allowances()
        cached = _env_cache = (raw, from_env)
    with _lock:
        entries = list(_configured)
    allowances = Allowances()
    for entry in entries:
        try:
            allowances.add(entry)
        except ValueError:
            _log().warning("net guard: ignored a malformed allowance")
    return allowances.merged(cached[1])


def _log() -> Any:
    import logging  # noqa: PLC0415

    return logging.getLogger(__name__)


def guard_proxy_url() -> str:
    """``http://127.0.0.1:<port>`` of this process's guard; starts it on the first call."""
    global _guard, _guard_pid  # noqa: PLW0603 - one guard per process
    with _lock:
        if _guard is None or not _guard.alive or _guard_pid != os.getpid():
            from .proxy import NetGuard  # noqa: PLC0415

            _guard = NetGuard(allowance_source=_current_allowances)
            _guard_pid = os.getpid()
        return _guard.url


def configure(*, allow: Iterable[str] = (), endpoints: Iterable[str] = ()) -> None:
    """Add allowances: ``allow`` takes ``host:port`` pairs, ``endpoints`` takes URLs (default ports by scheme).

    Entries are kept as given and parsed when the guard checks a connection (so configuring costs
    the api's cold start nothing); a malformed one is logged and ignored there, and
    ``Settings.validate`` names a malformed ``net_guard_allow`` at start. ``revoke`` and ``reset``
    withdraw them.
    """
    entries = [entry.strip() for entry in allow if entry.strip()]
    entries += [url if "://" in url else f"https://{url}" for url in endpoints if url]
    with _lock:
        for entry in entries:
            if entry not in _configured:
                _configured.append(entry)


def configure_from_settings(settings: Settings) -> None:
    """Allow the operator-configured endpoints and ``net_guard_allow`` of ``settings``."""
    configure(
        allow=settings.net_guard_allow,
        endpoints=(
            settings.google_device_url,
            settings.google_token_url,
            settings.google_revoke_url,
            settings.spotify_token_url,
            settings.spotify_api_url,
            settings.spotify_link_url,
            settings.youtube_api_url,
            settings.lyrics_api_url,
            *((settings.suggest_url,) if settings.suggest_source != "off" else ()),
        ),
    )


def configure_operator(proxy: str | None, po_token_urls: Iterable[str] = ()) -> None:
    """Allow the operator secret's upstream proxy and PO-token provider (``sources.operator``)."""
    endpoints = [url for url in po_token_urls if "://" in url]
    if proxy:
        endpoints.append(proxy)
    configure(endpoints=endpoints)


def revoke(*entries: str) -> None:
    """Withdraw ``host:port`` allowances ``configure(allow=...)`` added (a test server that stopped)."""
    gone = {entry.strip() for entry in entries}
    with _lock:
        _configured[:] = [entry for entry in _configured if entry not in gone]


class StreamUrlRefused(ValueError):
    """A stream URL FFmpeg must not open; the message is a short reason (no URL in it)."""


def check_stream_url(url: str) -> str:
    """``url`` when FFmpeg may open it: https (or http to an allowance), no control characters,
    no user info, and no IP literal the address policy refuses unless it is an allowance.

    The guard checks every connection anyway; this refuses early, with a reason, what can only be
    an attack (a stream URL that names ``169.254.169.254`` or carries CR/LF into FFmpeg's request).
    """
    from urllib.parse import urlsplit  # noqa: PLC0415

    from .addresses import parse_address, refusal_reason  # noqa: PLC0415

    if not url or any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise StreamUrlRefused("the stream URL has control characters or spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise StreamUrlRefused("the stream URL is malformed") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None:
        raise StreamUrlRefused("the stream URL has no plain host")
    port = port if port is not None else (443 if scheme == "https" else 80)
    allowed = _current_allowances()
    ip = parse_address(host)
    listed = allowed.names_host(host, port) or (ip is not None and allowed.has_address(ip, port))
    if scheme != "https" and not (scheme == "http" and listed):
        raise StreamUrlRefused("the stream URL is not https")
    if ip is not None and not listed:
        reason = refusal_reason(ip)
        if reason is not None:
            raise StreamUrlRefused(f"the stream URL names {reason}")
    return url


def ca_bundle() -> str | None:
    """The CA bundle FFmpeg verifies https with: ``SSL_CERT_FILE``, the system's, else certifi's."""
    candidates = [
        os.environ.get("SSL_CERT_FILE", ""),
        "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
        "/etc/pki/tls/certs/ca-bundle.crt",  # Amazon Linux, Fedora
        "/etc/ssl/cert.pem",  # macOS, BSDs
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return candidate
    try:
        import certifi  # noqa: PLC0415 - only when the system has no bundle
    except ImportError:
        return None
    return str(certifi.where())


def reset() -> None:
    """Forget every allowance ``configure`` added (tests). The listening guard stays."""
    with _lock:
        _configured.clear()


def allowance_entries() -> list[str]:
    """Every allowance in force as text (configured, then the environment's): for a child process's
    ``TIMMYBOT_NET_GUARD_ALLOW``, so a voice task started by this process reaches what this one may."""
    with _lock:
        entries = list(_configured)
    entries += [part.strip() for part in os.environ.get(ALLOW_ENV, "").split(",") if part.strip()]
    return list(dict.fromkeys(entries))


def allowances() -> Allowances:
    """The allowances in force now (configured plus the environment's)."""
    return _current_allowances()


def guarded_opener(*handlers: Any) -> urllib.request.OpenerDirector:
    """A urllib opener for http and https only, every request through the guard.

    ``handlers`` are added as ``urllib.request.build_opener`` adds them (a subclass of a default
    handler replaces it, e.g. a redirect handler that follows nothing). ``no_proxy`` in the
    environment is ignored, and file:, ftp: and data: URLs are refused.
    """
    import urllib.request  # noqa: PLC0415 - pulls in ssl and email: only when a call is made

    from .proxy import split_host_port  # noqa: PLC0415

    host, port = split_host_port(guard_proxy_url())

    class _ToGuard(urllib.request.BaseHandler):
        handler_order = 100  # before every scheme handler, as ProxyHandler does

        def http_open(self, req: urllib.request.Request) -> None:
            req.set_proxy(f"{host}:{port}", "http")

        https_open = http_open

    opener = urllib.request.OpenerDirector()
    defaults: list[type[urllib.request.BaseHandler]] = [
        urllib.request.UnknownHandler,
        urllib.request.HTTPHandler,
        urllib.request.HTTPSHandler,
        urllib.request.HTTPDefaultErrorHandler,
        urllib.request.HTTPRedirectHandler,
        urllib.request.HTTPErrorProcessor,
    ]
    given = [h if isinstance(h, urllib.request.BaseHandler) else h() for h in handlers]
    for default in defaults:
        if not any(isinstance(h, default) for h in given):
            opener.add_handler(default())
    opener.add_handler(_ToGuard())
    for handler in given:
        opener.add_handler(handler)
    return opener


def guard_session(session: Any = None) -> Any:
    """A ``requests.Session`` (``session``, or a new one) whose every request goes through the guard.

    ``trust_env`` is off, so no ``*_proxy``/``no_proxy`` variable or ``.netrc`` can steer it around.
    """
    if session is None:
        import requests  # noqa: PLC0415 - worker only

        session = requests.Session()
    url = guard_proxy_url()
    session.trust_env = False
    session.proxies = {"http": url, "https": url}
    return session


__all__ = [
    "ALLOW_ENV",
    "StreamUrlRefused",
    "allowance_entries",
    "allowances",
    "ca_bundle",
    "check_stream_url",
    "configure",
    "configure_from_settings",
    "configure_operator",
    "guard_proxy_url",
    "guard_session",
    "guarded_opener",
    "reset",
    "revoke",
]
