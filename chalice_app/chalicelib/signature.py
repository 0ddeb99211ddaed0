"""Ed25519 request verification (Discord signs ``timestamp + raw body`` with the application key)."""

from __future__ import annotations

import binascii
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nacl.signing import VerifyKey

_log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature-Ed25519"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_BYTES = 64
MAX_TIMESTAMP_CHARS = 32


class SignatureVerifier:
    """Checks one request's signature; the VerifyKey is built once and reused.

    An empty or invalid public key rejects every request (and says so once in the log) rather than
    failing the whole function: Discord must see 401s, never 500s, for unverifiable requests.
    With ``max_age_s`` set (the settings' default is 300 s), a timestamp older than that, or more
    than ``max_future_s`` ahead, is refused like a bad signature: that is what stops replays.
    """

    def __init__(
        self,
        public_key_hex: str,
        *,
        max_age_s: int = 0,
        max_future_s: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._public_key_hex = public_key_hex
        self._max_age_s = max_age_s
        self._max_future_s = max_future_s
        self._clock = clock
        self._key: VerifyKey | None = None
        self._key_loaded = False

    def _verify_key(self) -> VerifyKey | None:
        if not self._key_loaded:
            self._key_loaded = True
            from nacl.signing import VerifyKey  # noqa: PLC0415 - keep `import app` light

            try:
                self._key = VerifyKey(bytes.fromhex(self._public_key_hex))
            except (ValueError, TypeError):
                _log.error("TIMMYBOT_DISCORD_PUBLIC_KEY is missing or not a 64-hex-digit key: rejecting every request")
                self._key = None
        return self._key

    def verify(self, signature_hex: str | None, timestamp: str | None, body: bytes) -> bool:
        if not signature_hex or not timestamp or len(timestamp) > MAX_TIMESTAMP_CHARS:
            return False
        if len(signature_hex) != SIGNATURE_BYTES * 2:
            return False
        try:
            signature = binascii.unhexlify(signature_hex)
        except (binascii.Error, ValueError):
            return False
        if self._max_age_s and not self._fresh(timestamp):
            return False
        key = self._verify_key()
        if key is None:
            return False
        from nacl.exceptions import BadSignatureError  # noqa: PLC0415 - already loaded with VerifyKey

        try:
            key.verify(timestamp.encode("utf-8") + body, signature)
        except BadSignatureError:
            return False
        return True

    def _fresh(self, timestamp: str) -> bool:
        """Signed at most ``max_age_s`` ago and at most ``max_future_s`` ahead of our clock.

        Discord signs ``timestamp + body``: a captured request stays valid forever unless its age is
        checked, and the interaction-id dedupe only remembers ids for ``dedupe_ttl_s`` (kept at or
        above this window by the settings' validation), so a replay is refused either way."""
        if not timestamp.isdigit():
            return False
        age = self._clock() - int(timestamp)
        return -self._max_future_s <= age <= self._max_age_s
