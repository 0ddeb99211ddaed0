"""Operator-level source credentials: one bot-wide secret, apart from every user's OAuth tokens.

The secret is a JSON document, read from Secrets Manager (``SourceSettings.source_secret_id``) or,
for self-hosters, a local file (``source_secret_file``). Both the worker and the voice task read it,
once per process. Every key is optional::

    {
      "youtube_cookies": "# Netscape HTTP Cookie File\\n.youtube.com\\tTRUE\\t/\\tTRUE\\t0\\tSID\\t...",
      "proxy": "http://user:password@proxy.example:3128",
      "youtube_player_clients": ["tv", "web_safari"],
      "po_token_provider": {"youtubepot-bgutilhttp": {"base_url": "http://127.0.0.1:4416"}},
      "youtube_po_tokens": ["web.gvs+<token>"]
    }

Cookies are written to a private (0600) temporary file and handed to yt-dlp as ``cookiefile``; the
proxy becomes yt-dlp's ``proxy`` (sources only, nothing else in the bot uses it); player clients,
static PO tokens and the PO-token provider's arguments become ``extractor_args``. None of these
values is ever logged: ``OperatorSources`` hides them in its repr, and ``redact`` scrubs them from
any text (yt-dlp messages) before it reaches a log line.

User OAuth tokens are never used for playback; nothing here reads them.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from timmybot import redaction

if TYPE_CHECKING:
    from .models import SourceSettings

_log = logging.getLogger(__name__)

KNOWN_KEYS = frozenset({"youtube_cookies", "proxy", "youtube_player_clients", "po_token_provider", "youtube_po_tokens"})
PROXY_SCHEMES = frozenset({"http", "https", "socks5", "socks5h"})
# After a failed read, the next request tries again this much later (a fixed secret stays cached).
RETRY_AFTER_S = 300.0
# Cookie values shorter than this are not worth scrubbing (and would mangle ordinary words).
_MIN_SECRET_CHARS = 6


class OperatorSecretError(ValueError):
    """The operator secret could not be read or is not the documented JSON document."""


@dataclass(frozen=True, slots=True)
class OperatorSources:
    """The operator's source credentials, ready for yt-dlp. ``repr`` says which are set, never what."""

    origin: str = "none"
    cookie_file: str | None = None
    proxy: str | None = field(default=None, repr=False)
    player_clients: tuple[str, ...] = ()
    po_tokens: tuple[str, ...] = field(default=(), repr=False)
    po_token_provider: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        return (
            f"OperatorSources(origin={self.origin!r}, cookies={self.cookie_file is not None}, "
            f"proxy={self.proxy is not None}, player_clients={list(self.player_clients)!r}, "
            f"po_tokens={len(self.po_tokens)}, po_token_provider={[name for name, _ in self.po_token_provider]!r})"
        )

    __str__ = __repr__

    @property
    def is_empty(self) -> bool:
        return not (self.cookie_file or self.proxy or self.player_clients or self.po_tokens or self.po_token_provider)

    def extractor_args(self) -> dict[str, dict[str, list[str]]]:
        """yt-dlp's ``extractor_args``: ``{ie_key: {arg: [values]}}``."""
        args: dict[str, dict[str, list[str]]] = {}
        youtube: dict[str, list[str]] = {}
        if self.player_clients:
            youtube["player_client"] = list(self.player_clients)
        if self.po_tokens:
            youtube["po_token"] = list(self.po_tokens)
        if youtube:
            args["youtube"] = youtube
        for namespace, items in self.po_token_provider:
            args.setdefault(namespace, {}).update({key: list(values) for key, values in items})
        return args


# -- redaction ------------------------------------------------------------------------------------

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Scrub ``value`` from every text passed to ``redact`` from now on."""
    if value and len(value) >= _MIN_SECRET_CHARS:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


# -- loading --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Cached:
    sources: OperatorSources
    ok: bool
    loaded_at: float


_cache: dict[tuple[str, str, str, str], _Cached] = {}
_cache_lock = threading.Lock()


def operator_sources(settings: SourceSettings, *, client: Any = None) -> OperatorSources:
    """The operator's source credentials for ``settings``, read once per process.

    A secret that cannot be read is logged (its id and the error class, never its content) and
    treated as empty, so playback goes on without credentials; it is read again after
    ``RETRY_AFTER_S``. ``client`` is a boto3 Secrets Manager client (built here if None).
    """
    if not settings.source_secret_id and not settings.source_secret_file:
        return OperatorSources()
    key = (settings.source_secret_id, settings.source_secret_file, settings.aws_region, settings.aws_endpoint_url)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and (cached.ok or time.monotonic() - cached.loaded_at < RETRY_AFTER_S):
            return cached.sources
        try:
            document, origin = _read_document(settings, client)
            sources = parse_operator_document(document, origin=origin)
            ok = True
            _log.info("operator source settings loaded: %r", sources)
        except OperatorSecretError as exc:
            _log.error("operator source settings unavailable, playing without them: %s", exc)
            sources, ok = OperatorSources(origin="unavailable"), False
        _cache[key] = _Cached(sources, ok, time.monotonic())
        return sources


def reset_operator_cache() -> None:
    """Forget every loaded secret (tests; a process that must re-read a rotated secret)."""
    with _cache_lock:
        _cache.clear()


def _read_document(settings: SourceSettings, client: Any) -> tuple[Mapping[str, Any], str]:
    if settings.source_secret_file:
        path = Path(settings.source_secret_file)
        origin = f"file {path.name}"
        try:
            if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                _log.warning("operator source secret file %s is readable by others: chmod 600 it", path)
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise OperatorSecretError(f"cannot read {path}: {type(exc).__name__}") from None
    else:
        origin = f"secret {settings.source_secret_id}"
        text = _read_secrets_manager(settings, client)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # The message of a JSONDecodeError quotes no content, only a position.
        raise OperatorSecretError(f"{origin} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise OperatorSecretError(f"{origin} must be a JSON object")
    return document, origin


def _read_secrets_manager(settings: SourceSettings, client: Any) -> str:
    redaction.install()
    if client is None:
        import boto3  # noqa: PLC0415 - only processes with an operator secret pay for boto3

        client = boto3.client(
            "secretsmanager",
            region_name=settings.aws_region or None,
            endpoint_url=settings.aws_endpoint_url or None,
        )
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        answer = client.get_secret_value(SecretId=settings.source_secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise OperatorSecretError(f"Secrets Manager refused {settings.source_secret_id}: {code}") from None
    except BotoCoreError as exc:
        raise OperatorSecretError(f"Secrets Manager unreachable: {type(exc).__name__}") from None
    text = answer.get("SecretString")
    if not isinstance(text, str):
        raise OperatorSecretError(f"secret {settings.source_secret_id} has no SecretString (JSON text expected)")
    return text


def parse_operator_document(document: Mapping[str, Any], *, origin: str = "document") -> OperatorSources:
    """Validate the secret's JSON document and turn it into ``OperatorSources``.

    Registers every secret value for ``redact`` and writes the cookies to a 0600 temporary file.
    Error messages name keys, never values.
    """
    unknown = sorted(set(document) - KNOWN_KEYS)
    if unknown:
        _log.warning("operator source secret has unknown keys (ignored): %s", ", ".join(unknown))

    cookies = document.get("youtube_cookies")
    if cookies is not None and (not isinstance(cookies, str) or not cookies.strip()):
        raise OperatorSecretError("youtube_cookies must be the text of a Netscape cookies file")
    proxy = document.get("proxy")
    if proxy is not None:
        proxy = _check_proxy(proxy)
    clients = _str_list(document.get("youtube_player_clients"), "youtube_player_clients")
    po_tokens = _str_list(document.get("youtube_po_tokens"), "youtube_po_tokens")
    provider = _provider_args(document.get("po_token_provider"))

    for token in po_tokens:
        register_secret(token)
    for _namespace, items in provider:
        for _key, values in items:
            for value in values:
                register_secret(_password_of(value))
    if proxy:
        register_secret(proxy)
        register_secret(_password_of(proxy))
    cookie_file = None
    if cookies:
        for value in _cookie_values(cookies):
            register_secret(value)
        cookie_file = write_private_cookie_file(cookies)
    return OperatorSources(
        origin=origin,
        cookie_file=cookie_file,
        proxy=proxy or None,
        player_clients=tuple(clients),
        po_tokens=tuple(po_tokens),
        po_token_provider=provider,
    )


def write_private_cookie_file(cookies: str) -> str:
    """Write Netscape cookies text to a new 0600 file, removed at exit; returns its path."""
    descriptor, path = tempfile.mkstemp(prefix="timmybot-cookies-", suffix=".txt")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            if not cookies.lstrip().startswith("#"):
                handle.write("# Netscape HTTP Cookie File\n")
            handle.write(cookies if cookies.endswith("\n") else cookies + "\n")
    except OSError:
        Path(path).unlink(missing_ok=True)
        raise
    atexit.register(Path(path).unlink, missing_ok=True)
    return path


def _check_proxy(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise OperatorSecretError("proxy must be a URL such as http://user:password@host:port")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise OperatorSecretError("proxy is not a valid URL") from None
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname or port is None:
        raise OperatorSecretError(f"proxy must be {'/'.join(sorted(PROXY_SCHEMES))}://[user:password@]host:port")
    return value


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _str_list(value: object, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise OperatorSecretError(f"{name} must be a list of strings")
    return list(value)


def _provider_args(value: object) -> tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]:
    """``{"youtubepot-bgutilhttp": {"base_url": "http://..."}}`` → hashable extractor-arg pairs."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise OperatorSecretError("po_token_provider must map extractor-arg namespaces to {arg: value}")
    result: list[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]] = []
    for namespace, items in value.items():
        if not isinstance(namespace, str) or not isinstance(items, dict):
            raise OperatorSecretError("po_token_provider must map extractor-arg namespaces to {arg: value}")
        pairs = tuple(
            (str(key), tuple(_str_list(item, f"po_token_provider.{namespace}.{key}"))) for key, item in items.items()
        )
        result.append((namespace.lower(), pairs))
    return tuple(result)


def _cookie_values(cookies: str) -> list[str]:
    """The value column of every Netscape cookie line."""
    values: list[str] = []
    for raw in cookies.splitlines():
        line = raw.removeprefix("#HttpOnly_")
        if not line.strip() or line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) >= 7:
            values.append(columns[6].strip())
    return values
