"""The Vault port: every user's OAuth tokens, encrypted at rest, kept apart from the store.

One document per user holds the tokens of each linked platform::

    {"user_id": "<discord user id>", "platforms": {"youtube": {...TokenSet...}, "spotify": {...}}}

The document names its user, and every adapter refuses a document read under another user's id:
an entry copied from one user to another is an integrity error, never someone else's tokens.

Adapters implement three primitives (read, conditional write, erase); the port's operations
(``put``, ``get``, ``delete``, ``delete_user``, ``platforms``) are written once here so the three
adapters cannot drift. Only the api and the worker build a vault; the voice task never does.
"""

from __future__ import annotations

import abc
import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from timmybot.errors import TimmyError

_log = logging.getLogger(__name__)

MAX_WRITE_ATTEMPTS = 8


class Platform(enum.StrEnum):
    YOUTUBE = "youtube"
    SPOTIFY = "spotify"

    @property
    def label(self) -> str:
        return "YouTube" if self is Platform.YOUTUBE else "Spotify"


class VaultError(TimmyError):
    """The vault could not be read or written (the service refused, or a document is damaged)."""

    user_message = "I couldn't reach the place where linked accounts are kept. Please try again in a moment."


class VaultIntegrityError(VaultError):
    """A stored document does not decrypt, or names another user."""

    user_message = (
        "Your linked-account data could not be read safely, so I ignored it. "
        "Run /forget-me or /unlink, then link again."
    )


@dataclass(frozen=True)
class TokenSet:
    """One platform's OAuth tokens. ``repr`` never shows a token."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float = 0.0  # epoch seconds; 0 = unknown (treated as expired)
    scope: str = ""
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret

    def expires_within(self, now: float, seconds: float) -> bool:
        return self.expires_at - now <= seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "scope": self.scope,
            "token_type": self.token_type,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenSet:
        refresh = data.get("refresh_token")
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=str(refresh) if refresh else None,
            expires_at=float(data.get("expires_at") or 0.0),
            scope=str(data.get("scope") or ""),
            token_type=str(data.get("token_type") or "Bearer"),
        )


Document = dict[str, Any]


class Vault(abc.ABC):
    """Per-user OAuth tokens: put, get, delete one platform, delete everything of a user."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # serialises this process's read-modify-write cycles

    # ------------------------------------------------------------------ adapter primitives
    @abc.abstractmethod
    def _read(self, user_id: str) -> tuple[Document, Any] | None:
        """The user's decrypted document and an opaque revision for ``_write``; None if absent."""

    @abc.abstractmethod
    def _write(self, user_id: str, document: Document, revision: Any) -> bool:
        """Store ``document`` encrypted; False if it changed since ``revision`` was read (None = absent)."""

    @abc.abstractmethod
    def _erase(self, user_id: str) -> None:
        """Remove everything stored for the user, immediately and without a recovery window."""

    # ------------------------------------------------------------------ the port
    def put(self, user_id: str, platform: Platform, tokens: TokenSet) -> None:
        def change(platforms: dict[str, Any]) -> dict[str, Any]:
            return {**platforms, platform.value: tokens.to_dict()}

        self._update(user_id, change)
        _log.info("stored %s tokens for user %s", platform.value, user_id)

    def get(self, user_id: str, platform: Platform) -> TokenSet | None:
        found = self._checked_read(user_id)
        if found is None:
            return None
        data = found[0]["platforms"].get(platform.value)
        return TokenSet.from_dict(data) if isinstance(data, dict) else None

    def platforms(self, user_id: str) -> list[Platform]:
        found = self._checked_read(user_id)
        if found is None:
            return []
        return [p for p in Platform if p.value in found[0]["platforms"]]

    def delete(self, user_id: str, platform: Platform) -> bool:
        """Forget one platform's tokens; True if there were any."""
        removed: list[bool] = [False]

        def change(platforms: dict[str, Any]) -> dict[str, Any]:
            removed[0] = platform.value in platforms
            return {k: v for k, v in platforms.items() if k != platform.value}

        self._update(user_id, change)
        if removed[0]:
            _log.info("deleted %s tokens of user %s", platform.value, user_id)
        return removed[0]

    def delete_user(self, user_id: str) -> list[Platform]:
        """Erase the user's entry whatever its state (damaged ones too); returns the platforms it held."""
        with self._lock:
            try:
                held = self.platforms(user_id)
            except VaultIntegrityError:
                held = []
            self._erase(user_id)
        _log.info("erased the vault entry of user %s (%d platforms)", user_id, len(held))
        return held

    # ------------------------------------------------------------------ helpers
    def _checked_read(self, user_id: str) -> tuple[Document, Any] | None:
        found = self._read(user_id)
        if found is None:
            return None
        document, revision = found
        if document.get("user_id") != user_id or not isinstance(document.get("platforms"), dict):
            raise VaultIntegrityError()
        return document, revision

    def _update(self, user_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        with self._lock:
            for _attempt in range(MAX_WRITE_ATTEMPTS):
                found = self._checked_read(user_id)
                platforms = dict(found[0]["platforms"]) if found is not None else {}
                revision = found[1] if found is not None else None
                updated = change(platforms)
                if not updated:
                    if found is not None:
                        self._erase(user_id)  # an empty entry costs money (a secret) and says nothing
                    return
                if self._write(user_id, {"user_id": user_id, "platforms": updated}, revision):
                    return
            raise VaultError()


__all__ = ["Platform", "TokenSet", "Vault", "VaultError", "VaultIntegrityError"]
