"""OAuth clients for account linking: Google's device flow (YouTube) and Spotify's PKCE flow.

Both speak plain OAuth over stdlib HTTP (``timmybot.accounts.oauth.http``); their endpoints are settings,
so tests point them at loopback fakes. Nothing here logs a token, a code or a verifier;
``timmybot.accounts.oauth.link_key`` derives and seals what the store would otherwise hold in clear.
"""

from __future__ import annotations

from timmybot.accounts.oauth.errors import (
    AccessDeniedError,
    AuthorizationPendingError,
    CallbackDeniedError,
    CodeRejectedError,
    ConfirmExpiredError,
    ConfirmRefusedError,
    ExpiredCodeError,
    LinkError,
    LinkRevokedError,
    NoPendingLinkError,
    NotConfiguredError,
    PendingLinkUnreadableError,
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
    "ConfirmExpiredError",
    "ConfirmRefusedError",
    "ExpiredCodeError",
    "LinkError",
    "LinkRevokedError",
    "NoPendingLinkError",
    "NotConfiguredError",
    "PendingLinkUnreadableError",
    "ProviderUnavailableError",
    "SlowDownError",
    "StateError",
    "StateSupersededError",
    "StateUsedError",
    "TooSoonError",
]
