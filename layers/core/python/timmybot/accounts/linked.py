"""Linked accounts: linking YouTube (Google device flow) and Spotify (PKCE), fresh access tokens,
/unlink and /forget-me — domain functions over the Store, the Vault and the two OAuth clients.

Store keys: ``timmybot.store.keys`` lists each record kind this module keeps (the per-user records,
the Google device code, the Spotify state and latest-state pointer) with its lifetime; tokens
themselves are only ever in the vault. The store never holds a usable OAuth secret: what would be
one is sealed or derived with the link key (``timmybot.accounts.oauth.link_key``), which only the api has.
The device code and the user code are sealed (AES-GCM, bound to their key); the Spotify flow, and
what its state record holds, is ``spotify_link``; the records answered are in ``records``.

/forget-me deletes exactly the registry's per-user kinds (``keys.forget_me_kinds()``).

``access_token(user_id, platform)`` is the API the personal commands use: a valid access token
(refreshed when within 60 s of expiry, the rotated refresh token stored), or None when the user has
not linked that platform. It raises ``LinkRevokedError`` (after removing the dead link) when the
provider refused the refresh, and ``ProviderUnavailableError`` when it could not be reached.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from timmybot.accounts.oauth.errors import (
    AccessDeniedError,
    CodeRejectedError,
    ExpiredCodeError,
    LinkRevokedError,
    NoPendingLinkError,
    PendingLinkUnreadableError,
    SlowDownError,
    TooSoonError,
)
from timmybot.accounts.oauth.link_key import (
    SealError,
    seal,
    unseal,
)
from timmybot.accounts.records import (
    AccountStatus,
    DiscordAccount,
    ForgetReport,
    PendingDevice,
    SpotifyReview,
    UnlinkReport,
    YouTubeIdentity,
)
from timmybot.accounts.spotify_link import SpotifyLinking
from timmybot.accounts.vault.base import Platform, TokenSet, Vault, VaultIntegrityError
from timmybot.store import keys
from timmybot.store.keys import (
    SPOTIFY_POINTER_SK,
    SPOTIFY_STATE_SK,
    device_pk,
    spotify_pointer_pk,
    user_pk,
)

if TYPE_CHECKING:
    from timmybot.accounts.oauth.google import DeviceAuthorization, GoogleDeviceFlow
    from timmybot.accounts.oauth.spotify import SpotifyPkce
    from timmybot.config import Settings
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 60.0
USER_RECORDS: dict[str, str] = {kind.sk: kind.forget_me for kind in keys.forget_me_kinds()}
GOOGLE_SK = keys.GOOGLE_DEVICE_SK
CHANNEL_LOOKUP_TIMEOUT_S = 1.0  # channels.list after a YouTube link, inside Discord's 3 s with the poll
EXPIRED_NOTICE_GRACE_S = 3600  # a spent device record lingers this long so "expired" can be told apart


class LinkedAccounts:
    def __init__(
        self,
        store: Store,
        vault: Vault,
        google: GoogleDeviceFlow,
        spotify: SpotifyPkce,
        settings: Settings,
        *,
        link_key: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._link_key = link_key
        self._vault = vault
        self._google = google
        self._spotify = spotify
        self._settings = settings
        self._clock = clock
        self._locks: dict[tuple[str, Platform], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._spotify_link = SpotifyLinking(store, vault, spotify, settings, link_key=link_key, clock=clock)

    @property
    def vault(self) -> Vault:
        return self._vault

    # ------------------------------------------------------------------ YouTube: device flow
    def start_google_link(self, user_id: str) -> DeviceAuthorization:
        """Ask Google for a device code and remember it for the user (replacing any older one)."""
        authorization = self._google.start()
        now = self._clock()
        expires_at = min(authorization.expires_at, now + self._settings.oauth_state_ttl_s)
        key = device_pk(user_id)
        record = {
            "user_id": user_id,
            # Sealed: the device code completes the link at Google; the user code would let anyone who
            # reads the store approve their own Google account onto this user's pending link.
            "device_code": seal(self._link_key, authorization.device_code, bound_to=f"{key} device_code"),
            "user_code": seal(self._link_key, authorization.user_code, bound_to=f"{key} user_code"),
            "verification_url": authorization.verification_url,
            "interval_s": authorization.interval_s,
            "expires_at": expires_at,
            "next_poll_at": now + authorization.interval_s,
        }
        self._store.update_record(
            key, GOOGLE_SK, lambda _current: record, ttl_s=expires_at - now + EXPIRED_NOTICE_GRACE_S
        )
        _log.info("user %s started a YouTube link", user_id)
        return replace(authorization, expires_at=expires_at)

    def pending_google(self, user_id: str) -> PendingDevice | None:
        key = device_pk(user_id)
        record = self._store.get_record(key, GOOGLE_SK)
        if record is None or record["expires_at"] <= self._clock():
            return None
        try:
            user_code = unseal(self._link_key, record.get("user_code"), bound_to=f"{key} user_code")
        except SealError:
            return None  # sealed under another link key: check_google_link says what to do
        return PendingDevice(
            user_code=user_code,
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
        try:
            device_code = unseal(self._link_key, record.get("device_code"), bound_to=f"{key} device_code")
        except SealError:
            self._store.delete_record(key, GOOGLE_SK)
            _log.info("user %s's pending YouTube link does not open with the link key; removed it", user_id)
            raise PendingLinkUnreadableError() from None

        def claim(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None or current.get("device_code") != record["device_code"]:
                raise NoPendingLinkError()
            if now < current["next_poll_at"]:  # another click is polling right now
                raise TooSoonError(math.ceil(current["next_poll_at"] - now))
            return {**current, "next_poll_at": now + int(current["interval_s"])}

        self._store.update_record(key, GOOGLE_SK, claim, ttl_s=grace)
        try:
            tokens = self._google.poll(device_code, interval_s=interval)
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

    # ------------------------------------------------------------------ Spotify: PKCE (spotify_link)
    def start_spotify_link(self, user_id: str, account: DiscordAccount) -> str:
        """A fresh single-use state bound to the user; returns the authorize URL (never log it)."""
        return self._spotify_link.start(user_id, account)

    def review_spotify_link(self, state: str, code: str) -> SpotifyReview:
        """The callback GET: check the state and hold the code until the confirm (``SpotifyLinking``)."""
        return self._spotify_link.review(state, code)

    def confirm_spotify_link(self, sealed_state: str, token: str) -> str:
        """The confirm POST: spend the state, exchange the code, store the tokens; the user id."""
        return self._spotify_link.confirm(sealed_state, token)

    # ------------------------------------------------------------------ using a link
    def youtube_identity(self, user_id: str) -> YouTubeIdentity:
        """The linked Google account's YouTube channel name (``channels.list?mine=true``, 1 quota unit).
        Never raises: a failed lookup is ``known=False`` and the link stands."""
        from timmybot.library.youtube_data import YouTubeDataClient  # noqa: PLC0415 - only after a YouTube link

        try:
            token = self.access_token(user_id, Platform.YOUTUBE)
            if token is None:
                return YouTubeIdentity(known=False)
            client = YouTubeDataClient(
                token, api_url=self._settings.youtube_api_url, timeout_s=CHANNEL_LOOKUP_TIMEOUT_S
            )
            return YouTubeIdentity(known=True, channel_title=client.own_channel_title())
        except Exception as exc:  # the link is made; the name is a courtesy
            _log.warning("could not name user %s's YouTube channel: %s", user_id, type(exc).__name__)
            return YouTubeIdentity(known=False)

    def linked_platforms(self, user_id: str) -> list[Platform]:
        return self._vault.platforms(user_id)

    def status(self, user_id: str) -> AccountStatus:
        pointer = self._store.get_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        return AccountStatus(
            linked=tuple(self._vault.platforms(user_id)),
            youtube_pending=self.pending_google(user_id),
            spotify_pending=pointer is not None and not pointer.get("settled"),
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
        from timmybot.controls import forget_in_guilds  # noqa: PLC0415

        unnamed = forget_in_guilds(self._store, user_id)
        from timmybot.playlists.forget import forget_user  # noqa: PLC0415

        playlists_deleted, server_playlists_kept = forget_user(self._store, user_id)
        records = [label for sk, label in USER_RECORDS.items() if self._store.delete_record(user_pk(user_id), sk)]
        pending: list[str] = []
        for platform in Platform:
            pending.extend(self._delete_pending(user_id, platform))
        _log.info(
            "forgot user %s: %d token sets, %d records, %d pending links, named in %d guild history entries",
            user_id,
            len(deleted),
            len(records),
            len(pending),
            unnamed,
        )
        return ForgetReport(
            tokens_deleted=tuple(deleted),
            revoked=tuple(p for p in revoked if p in deleted),
            revoke_failed=tuple(p for p in failed if p in deleted),
            records_deleted=tuple(records),
            pending_deleted=tuple(pending),
            playlists_deleted=playlists_deleted,
            server_playlists_kept=server_playlists_kept,
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
        return [] if pointer.get("settled") else [label]  # a finished link's leftovers are not "in progress"

    @contextmanager
    def _refresh_lock(self, user_id: str, platform: Platform) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault((user_id, platform), threading.Lock())
        with lock:
            yield


def build_linked_accounts(
    settings: Settings, store: Store, vault: Vault, *, clock: Callable[[], float] = time.time
) -> LinkedAccounts:
    """The accounts service from settings (client secrets and the link key already loaded:
    ``load_parameter_secrets(oauth=True)``; without a link key, the local key file is used)."""
    from timmybot.accounts.oauth import link_key  # noqa: PLC0415
    from timmybot.accounts.oauth.google import GoogleDeviceFlow  # noqa: PLC0415
    from timmybot.accounts.oauth.spotify import SpotifyPkce  # noqa: PLC0415

    key = link_key.resolve(settings)
    return LinkedAccounts(
        store,
        vault,
        GoogleDeviceFlow.from_settings(settings, clock=clock),
        SpotifyPkce.from_settings(settings, link_key=key, clock=clock),
        settings,
        link_key=key,
        clock=clock,
    )
