"""The one HTTP call the OAuth clients make: a form POST answered with JSON (stdlib urllib).

Nothing here logs a request or response body: they carry codes, verifiers and tokens. Errors
name the endpoint's host and the HTTP status or OAuth error code, never a value.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from timmybot.accounts.oauth.errors import ProviderUnavailableError
from timmybot.accounts.vault.base import TokenSet

_log = logging.getLogger(__name__)

USER_AGENT = "TimmyBot (OAuth client)"
MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class OAuthResponse:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str:
        value = self.body.get("error")
        return value if isinstance(value, str) else ""


def post_form(
    url: str,
    form: Mapping[str, str],
    *,
    provider: str,
    timeout_s: float,
    basic_auth: tuple[str, str] | None = None,
) -> OAuthResponse:
    """POST ``form`` url-encoded; the decoded JSON object and status (4xx answers are returned, not raised)."""
    import urllib.error  # noqa: PLC0415 - urllib.request pulls in ssl and email: only when a provider is called
    import urllib.parse  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    from timmybot import netguard  # noqa: PLC0415

    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    if basic_auth is not None:
        pair = f"{urllib.parse.quote(basic_auth[0])}:{urllib.parse.quote(basic_auth[1])}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    request = urllib.request.Request(  # noqa: S310 - the URL is a setting (https in production)
        url, data=urllib.parse.urlencode(dict(form)).encode(), headers=headers, method="POST"
    )
    host = urllib.parse.urlsplit(url).netloc
    try:
        # Through the network guard: the endpoint is a setting, and the guard allows the configured ones.
        with netguard.guarded_opener().open(request, timeout=timeout_s) as answer:
            status, raw = answer.status, answer.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(MAX_RESPONSE_BYTES)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        _log.warning("%s (%s) unreachable: %s", provider, host, type(exc).__name__)
        raise ProviderUnavailableError(provider) from None
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if 200 <= status < 300 and not raw:
            return OAuthResponse(status, {})
        _log.warning("%s (%s) answered HTTP %s without an OAuth JSON body", provider, host, status)
        raise ProviderUnavailableError(provider)
    if status >= 500:
        _log.warning("%s (%s) answered HTTP %s", provider, host, status)
        raise ProviderUnavailableError(provider)
    return OAuthResponse(status, body)


__all__ = ["OAuthResponse", "ProviderUnavailableError", "post_form"]


def positive_int(value: object, default: int) -> int:
    """``value`` as a positive whole number (providers send ints, floats or strings), else ``default``."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float | str):
        try:
            number = int(value)
        except ValueError:
            return default
        return number if number > 0 else default
    return default


def token_set(
    answer: OAuthResponse, *, provider: str, now: float, default_scope: str, previous_refresh: str | None
) -> TokenSet:
    """The tokens of a successful token-endpoint answer (RFC 6749 §5.1).

    A refresh answer without a new refresh token keeps the previous one; a rotated one replaces it.
    """
    body = answer.body
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProviderUnavailableError(provider)
    refresh = body.get("refresh_token")
    return TokenSet(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
        expires_at=now + positive_int(body.get("expires_in"), 3600),
        scope=str(body.get("scope") or default_scope),
        token_type=str(body.get("token_type") or "Bearer"),
    )
