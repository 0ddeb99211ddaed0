"""Linked accounts: linking YouTube (Google device flow) and Spotify (PKCE), fresh access tokens,
/unlink and /forget-me — domain functions over the Store, the Vault and the two OAuth clients.

Store keys (BRIEF §4.5, §4.6; tokens themselves are only ever in the vault):

    per-user records        pk="U#{user_id}"          sk in USER_RECORDS ("PREFS", "HISTORY")
    Google device code      pk="O#device#{user_id}"   sk="GOOGLE"    until the code expires (≤ 15 min)
    Spotify state           pk="O#state#{sha256(state)}" sk="SPOTIFY" single use, 15 min, names its user;
                                                                     deleted once the link succeeded
    Spotify latest state    pk="O#spotify#{user_id}"  sk="PENDING"   the user's newest state (older ones
                                                                     stop working; forget-me finds it)

Every per-user record kind MUST be listed in ``USER_RECORDS``: forget-me deletes exactly those.

``access_token(user_id, platform)`` is the API the personal commands use: a valid access token
(refreshed when within 60 s of expiry, the rotated refresh token stored), or None when the user has
not linked that platform. It raises ``LinkRevokedError`` (after removing the dead link) when the
provider refused the refresh, and ``ProviderUnavailableError`` when it could not be reached.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from timmybot.oauth.errors import (
    AccessDeniedError,
    CodeRejectedError,
    ExpiredCodeError,
    LinkRevokedError,
    NoPendingLinkError,
    SlowDownError,
    StateError,
    StateSupersededError,
    StateUsedError,
    TooSoonError,
)
from timmybot.vault.base import Platform, TokenSet, Vault, VaultIntegrityError

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.oauth.google import DeviceAuthorization, GoogleDeviceFlow
    from timmybot.oauth.spotify import SpotifyPkce
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 60.0
USER_PREFIX = "U#"
PENDING_PREFIX = "O#"
PREFS_SK = "PREFS"
HISTORY_SK = "HISTORY"
USER_RECORDS: dict[str, str] = {
    PREFS_SK: "preferences",
    HISTORY_SK: "play history",
    # timmybot.personal's short-lived lists behind /my-playlists and /play-history buttons (15 min)
    "PLAYLISTS": "playlist menu",
    "HISTORY_VIEW": "history list",
}
GOOGLE_SK = "GOOGLE"
SPOTIFY_STATE_SK = "SPOTIFY"
SPOTIFY_POINTER_SK = "PENDING"
STATE_MAX_LENGTH = 200
EXPIRED_NOTICE_GRACE_S = 3600  # a spent device record lingers this long so "expired" can be told apart


def user_pk(user_id: str) -> str:
    """The partition of every per-user record (preferences, play history...)."""
    return f"{USER_PREFIX}{user_id}"


def device_pk(user_id: str) -> str:
    return f"{PENDING_PREFIX}device#{user_id}"


def spotify_pointer_pk(user_id: str) -> str:
    return f"{PENDING_PREFIX}spotify#{user_id}"


def state_pk(state: str) -> str:
    """The state's record key: a hash, so the store never holds a usable state."""
    return f"{PENDING_PREFIX}state#{hashlib.sha256(state.encode()).hexdigest()}"


@dataclass(frozen=True)
class PendingDevice:
    user_code: str
    verification_url: str
    interval_s: int
    expires_at: float


@dataclass(frozen=True)
class AccountStatus:
    linked: tuple[Platform, ...]
    youtube_pending: PendingDevice | None
    spotify_pending: bool


@dataclass(frozen=True)
class UnlinkReport:
    platform: Platform
    was_linked: bool
    revoked: bool | None  # None: the provider has no revocation (Spotify) or nothing was linked
    pending_cancelled: bool


@dataclass(frozen=True)
class ForgetReport:
    tokens_deleted: tuple[Platform, ...]
    revoked: tuple[Platform, ...]
    revoke_failed: tuple[Platform, ...]
    records_deleted: tuple[str, ...]  # labels from USER_RECORDS
    pending_deleted: tuple[str, ...]  # "YouTube link in progress", ...

    @property
    def nothing(self) -> bool:
        return not (self.tokens_deleted or self.records_deleted or self.pending_deleted)

    def summary(self) -> str:
        if self.nothing:
            return "I had nothing stored about you, so there was nothing to delete."
        lines = ["Done. I deleted everything I kept about you:"]
        for platform in self.tokens_deleted:
            if platform in self.revoked:
                note = "access revoked at Google"
            elif platform in self.revoke_failed:
                note = (
                    "Google didn't confirm the revocation: remove TimmyBot at https://myaccount.google.com/permissions"
                )
            else:
                note = "Spotify can't revoke apps' access: remove TimmyBot at https://www.spotify.com/account/apps/"
            lines.append(f"• {platform.label} tokens ({note})")
        lines.extend(f"• your {label}" for label in self.records_deleted)
        lines.extend(f"• the {label}" for label in self.pending_deleted)
        return "\n".join(lines)


class LinkedAccounts:
    def __init__(
        self,
        store: Store,
        vault: Vault,
        google: GoogleDeviceFlow,
        spotify: SpotifyPkce,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._vault = vault
        self._google = google
        self._spotify = spotify
        self._settings = settings
        self._clock = clock
        self._locks: dict[tuple[str, Platform], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @property
    def vault(self) -> Vault:
        return self._vault

    # ------------------------------------------------------------------ YouTube: device flow
    def start_google_link(self, user_id: str) -> DeviceAuthorization:
        """Ask Google for a device code and remember it for the user (replacing any older one)."""
        authorization = self._google.start()
        now = self._clock()
        expires_at = min(authorization.expires_at, now + self._settings.oauth_state_ttl_s)
        record = {
            "user_id": user_id,
            "device_code": authorization.device_code,
            "user_code": authorization.user_code,
            "verification_url": authorization.verification_url,
            "interval_s": authorization.interval_s,
            "expires_at": expires_at,
            "next_poll_at": now + authorization.interval_s,
        }
        self._store.update_record(
            device_pk(user_id), GOOGLE_SK, lambda _current: record, ttl_s=expires_at - now + EXPIRED_NOTICE_GRACE_S
        )
        _log.info("user %s started a YouTube link", user_id)
        return replace(authorization, expires_at=expires_at)

    def pending_google(self, user_id: str) -> PendingDevice | None:
        record = self._store.get_record(device_pk(user_id), GOOGLE_SK)
        if record is None or record["expires_at"] <= self._clock():
            return None
        return PendingDevice(
            user_code=str(record["user_code"]),
            verification_url=str(record["verification_url"]),
            interval_s=int(record["interval_s"]),
            expires_at=float(record["expires_at"]),
        )

    def check_google_link(self, user_id: str) -> None:
        """Poll Google once for the user's pending device code; returns once YouTube is linked.

        Raises AuthorizationPendingError, SlowDownError (the interval grows by 5 s), TooSoonError
        (checked before the interval passed; Google is not asked), AccessDeniedError,
        ExpiredCodeError or NoPendingLinkError, each with its sentence.
        """
        key = device_pk(user_id)
        now = self._clock()
        record = self._store.get_record(key, GOOGLE_SK)
        if record is None:
            raise NoPendingLinkError()
        if record["expires_at"] <= now:
            self._store.delete_record(key, GOOGLE_SK)
            raise ExpiredCodeError()
        if now < record["next_poll_at"]:
            raise TooSoonError(math.ceil(record["next_poll_at"] - now))
        interval = int(record["interval_s"])
        grace = record["expires_at"] - now + EXPIRED_NOTICE_GRACE_S

        def claim(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None or current.get("device_code") != record["device_code"]:
                raise NoPendingLinkError()
            if now < current["next_poll_at"]:  # another click is polling right now
                raise TooSoonError(math.ceil(current["next_poll_at"] - now))
            return {**current, "next_poll_at": now + int(current["interval_s"])}

        self._store.update_record(key, GOOGLE_SK, claim, ttl_s=grace)
        try:
            tokens = self._google.poll(str(record["device_code"]), interval_s=interval)
        except SlowDownError as slow:
            slower = slow.interval_s

            def slow_down(current: dict[str, Any] | None) -> dict[str, Any] | None:
                if current is None:
                    return None
                return {**current, "interval_s": slower, "next_poll_at": now + slower}

            self._store.update_record(key, GOOGLE_SK, slow_down, ttl_s=grace)
            raise
        except (AccessDeniedError, ExpiredCodeError, CodeRejectedError):
            self._store.delete_record(key, GOOGLE_SK)
            raise
        self._vault.put(user_id, Platform.YOUTUBE, tokens)
        self._store.delete_record(key, GOOGLE_SK)
        _log.info("user %s linked YouTube", user_id)

    # ------------------------------------------------------------------ Spotify: PKCE
    def start_spotify_link(self, user_id: str) -> str:
        """A fresh single-use state bound to the user; returns the authorize URL (never log it)."""
        request = self._spotify.new_request()
        now = self._clock()
        ttl = float(self._settings.oauth_state_ttl_s)
        key = state_pk(request.state)
        self._store.update_record(
            key,
            SPOTIFY_STATE_SK,
            lambda _current: {"user_id": user_id, "verifier": request.verifier, "expires_at": now + ttl, "used": False},
            ttl_s=ttl,
        )
        previous = self._store.get_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        self._store.update_record(
            spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK, lambda _current: {"state_key": key}, ttl_s=ttl
        )
        if previous is not None and previous.get("state_key") != key:
            self._store.delete_record(str(previous["state_key"]), SPOTIFY_STATE_SK)
        _log.info("user %s started a Spotify link", user_id)
        return request.url

    def finish_spotify_link(self, state: str, code: str) -> str:
        """The callback: check and spend the state, exchange the code with its verifier, store the
        tokens under the user the state names. Returns that user id."""
        if not state or len(state) > STATE_MAX_LENGTH or not state.isascii():
            raise StateError()
        key = state_pk(state)
        now = self._clock()
        record = self._store.get_record(key, SPOTIFY_STATE_SK)
        if record is None or float(record["expires_at"]) <= now:
            raise StateError()
        if record.get("used"):
            raise StateUsedError()
        user_id = str(record["user_id"])
        pointer = self._store.get_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        if pointer is None:
            raise StateError()
        if pointer.get("state_key") != key:
            raise StateSupersededError()

        def spend(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise StateError()
            if current.get("used"):
                raise StateUsedError()
            return {**current, "used": True}

        self._store.update_record(key, SPOTIFY_STATE_SK, spend, ttl_s=max(1.0, float(record["expires_at"]) - now))
        tokens = self._spotify.exchange(code, str(record["verifier"]))
        self._vault.put(user_id, Platform.SPOTIFY, tokens)
        # Done: nothing of this link stays in the store (a replay now finds no state at all).
        self._store.delete_record(key, SPOTIFY_STATE_SK)
        self._store.delete_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        _log.info("user %s linked Spotify", user_id)
        return user_id

    # ------------------------------------------------------------------ using a link
    def linked_platforms(self, user_id: str) -> list[Platform]:
        return self._vault.platforms(user_id)

    def status(self, user_id: str) -> AccountStatus:
        pointer = self._store.get_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        return AccountStatus(
            linked=tuple(self._vault.platforms(user_id)),
            youtube_pending=self.pending_google(user_id),
            spotify_pending=pointer is not None,
        )

    def access_token(self, user_id: str, platform: Platform) -> str | None:
        """A valid access token for the user's linked ``platform``, or None if not linked."""
        tokens = self._vault.get(user_id, platform)
        if tokens is None:
            return None
        if not tokens.expires_within(self._clock(), REFRESH_MARGIN_S):
            return tokens.access_token
        with self._refresh_lock(user_id, platform):
            current = self._vault.get(user_id, platform)  # another thread may have refreshed meanwhile
            if current is None:
                return None
            if not current.expires_within(self._clock(), REFRESH_MARGIN_S):
                return current.access_token
            try:
                fresh = self._refresh(platform, current)
            except LinkRevokedError:
                latest = self._vault.get(user_id, platform)
                if latest is not None and latest.refresh_token != current.refresh_token:
                    return latest.access_token  # another process rotated it first
                self._vault.delete(user_id, platform)
                _log.info("user %s's %s link was refused at refresh; removed it", user_id, platform.value)
                raise
            self._vault.put(user_id, platform, fresh)
            _log.info("refreshed the %s tokens of user %s", platform.value, user_id)
            return fresh.access_token

    # ------------------------------------------------------------------ unlink / forget-me
    def unlink(self, user_id: str, platform: Platform) -> UnlinkReport:
        """Revoke where the provider allows it (Google), delete the tokens and any pending link."""
        try:
            tokens = self._vault.get(user_id, platform)
        except VaultIntegrityError:
            tokens = None
        revoked: bool | None = None
        if tokens is not None and platform is Platform.YOUTUBE:
            revoked = self._google.revoke(tokens)
        try:
            was_linked = self._vault.delete(user_id, platform)
        except VaultIntegrityError:  # a damaged entry cannot be split by platform: erase it whole
            self._vault.delete_user(user_id)
            was_linked = True
        cancelled = self._delete_pending(user_id, platform)
        _log.info("user %s unlinked %s (revoked=%s)", user_id, platform.value, revoked)
        return UnlinkReport(platform, was_linked=was_linked, revoked=revoked, pending_cancelled=bool(cancelled))

    def forget_me(self, user_id: str) -> ForgetReport:
        """Delete every piece of the user's data: tokens (revoked first where possible), per-user
        records and pending links. Says what was deleted."""
        revoked: list[Platform] = []
        failed: list[Platform] = []
        try:
            youtube = self._vault.get(user_id, Platform.YOUTUBE)
        except VaultIntegrityError:
            youtube = None
        if youtube is not None:
            (revoked if self._google.revoke(youtube) else failed).append(Platform.YOUTUBE)
        deleted = self._vault.delete_user(user_id)
        records = [label for sk, label in USER_RECORDS.items() if self._store.delete_record(user_pk(user_id), sk)]
        pending: list[str] = []
        for platform in Platform:
            pending.extend(self._delete_pending(user_id, platform))
        _log.info(
            "forgot user %s: %d token sets, %d records, %d pending links",
            user_id,
            len(deleted),
            len(records),
            len(pending),
        )
        return ForgetReport(
            tokens_deleted=tuple(deleted),
            revoked=tuple(p for p in revoked if p in deleted),
            revoke_failed=tuple(p for p in failed if p in deleted),
            records_deleted=tuple(records),
            pending_deleted=tuple(pending),
        )

    # ------------------------------------------------------------------ helpers
    def _refresh(self, platform: Platform, tokens: TokenSet) -> TokenSet:
        if platform is Platform.YOUTUBE:
            return self._google.refresh(tokens)
        return self._spotify.refresh(tokens)

    def _delete_pending(self, user_id: str, platform: Platform) -> list[str]:
        label = f"{platform.label} link in progress"
        if platform is Platform.YOUTUBE:
            return [label] if self._store.delete_record(device_pk(user_id), GOOGLE_SK) else []
        pointer = self._store.get_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        if pointer is None:
            return []
        self._store.delete_record(str(pointer["state_key"]), SPOTIFY_STATE_SK)
        self._store.delete_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        return [label]

    @contextmanager
    def _refresh_lock(self, user_id: str, platform: Platform) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault((user_id, platform), threading.Lock())
        with lock:
            yield


def build_linked_accounts(
    settings: Settings, store: Store, vault: Vault, *, clock: Callable[[], float] = time.time
) -> LinkedAccounts:
    """The accounts service from settings (client secrets already loaded: ``load_parameter_secrets(oauth=True)``)."""
    from timmybot.oauth.google import GoogleDeviceFlow  # noqa: PLC0415
    from timmybot.oauth.spotify import SpotifyPkce  # noqa: PLC0415

    return LinkedAccounts(
        store,
        vault,
        GoogleDeviceFlow.from_settings(settings, clock=clock),
        SpotifyPkce.from_settings(settings, clock=clock),
        settings,
        clock=clock,
    )
