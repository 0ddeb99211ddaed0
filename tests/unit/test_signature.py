"""GIVEN Discord's Ed25519 scheme WHEN the verifier checks a request THEN only a true signature passes."""

from __future__ import annotations

import pytest
from discord_interactions import verify_key
from nacl.signing import SigningKey

from chalicelib.signature import SignatureVerifier

BODY = b'{"type":1}'
STAMP = "1700000000"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


def _sign(key: SigningKey, body: bytes = BODY, stamp: str = STAMP) -> str:
    return key.sign(stamp.encode() + body).signature.hex()


def test_true_signature_is_accepted_and_discord_interactions_agrees(key: SigningKey) -> None:
    public = key.verify_key.encode().hex()
    signature = _sign(key)
    assert SignatureVerifier(public).verify(signature, STAMP, BODY)
    assert verify_key(BODY, signature, STAMP, public)


@pytest.mark.parametrize(
    ("signature", "stamp", "body"),
    [
        (None, STAMP, BODY),
        ("", STAMP, BODY),
        ("SIG", None, BODY),
        ("SIG", "", BODY),
        ("SIG", STAMP, BODY + b" "),
        ("SIG", "1700000001", BODY),
        ("zz" * 64, STAMP, BODY),
        ("ab" * 63, STAMP, BODY),
        ("ab" * 65, STAMP, BODY),
        ("SIG", "1" * 100, BODY),
    ],
    ids=[
        "no-sig",
        "empty-sig",
        "no-stamp",
        "empty-stamp",
        "tampered-body",
        "tampered-stamp",
        "non-hex",
        "short",
        "long",
        "huge-stamp",
    ],
)
def test_broken_requests_are_rejected(key: SigningKey, signature: str | None, stamp: str | None, body: bytes) -> None:
    real = _sign(key)
    verifier = SignatureVerifier(key.verify_key.encode().hex())
    assert not verifier.verify(real if signature == "SIG" else signature, stamp, body)


def test_signature_from_another_key_is_rejected(key: SigningKey) -> None:
    other = SigningKey.generate()
    assert not SignatureVerifier(key.verify_key.encode().hex()).verify(_sign(other), STAMP, BODY)


@pytest.mark.parametrize("public", ["", "not-hex", "ab" * 31])
def test_missing_or_invalid_public_key_rejects_everything(key: SigningKey, public: str) -> None:
    assert not SignatureVerifier(public).verify(_sign(key), STAMP, BODY)


def test_max_age_rejects_old_timestamps_and_accepts_fresh_ones(key: SigningKey) -> None:
    verifier = SignatureVerifier(key.verify_key.encode().hex(), max_age_s=60, clock=lambda: 1700000030.0)
    assert verifier.verify(_sign(key), STAMP, BODY)
    old = "1699990000"
    assert not verifier.verify(_sign(key, stamp=old), old, BODY)
