"""Spotify's authorization code flow with PKCE (S256), for a public client.

    new_request()  a random single-use ``state`` and the authorize URL carrying the S256 code
                   challenge and the EXACT redirect URI from the settings. The code verifier is
                   derived from the state with the link key (``timmybot.accounts.oauth.link_key``), so
                   nothing has to store it
    exchange()     code + the state's verifier, recomputed (+ the same redirect URI) → tokens
    refresh()      refresh token → tokens; with PKCE Spotify ROTATES the refresh token, so the new
                   one must be stored every time (the old one stops working)

Spotify has no token revocation endpoint: unlinking deletes the tokens here, and the user can
remove the app's access at https://www.spotify.com/account/apps/. With a client secret set
(optional), token requests also authenticate with HTTP Basic; the verifier is sent either way.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from timmybot.accounts.oauth.errors import CodeRejectedError, LinkRevokedError, NotConfiguredError
from timmybot.accounts.oauth.http import OAuthResponse, ProviderUnavailableError, post_form, token_set
from timmybot.accounts.oauth.link_key import pkce_verifier
from timmybot.accounts.vault.base import TokenSet

if TYPE_CHECKING:
    from timmybot.config import Settings

_log = logging.getLogger(__name__)

PROVIDER = "Spotify"
SCOPES = ("playlist-read-private", "playlist-read-collaborative", "user-library-read", "user-read-recently-played")
STATE_BYTES = 32
REVOKE_PAGE = "https://www.spotify.com/account/apps/"


def code_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(ASCII(verifier))) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AuthorizationRequest:
    state: str = field(repr=False)
    url: str = field(repr=False)


class SpotifyPkce:
    def __init__(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        authorize_url: str,
        token_url: str,
        link_key: bytes,
        client_secret: str = "",
        timeout_s: float = 2.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_id = client_id
        self._redirect_uri = redirect_uri
        self._authorize_url = authorize_url
        self._token_url = token_url
        self._link_key = link_key
        self._client_secret = client_secret
        self._timeout_s = timeout_s
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, *, link_key: bytes, clock: Callable[[], float] = time.time
    ) -> SpotifyPkce:
        return cls(
            link_key=link_key,
            client_id=settings.spotify_client_id,
            client_secret=settings.spotify_client_secret,
            redirect_uri=settings.spotify_redirect_uri,
            authorize_url=settings.spotify_authorize_url,
            token_url=settings.spotify_token_url,
            timeout_s=settings.oauth_timeout_s,
            clock=clock,
        )

    @property
    def configured(self) -> bool:
        return bool(self._client_id and self._redirect_uri)

    def new_request(self) -> AuthorizationRequest:
        self._require_configured()
        state = secrets.token_urlsafe(STATE_BYTES)
        verifier = pkce_verifier(self._link_key, state)
        query = urllib.parse.urlencode(
            {
                "client_id": self._client_id,
                "response_type": "code",
                "redirect_uri": self._redirect_uri,
                "code_challenge_method": "S256",
                "code_challenge": code_challenge(verifier),
                "state": state,
                "scope": " ".join(SCOPES),
            },
            quote_via=urllib.parse.quote,
        )
        return AuthorizationRequest(state=state, url=f"{self._authorize_url}?{query}")

    def exchange(self, code: str, *, state: str) -> TokenSet:
        """The code for tokens, with the verifier the state's challenge was made from."""
        self._require_configured()
        verifier = pkce_verifier(self._link_key, state)
        answer = self._post(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._redirect_uri,
                "client_id": self._client_id,
                "code_verifier": verifier,
            }
        )
        if answer.ok:
            return self._tokens(answer, previous_refresh=None)
        _log.info("Spotify refused a code exchange: HTTP %s %s", answer.status, answer.error or "-")
        raise CodeRejectedError("Spotify", "/link spotify")

    def refresh(self, tokens: TokenSet) -> TokenSet:
        """New tokens; the rotated refresh token replaces the old one (keep it only if none came back)."""
        self._require_configured()
        if not tokens.refresh_token:
            raise LinkRevokedError("Spotify", "/link spotify")
        answer = self._post(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "client_id": self._client_id}
        )
        if answer.ok:
            return self._tokens(answer, previous_refresh=tokens.refresh_token)
        _log.info("Spotify refused a refresh: HTTP %s %s", answer.status, answer.error or "-")
        if answer.error in ("invalid_grant", "invalid_client"):
            raise LinkRevokedError("Spotify", "/link spotify")
        raise ProviderUnavailableError(PROVIDER)

    # ------------------------------------------------------------------ helpers
    def _post(self, form: dict[str, str]) -> OAuthResponse:
        auth = (self._client_id, self._client_secret) if self._client_secret else None
        return post_form(self._token_url, form, provider=PROVIDER, timeout_s=self._timeout_s, basic_auth=auth)

    def _tokens(self, answer: OAuthResponse, *, previous_refresh: str | None) -> TokenSet:
        return token_set(
            answer,
            provider=PROVIDER,
            now=self._clock(),
            default_scope=" ".join(SCOPES),
            previous_refresh=previous_refresh,
        )

    def _require_configured(self) -> None:
        if not self.configured:
            raise NotConfiguredError("Spotify")
