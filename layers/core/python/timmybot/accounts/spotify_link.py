"""Linking Spotify (authorization code with PKCE, and a confirm page): single-use states in the
store, the code held sealed between the callback and the confirm, the tokens into the vault.

The state's record holds no verifier (it is derived from the state), and after the callback only
the sealed code, the confirm token's HMAC and the deadline, then only the outcome.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from timmybot.accounts.oauth.errors import (
    CodeRejectedError,
    ConfirmExpiredError,
    ConfirmRefusedError,
    ProviderUnavailableError,
    StateError,
    StateSupersededError,
    StateUsedError,
)
from timmybot.accounts.oauth.link_key import SealError, confirm_digest, confirm_matches, new_confirm_token, seal, unseal
from timmybot.accounts.records import CONFIRM_WINDOW_S, DiscordAccount, SpotifyReview
from timmybot.accounts.vault.base import Platform, Vault
from timmybot.store.keys import SPOTIFY_POINTER_SK, SPOTIFY_STATE_SK, spotify_pointer_pk, state_pk
from timmybot.text import cap

if TYPE_CHECKING:
    from timmybot.accounts.oauth.spotify import SpotifyPkce
    from timmybot.config import Settings
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

STATE_MAX_LENGTH = 200
CONFIRM_TOKEN_MAX_LENGTH = 128
SEALED_FORM_MAX_LENGTH = 1024
CONFIRM_FORM_CONTEXT = "spotify confirm form"  # what the page's sealed state is bound to (never a record key)
NAME_MAX_LENGTH = 64  # Discord's names are at most 32 characters; more is not a Discord name
_OUTCOME_WAIT_S = 0.05
_CONFIRM_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
EXPIRED_NOTICE_GRACE_S = 3600  # a spent state lingers this long so "expired" can be told apart


class SpotifyLinking:
    """The Spotify half of ``LinkedAccounts``: start, review (the callback GET), confirm (the POST)."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        spotify: SpotifyPkce,
        settings: Settings,
        *,
        link_key: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._vault = vault
        self._spotify = spotify
        self._settings = settings
        self._link_key = link_key
        self._clock = clock

    def start(self, user_id: str, account: DiscordAccount) -> str:
        """A fresh single-use state bound to the user; returns the authorize URL (never log it, never
        store it: the reply that carries it is not saved for Discord's retries either)."""
        request = self._spotify.new_request()  # its verifier is derived from the state: nothing to keep
        now = self._clock()
        ttl = float(self._settings.oauth_state_ttl_s)
        key = state_pk(request.state)
        record = {
            "user_id": user_id,
            "display_name": cap(account.display_name, NAME_MAX_LENGTH),
            "username": cap(account.username, NAME_MAX_LENGTH),
            "expires_at": now + ttl,
            "used": False,
        }
        self._store.update_record(key, SPOTIFY_STATE_SK, lambda _current: record, ttl_s=ttl)
        previous = self._store.get_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        self._store.update_record(
            spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK, lambda _current: {"state_key": key}, ttl_s=ttl
        )
        if previous is not None and previous.get("state_key") != key:
            self._store.delete_record(str(previous["state_key"]), SPOTIFY_STATE_SK)
        _log.info("user %s started a Spotify link", user_id)
        return request.url

    def review(self, state: str, code: str) -> SpotifyReview:
        """The callback GET: check the state (known, unexpired, unused, the user's newest), keep the
        code sealed with a fresh confirm token's HMAC, and say whose Discord account it links.
        Nothing is exchanged and nothing is linked until ``confirm``."""
        if not state or len(state) > STATE_MAX_LENGTH or not state.isascii():
            raise StateError()
        key = state_pk(state)
        now = self._clock()
        record = self._live_state(key, now)
        user_id = str(record["user_id"])
        token = new_confirm_token()
        confirm_by = now + CONFIRM_WINDOW_S
        sealed_code = seal(self._link_key, code, bound_to=f"{key} code")
        digest = confirm_digest(self._link_key, token, bound_to=key)

        def hold(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise StateError()
            if current.get("used") or current.get("outcome"):
                raise StateUsedError()
            # A reload issues a new token and replaces the older page's: the newest page confirms.
            return {**current, "code": sealed_code, "confirm_digest": digest, "confirm_by": confirm_by}

        ttl = max(float(record["expires_at"]) - now, CONFIRM_WINDOW_S + EXPIRED_NOTICE_GRACE_S)
        self._store.update_record(key, SPOTIFY_STATE_SK, hold, ttl_s=ttl)
        self._store.update_record(
            spotify_pointer_pk(user_id),
            SPOTIFY_POINTER_SK,
            lambda current: {**(current or {}), "state_key": key},
            ttl_s=ttl,
        )
        _log.info("user %s's Spotify approval came back; waiting for the confirm", user_id)
        account = DiscordAccount(str(record.get("display_name") or ""), str(record.get("username") or ""))
        return SpotifyReview(
            account=account,
            sealed_state=seal(self._link_key, state, bound_to=CONFIRM_FORM_CONTEXT),
            confirm_token=token,
            confirm_by=confirm_by,
        )

    def confirm(self, sealed_state: str, token: str) -> str:
        """The confirm POST: the page's sealed state and its single-use token. Spends the state,
        exchanges the code (the verifier recomputed from the state) and stores the tokens under the
        user the state names. Returns that user id. A second submit of the same page answers the
        first one's outcome (a link is made once); a confirm after the deadline is refused."""
        if not isinstance(token, str) or not _CONFIRM_TOKEN_RE.match(token):
            raise ConfirmRefusedError()
        if not sealed_state or len(sealed_state) > SEALED_FORM_MAX_LENGTH:
            raise ConfirmRefusedError()
        try:
            state = unseal(self._link_key, sealed_state, bound_to=CONFIRM_FORM_CONTEXT)
        except SealError:
            raise ConfirmRefusedError() from None
        key = state_pk(state)
        record = self._store.get_record(key, SPOTIFY_STATE_SK)
        if record is None:
            raise StateError()
        if not confirm_matches(self._link_key, token, record.get("confirm_digest"), bound_to=key):
            raise ConfirmRefusedError()
        user_id = str(record["user_id"])
        if record.get("outcome") or record.get("used"):
            return self._outcome(key, user_id)
        now = self._clock()
        if now > float(record.get("confirm_by") or 0):
            self._drop_state(key, user_id)
            raise ConfirmExpiredError()
        pointer = self._store.get_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        if pointer is None or pointer.get("state_key") != key:
            raise StateSupersededError()

        def spend(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise StateError()
            if not confirm_matches(self._link_key, token, current.get("confirm_digest"), bound_to=key):
                raise ConfirmRefusedError()  # a reload replaced this page's token meanwhile
            if current.get("used") or current.get("outcome"):
                raise _AlreadySpentError()
            return {**current, "used": True}

        ttl = CONFIRM_WINDOW_S + EXPIRED_NOTICE_GRACE_S
        try:
            spent = self._store.update_record(key, SPOTIFY_STATE_SK, spend, ttl_s=ttl)
        except _AlreadySpentError:
            return self._outcome(key, user_id)  # a concurrent submit of the same page won the race
        if spent is None:
            raise StateError()
        try:
            code = unseal(self._link_key, spent.get("code"), bound_to=f"{key} code")
        except SealError:
            self._drop_state(key, user_id)
            raise StateError() from None
        try:
            tokens = self._spotify.exchange(code, state=state)
        except (CodeRejectedError, ProviderUnavailableError):
            self._settle(key, user_id, record, "failed")
            raise
        self._vault.put(user_id, Platform.SPOTIFY, tokens)
        self._settle(key, user_id, record, "linked")
        _log.info("user %s linked Spotify", user_id)
        return user_id

    def _live_state(self, key: str, now: float) -> dict[str, Any]:
        """The state record, if it may still be used: known, unexpired, unused and its user's newest."""
        record = self._store.get_record(key, SPOTIFY_STATE_SK)
        if record is None or float(record["expires_at"]) <= now:
            raise StateError()
        if record.get("used") or record.get("outcome"):
            raise StateUsedError()
        pointer = self._store.get_record(spotify_pointer_pk(str(record["user_id"])), SPOTIFY_POINTER_SK)
        if pointer is None:
            raise StateError()
        if pointer.get("state_key") != key:
            raise StateSupersededError()
        return record

    def _settle(self, key: str, user_id: str, record: dict[str, Any], outcome: str) -> None:
        """Keep only what a double submit needs: whose link, the token's HMAC, the outcome (no code)."""
        settled = {
            "user_id": user_id,
            "confirm_digest": record.get("confirm_digest"),
            "outcome": outcome,
            "used": True,
            "expires_at": record.get("expires_at"),
        }
        ttl = float(CONFIRM_WINDOW_S)
        self._store.update_record(key, SPOTIFY_STATE_SK, lambda _current: settled, ttl_s=ttl)
        self._store.update_record(
            spotify_pointer_pk(user_id),
            SPOTIFY_POINTER_SK,
            lambda current: {**(current or {}), "state_key": key, "settled": True},
            ttl_s=ttl,
        )

    def _outcome(self, key: str, user_id: str) -> str:
        """A repeated confirm: the first one's outcome, waiting (briefly) while it is still exchanging."""
        deadline = time.monotonic() + 2 * self._settings.oauth_timeout_s + 1.0
        while True:
            record = self._store.get_record(key, SPOTIFY_STATE_SK)
            outcome = record.get("outcome") if record is not None else None
            if outcome == "linked":
                _log.info("user %s's Spotify confirm was repeated; already linked", user_id)
                return user_id
            if outcome is not None or record is None or time.monotonic() >= deadline:
                raise StateUsedError()
            time.sleep(_OUTCOME_WAIT_S)

    def _drop_state(self, key: str, user_id: str) -> None:
        self._store.delete_record(key, SPOTIFY_STATE_SK)
        pointer = self._store.get_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)
        if pointer is not None and pointer.get("state_key") == key:
            self._store.delete_record(spotify_pointer_pk(user_id), SPOTIFY_POINTER_SK)


class _AlreadySpentError(Exception):
    """Inside the spend update: another confirm of the same page spent the state first."""
