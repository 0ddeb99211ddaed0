"""The link key: one api-only secret from which every OAuth secret the store would otherwise hold is
derived or sealed, so that the store (which the voice task and the worker can read) never holds a
usable one.

Sub-keys are HMAC-SHA256(link key, label), one per use, so no two uses share a key:

    PKCE verifier   base64url-no-padding(HMAC-SHA256(verifier key, state)): 43 characters of the
                    RFC 7636 alphabet. Recomputed from the state at the callback, never stored.
    sealed values   AES-256-GCM under the seal key, a random 96-bit nonce, and the record's key
                    (and what the value is) as associated data: a sealed device code or Spotify code
                    opens only in the record it was written to. Opened only when used.
    confirm tokens  the store keeps HMAC-SHA256(confirm key, record key + token), compared in
                    constant time; the token itself exists only in the user's browser.

Where the key comes from: ``Settings.link_key`` (AWS: read from the SSM SecureString that
``link_key_parameter`` names, with the OAuth client secrets), else a local key file (``link_key_path``)
created 0600 on first run, like the local vault's key. Changing the key only ends the links that
are in progress (their verifiers and sealed values no longer match); linked accounts are untouched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from timmybot.accounts import keyfile
from timmybot.config import LINK_KEY_MIN_LENGTH

if TYPE_CHECKING:
    from timmybot.config import Settings

_log = logging.getLogger(__name__)

VERIFIER_LABEL = "timmybot link key v1: pkce verifier"
SEAL_LABEL = "timmybot link key v1: sealed values"
CONFIRM_LABEL = "timmybot link key v1: confirm tokens"
SEAL_PREFIX = "g1."  # version of the sealed format: AES-GCM, 12-byte nonce, base64url
NONCE_BYTES = 12
CONFIRM_TOKEN_BYTES = 32
MAX_SEALED_LENGTH = 4096


class LinkKeyError(ValueError):
    """The link key is missing its protection, too short, or a sealed value does not open with it."""


class SealError(LinkKeyError):
    """A sealed value that does not open: another key, another record, or tampered with."""


def sub_key(link_key: bytes, label: str) -> bytes:
    """A 32-byte key for one use: HMAC-SHA256(link key, label)."""
    return hmac.new(link_key, label.encode("utf-8"), hashlib.sha256).digest()


def pkce_verifier(link_key: bytes, state: str) -> str:
    """The state's code verifier: 43 base64url characters (RFC 7636 §4.1 allows 43 to 128)."""
    digest = hmac.new(sub_key(link_key, VERIFIER_LABEL), state.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def seal(link_key: bytes, plaintext: str, *, bound_to: str) -> str:
    """``plaintext`` encrypted and authenticated; it opens only with the same key and ``bound_to``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415 - account paths only

    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(sub_key(link_key, SEAL_LABEL)).encrypt(nonce, plaintext.encode("utf-8"), bound_to.encode())
    return SEAL_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(link_key: bytes, sealed: object, *, bound_to: str) -> str:
    """The plaintext of ``seal``; raises SealError for anything that does not open (never crashes)."""
    from cryptography.exceptions import InvalidTag  # noqa: PLC0415
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    if not isinstance(sealed, str) or not sealed.startswith(SEAL_PREFIX) or len(sealed) > MAX_SEALED_LENGTH:
        raise SealError("not a sealed value")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(SEAL_PREFIX) :].encode("ascii"))
    except (binascii.Error, ValueError):
        raise SealError("not a sealed value") from None
    if len(raw) <= NONCE_BYTES:
        raise SealError("not a sealed value")
    try:
        plain = AESGCM(sub_key(link_key, SEAL_LABEL)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], bound_to.encode())
    except InvalidTag:
        raise SealError("the sealed value does not open with this key and record") from None
    return plain.decode("utf-8")


def new_confirm_token() -> str:
    """A fresh single-use confirm token (43 base64url characters); only its digest is stored."""
    return secrets.token_urlsafe(CONFIRM_TOKEN_BYTES)


def confirm_digest(link_key: bytes, token: str, *, bound_to: str) -> str:
    """What the store keeps of a confirm token: HMAC-SHA256(confirm key, ``bound_to`` NUL token), hex."""
    message = bound_to.encode("utf-8") + b"\0" + token.encode("utf-8")
    return hmac.new(sub_key(link_key, CONFIRM_LABEL), message, hashlib.sha256).hexdigest()


def confirm_matches(link_key: bytes, token: str, stored: object, *, bound_to: str) -> bool:
    """Constant-time check of a presented token against the stored digest."""
    if not isinstance(stored, str) or not stored:
        return False
    return hmac.compare_digest(confirm_digest(link_key, token, bound_to=bound_to), stored)


def key_bytes(value: str) -> bytes:
    """A configured link key as HMAC key bytes; refuses a short one."""
    text = value.strip()
    if len(text) < LINK_KEY_MIN_LENGTH:
        raise LinkKeyError(f"The link key must be at least {LINK_KEY_MIN_LENGTH} characters.")
    return text.encode("utf-8")


def load_or_create_key_file(path: Path) -> bytes:
    """The key in ``path``, created (mode 0600, exclusively) if the file does not exist."""
    raw = keyfile.read_or_create(
        path, lambda: secrets.token_urlsafe(32).encode("ascii"), label="link key", error=LinkKeyError
    )
    return key_bytes(raw.decode("utf-8"))


def resolve(settings: Settings) -> bytes:
    """The link key of these settings: the value (loaded from SSM in AWS), else the local key file."""
    if settings.link_key:
        return key_bytes(settings.link_key)
    return load_or_create_key_file(settings.link_key_path)
