"""Google's OAuth device flow ("TVs and Limited Input devices", RFC 8628) for YouTube.

    start()    POST device_url  → device code, user code, verification URL, interval, expiry
    poll()     POST token_url (grant urn:ietf:params:oauth:grant-type:device_code) → tokens, or
               authorization_pending / slow_down (interval + 5 s) / access_denied / expired_token,
               each a domain error with its own sentence
    refresh()  POST token_url (grant refresh_token); Google keeps the refresh token unless it sends a new one
    revoke()   POST revoke_url (token=...)

Google requires the client secret of a "TVs and Limited Input devices" client in token requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from timmybot.accounts.oauth.errors import (
    AccessDeniedError,
    AuthorizationPendingError,
    CodeRejectedError,
    ExpiredCodeError,
    LinkRevokedError,
    NotConfiguredError,
    SlowDownError,
)
from timmybot.accounts.oauth.http import OAuthResponse, ProviderUnavailableError, positive_int, post_form, token_set
from timmybot.accounts.vault.base import TokenSet

if TYPE_CHECKING:
    from timmybot.config import Settings

_log = logging.getLogger(__name__)

PROVIDER = "Google"
SCOPE = "https://www.googleapis.com/auth/youtube.readonly"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL_S = 5
SLOW_DOWN_STEP_S = 5  # RFC 8628 §3.5: every slow_down adds 5 seconds to the interval
DEFAULT_EXPIRES_S = 1800


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str = field(repr=False)
    user_code: str
    verification_url: str
    interval_s: int
    expires_at: float


class GoogleDeviceFlow:
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        device_url: str,
        token_url: str,
        revoke_url: str,
        timeout_s: float = 2.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._device_url = device_url
        self._token_url = token_url
        self._revoke_url = revoke_url
        self._timeout_s = timeout_s
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], float] = time.time) -> GoogleDeviceFlow:
        return cls(
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret,
            device_url=settings.google_device_url,
            token_url=settings.google_token_url,
            revoke_url=settings.google_revoke_url,
            timeout_s=settings.oauth_timeout_s,
            clock=clock,
        )

    @property
    def configured(self) -> bool:
        return bool(self._client_id)

    def start(self) -> DeviceAuthorization:
        self._require_configured()
        answer = self._post(self._device_url, {"client_id": self._client_id, "scope": SCOPE})
        body = answer.body
        device_code, user_code = body.get("device_code"), body.get("user_code")
        url = body.get("verification_url") or body.get("verification_uri")  # Google's name, then RFC 8628's
        if not answer.ok or not (isinstance(device_code, str) and isinstance(user_code, str) and isinstance(url, str)):
            _log.warning("Google refused a device code: HTTP %s %s", answer.status, answer.error or "-")
            raise ProviderUnavailableError(PROVIDER)
        interval = positive_int(body.get("interval"), DEFAULT_INTERVAL_S)
        expires_in = positive_int(body.get("expires_in"), DEFAULT_EXPIRES_S)
        return DeviceAuthorization(
            device_code=device_code,
            user_code=user_code,
            verification_url=url,
            interval_s=interval,
            expires_at=self._clock() + expires_in,
        )

    def poll(self, device_code: str, *, interval_s: int = DEFAULT_INTERVAL_S) -> TokenSet:
        """One poll of the token endpoint: the tokens, or the RFC 8628 error as a domain error."""
        self._require_configured()
        answer = self._post(
            self._token_url,
            {
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "device_code": device_code,
                "grant_type": DEVICE_GRANT,
            },
        )
        if answer.ok:
            return self._tokens(answer, previous_refresh=None)
        error = answer.error
        if error == "authorization_pending":
            raise AuthorizationPendingError()
        if error == "slow_down":
            raise SlowDownError(interval_s + SLOW_DOWN_STEP_S)
        if error == "access_denied":
            raise AccessDeniedError()
        if error == "expired_token":
            raise ExpiredCodeError()
        _log.warning("Google's token endpoint refused the device code: HTTP %s %s", answer.status, error or "-")
        raise CodeRejectedError("Google", "/link youtube")

    def refresh(self, tokens: TokenSet) -> TokenSet:
        self._require_configured()
        if not tokens.refresh_token:
            raise LinkRevokedError("YouTube", "/link youtube")
        answer = self._post(
            self._token_url,
            {
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "refresh_token": tokens.refresh_token,
                "grant_type": "refresh_token",
            },
        )
        if answer.ok:
            return self._tokens(answer, previous_refresh=tokens.refresh_token)
        _log.info("Google refused a refresh: HTTP %s %s", answer.status, answer.error or "-")
        if answer.error in ("invalid_grant", "unauthorized_client"):
            raise LinkRevokedError("YouTube", "/link youtube")
        raise ProviderUnavailableError(PROVIDER)

    def revoke(self, tokens: TokenSet) -> bool:
        """Revoke the grant at Google (the refresh token revokes the whole grant). True if Google confirmed."""
        token = tokens.refresh_token or tokens.access_token
        try:
            answer = self._post(self._revoke_url, {"token": token})
        except ProviderUnavailableError:
            return False
        if not answer.ok:
            _log.info("Google did not revoke: HTTP %s %s", answer.status, answer.error or "-")
        return answer.ok or answer.error == "invalid_token"  # already revoked counts as revoked

    # ------------------------------------------------------------------ helpers
    def _post(self, url: str, form: dict[str, str]) -> OAuthResponse:
        return post_form(url, form, provider=PROVIDER, timeout_s=self._timeout_s)

    def _tokens(self, answer: OAuthResponse, *, previous_refresh: str | None) -> TokenSet:
        return token_set(
            answer, provider=PROVIDER, now=self._clock(), default_scope=SCOPE, previous_refresh=previous_refresh
        )

    def _require_configured(self) -> None:
        if not self._client_id:
            raise NotConfiguredError("YouTube")
