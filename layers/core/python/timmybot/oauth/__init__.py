"""OAuth clients for account linking: Google's device flow (YouTube) and Spotify's PKCE flow.

Both speak plain OAuth over stdlib HTTP (``timmybot.oauth.http``); their endpoints are settings,
so tests point them at loopback fakes. Nothing here logs a token, a code or a verifier.
"""

from __future__ import annotations

from timmybot.oauth.errors import (
    AccessDeniedError,
    AuthorizationPendingError,
    CallbackDeniedError,
    CodeRejectedError,
    ExpiredCodeError,
    LinkError,
    LinkRevokedError,
    NoPendingLinkError,
    NotConfiguredError,
    ProviderUnavailableError,
    SlowDownError,
    StateError,
    StateSupersededError,
    StateUsedError,
    TooSoonError,
)

__all__ = [
    "AccessDeniedError",
    "AuthorizationPendingError",
    "CallbackDeniedError",
    "CodeRejectedError",
    "ExpiredCodeError",
    "LinkError",
    "LinkRevokedError",
    "NoPendingLinkError",
    "NotConfiguredError",
    "ProviderUnavailableError",
    "SlowDownError",
    "StateError",
    "StateSupersededError",
    "StateUsedError",
    "TooSoonError",
]
