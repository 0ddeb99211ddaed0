"""A loopback fake of Spotify's accounts service: authorization code + PKCE, built on Authlib.

    with FakeSpotifyAuth(redirect_uri) as spotify:
        settings = Settings(**spotify.settings())
        code, state = spotify.consent(authorize_url)          # what the browser does
        ...

Authlib checks the request the way RFC 6749 and RFC 7636 say: the exact redirect URI, an S256
``code_challenge``, and at the token endpoint the ``code_verifier`` against it (a wrong verifier is
``invalid_grant``). Codes work once. ``token_delay_s`` holds every token answer back (to make two
requests overlap). Refresh tokens ROTATE, as Spotify's do with PKCE: each refresh
returns a new one and the old one stops working. Spotify has no revocation endpoint, so neither
does the fake.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, Response

from tests.support.oauth_server import LoopbackFake, issue

CLIENT_ID = "fakespotifyclient0000000000000000"
SCOPES = "playlist-read-private playlist-read-collaborative user-library-read user-read-recently-played"
USER = "spotify-user"


@dataclass
class _Client(ClientMixin):
    redirect_uri: str
    client_secret: str = ""

    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(SCOPES.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri  # exact match, as Spotify requires

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.client_secret) and client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == ("client_secret_basic" if self.client_secret else "none")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class _Code(AuthorizationCodeMixin):
    code: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class _Token(TokenMixin):
    access_token: str
    refresh_token: str | None
    scope: str
    revoked: bool = False

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == CLIENT_ID)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 3600

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return USER

    def get_client(self) -> ClientMixin:
        raise NotImplementedError


@dataclass
class _State:
    codes: dict[str, _Code] = field(default_factory=dict)
    tokens: dict[str, _Token] = field(default_factory=dict)  # by access and refresh token
    exchanges: int = 0
    refreshes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeSpotifyAuth(LoopbackFake):
    def __init__(self, redirect_uri: str, *, client_secret: str = "", access_token_lifetime_s: int = 3600) -> None:
        self.redirect_uri = redirect_uri
        self.client_secret = client_secret
        self.state = _State()
        self.token_delay_s = 0.0
        super().__init__(self._build_app(access_token_lifetime_s))

    def settings(self) -> dict[str, Any]:
        return {
            "spotify_client_id": CLIENT_ID,
            "spotify_client_secret": self.client_secret,
            "spotify_redirect_uri": self.redirect_uri,
            "spotify_authorize_url": self.base_url + "/authorize",
            "spotify_token_url": self.base_url + "/api/token",
        }

    def consent(self, authorize_url: str, *, approve: bool = True) -> dict[str, str]:
        """The user's browser at Spotify: returns the query the redirect sends to our callback
        (``code`` and ``state``, or ``error`` and ``state``). Raises if Authlib refused the request."""
        parts = urllib.parse.urlsplit(authorize_url)
        assert parts.path == "/authorize", parts.path
        with self.app.test_client() as browser:
            answer = browser.get(f"/authorize?{parts.query}&approve={'1' if approve else '0'}")
        location = answer.headers.get("Location", "")
        assert answer.status_code == 302 and location.startswith(self.redirect_uri), answer.get_data(as_text=True)
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))

    def is_live(self, token: str) -> bool:
        found = self.state.tokens.get(token)
        return found is not None and not found.revoked

    # ------------------------------------------------------------------ the Authlib server
    def _build_app(self, lifetime_s: int) -> Flask:
        app = Flask("fake_spotify_auth")
        state = self.state
        client = _Client(self.redirect_uri, self.client_secret)
        auth_methods = ["client_secret_basic", "none"]

        def save_token(token: dict[str, Any], req: Any) -> None:
            stored = _Token(token["access_token"], token.get("refresh_token"), token.get("scope", SCOPES))
            with state.lock:
                state.tokens[stored.access_token] = stored
                if stored.refresh_token:
                    state.tokens[stored.refresh_token] = stored

        server = AuthorizationServer(
            app, query_client=lambda cid: client if cid == CLIENT_ID else None, save_token=save_token
        )
        server.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_kw: issue("access"),
                refresh_token_generator=lambda **_kw: issue("refresh"),
                expires_generator=lambda _client, _grant_type: lifetime_s,
            ),
        )

        class CodeGrant(AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = auth_methods

            def generate_authorization_code(self) -> str:
                return issue("code")

            def save_authorization_code(self, code: str, req: Any) -> None:
                state.codes[code] = _Code(
                    code=code,
                    redirect_uri=req.payload.redirect_uri,
                    scope=req.payload.scope,
                    code_challenge=req.payload.data.get("code_challenge"),
                    code_challenge_method=req.payload.data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code: str, _client: Any) -> _Code | None:
                return state.codes.get(code)

            def delete_authorization_code(self, authorization_code: _Code) -> None:
                state.codes.pop(authorization_code.code, None)  # codes work once
                state.exchanges += 1

            def authenticate_user(self, authorization_code: _Code) -> str:
                return USER

        class Refresh(RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = auth_methods
            INCLUDE_NEW_REFRESH_TOKEN = True  # PKCE refresh tokens rotate

            def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
                token = state.tokens.get(refresh_token)
                if token is None or token.revoked or token.refresh_token != refresh_token:
                    return None
                state.refreshes += 1
                return token

            def authenticate_user(self, credential: Any) -> str:
                return USER

            def revoke_old_credential(self, credential: _Token) -> None:
                credential.revoked = True  # the old refresh token stops working

        server.register_grant(CodeGrant, [CodeChallenge(required=True)])
        server.register_grant(Refresh)

        @app.get("/authorize")
        def authorize() -> Response:
            from flask import request  # noqa: PLC0415

            grant_user = USER if request.args.get("approve") == "1" else None
            grant = server.get_consent_grant(end_user=grant_user)  # checks client, redirect URI, PKCE challenge
            return server.create_authorization_response(grant=grant, grant_user=grant_user)  # type: ignore[no-any-return]

        @app.post("/api/token")
        def token() -> Response:
            time.sleep(self.token_delay_s)
            return server.create_token_response()  # type: ignore[no-any-return]

        return app
