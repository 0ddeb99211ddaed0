"""A loopback fake of Google's OAuth device flow, built on Authlib's RFC 8628 implementation.

    with FakeGoogle() as google:
        settings = Settings(**google.settings())
        ...                        # our client asks for a device code
        google.approve(user_code)  # or google.deny(...), google.expire_codes(), google.slow_down_next()

Endpoints, as Google names them: ``POST /device/code`` (answers ``verification_url``, Google's
spelling), ``POST /token`` (device_code and refresh_token grants; Google keeps refresh tokens),
``POST /revoke``. Authlib decides authorization_pending / slow_down / access_denied / expired_token.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oauth2.rfc6749.grants import RefreshTokenGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant, DeviceCredentialDict
from flask import Flask, Response, request

from tests.support.oauth_server import LoopbackFake, issue

CLIENT_ID = "fake-google-client.apps.googleusercontent.com"
CLIENT_SECRET = "fake-google-client-secret"
SCOPE = "https://www.googleapis.com/auth/youtube.readonly"
VERIFICATION_URL = "https://www.google.com/device"


@dataclass
class _Client(ClientMixin):
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str) -> str:
        return scope if scope == SCOPE else ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "device_authorization":
            return method == "none"  # Google's device endpoint takes the client id only
        return method == "client_secret_post"

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (DeviceCodeGrant.GRANT_TYPE, "refresh_token")


@dataclass
class _Token(TokenMixin):
    access_token: str
    refresh_token: str | None
    scope: str
    issued_at: float
    expires_in: int
    revoked: bool = False

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == CLIENT_ID)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return "google-user"

    def get_client(self) -> ClientMixin:
        return _Client()


@dataclass
class _State:
    credentials: dict[str, DeviceCredentialDict] = field(default_factory=dict)  # by device code
    grants: dict[str, bool] = field(default_factory=dict)  # user code -> approved?
    tokens: dict[str, _Token] = field(default_factory=dict)  # by access AND refresh token
    slow_down: int = 0
    expired: bool = False
    polls: int = 0
    refreshes: int = 0
    revoked: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeGoogle(LoopbackFake):
    def __init__(self, *, access_token_lifetime_s: int = 3600) -> None:
        self.state = _State()
        super().__init__(self._build_app(access_token_lifetime_s))

    def settings(self) -> dict[str, Any]:
        return {
            "google_client_id": CLIENT_ID,
            "google_client_secret": CLIENT_SECRET,
            "google_device_url": self.base_url + "/device/code",
            "google_token_url": self.base_url + "/token",
            "google_revoke_url": self.base_url + "/revoke",
        }

    # ------------------------------------------------------------------ what the user does at Google
    def approve(self, user_code: str) -> None:
        self.state.grants[user_code] = True

    def deny(self, user_code: str) -> None:
        self.state.grants[user_code] = False

    def slow_down_next(self, polls: int = 1) -> None:
        self.state.slow_down = polls

    def expire_codes(self) -> None:
        self.state.expired = True

    def token(self, value: str) -> _Token | None:
        return self.state.tokens.get(value)

    # ------------------------------------------------------------------ the Authlib server
    def _build_app(self, lifetime_s: int) -> Flask:
        app = Flask("fake_google")
        state = self.state
        client = _Client()

        def save_token(token: dict[str, Any], req: Any) -> None:
            stored = _Token(
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                scope=token.get("scope", SCOPE),
                issued_at=time.time(),
                expires_in=int(token.get("expires_in", lifetime_s)),
            )
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

        class Credential(DeviceCredentialDict):
            def is_expired(self) -> bool:
                return state.expired

        class Devices(DeviceAuthorizationEndpoint):
            CLIENT_AUTH_METHODS = ["none"]  # noqa: RUF012 - Authlib's class attribute

            def get_verification_uri(self) -> str:
                return VERIFICATION_URL

            def generate_device_code(self) -> str:
                return issue("device")

            def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
                state.credentials[data["device_code"]] = Credential(client_id=client_id, scope=scope, **data)

        class DeviceGrant(DeviceCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post"]  # noqa: RUF012

            def query_device_credential(self, device_code: str) -> DeviceCredentialDict | None:
                state.polls += 1
                return state.credentials.get(device_code)

            def query_user_grant(self, user_code: str) -> tuple[str, bool] | None:
                approved = state.grants.get(user_code)
                return None if approved is None else ("google-user", approved)

            def should_slow_down(self, credential: Any) -> bool:
                if state.slow_down > 0:
                    state.slow_down -= 1
                    return True
                return False

        class Refresh(RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post"]  # noqa: RUF012
            INCLUDE_NEW_REFRESH_TOKEN = False  # Google keeps the refresh token

            def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
                token = state.tokens.get(refresh_token)
                if token is None or token.revoked or token.refresh_token != refresh_token:
                    return None
                state.refreshes += 1
                return token

            def authenticate_user(self, credential: Any) -> str:
                return "google-user"

            def revoke_old_credential(self, credential: Any) -> None:
                """Google keeps the refresh token valid."""

        server.register_grant(DeviceGrant)
        server.register_grant(Refresh)
        server.register_endpoint(Devices)

        @app.post("/device/code")
        def device_code() -> Response:
            answer = server.create_endpoint_response(DeviceAuthorizationEndpoint.ENDPOINT_NAME)
            body = json.loads(answer.get_data())
            if "verification_uri" in body:  # Google spells it verification_url
                body["verification_url"] = body.pop("verification_uri")
                body.pop("verification_uri_complete", None)
            return Response(json.dumps(body), status=answer.status_code, mimetype="application/json")

        @app.post("/token")
        def token() -> Response:
            return server.create_token_response()  # type: ignore[no-any-return]

        @app.post("/revoke")
        def revoke() -> Response:
            value = request.form.get("token", "")
            with state.lock:
                found = state.tokens.get(value)
                if found is None or found.revoked:
                    return Response('{"error": "invalid_token"}', status=400, mimetype="application/json")
                found.revoked = True
                state.revoked.append(value)
            return Response("{}", status=200, mimetype="application/json")

        return app
