"""The link key's derivations (issue 14): PKCE verifiers from the state, sealed values bound to their
record, confirm-token digests, and the local key file (0600, like the vault's)."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import pytest

from timmybot.accounts.oauth import link_key
from timmybot.accounts.oauth.spotify import code_challenge
from timmybot.config import Settings, SettingsError

KEY = b"k" * 43
OTHER_KEY = b"o" * 43
RFC7636_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def test_the_verifier_is_43_rfc7636_characters_derived_from_the_state() -> None:
    verifier = link_key.pkce_verifier(KEY, "state-1")

    assert RFC7636_VERIFIER.match(verifier) and len(verifier) == 43
    assert link_key.pkce_verifier(KEY, "state-1") == verifier  # recomputed at the callback
    assert link_key.pkce_verifier(KEY, "state-2") != verifier
    assert link_key.pkce_verifier(OTHER_KEY, "state-1") != verifier
    assert len(code_challenge(verifier)) == 43


def test_each_use_has_its_own_sub_key() -> None:
    labels = (link_key.VERIFIER_LABEL, link_key.SEAL_LABEL, link_key.CONFIRM_LABEL)

    keys = {link_key.sub_key(KEY, label) for label in labels}

    assert len(keys) == 3 and all(len(key) == 32 for key in keys) and KEY not in keys


def test_a_sealed_value_opens_only_with_its_key_and_its_record() -> None:
    sealed = link_key.seal(KEY, "tbfakedevice_secret", bound_to="O#device#1 device_code")

    assert "tbfakedevice" not in sealed and sealed.startswith(link_key.SEAL_PREFIX)
    assert link_key.unseal(KEY, sealed, bound_to="O#device#1 device_code") == "tbfakedevice_secret"
    assert link_key.seal(KEY, "tbfakedevice_secret", bound_to="x") != link_key.seal(
        KEY, "tbfakedevice_secret", bound_to="x"
    )  # a fresh nonce each time
    raw = bytearray(base64.urlsafe_b64decode(sealed[len(link_key.SEAL_PREFIX) :]))
    raw[20] ^= 1  # one bit of the ciphertext
    tampered = link_key.SEAL_PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode()
    for key, value, bound in (
        (OTHER_KEY, sealed, "O#device#1 device_code"),  # the key changed
        (KEY, sealed, "O#device#2 device_code"),  # copied into another user's record
        (KEY, sealed, "O#device#1 user_code"),  # copied into another field
        (KEY, tampered, "O#device#1 device_code"),
        (KEY, "tbfakedevice_secret", "O#device#1 device_code"),  # a record from before sealing
        (KEY, "g1.!!!", "O#device#1 device_code"),
        (KEY, "g1.", "O#device#1 device_code"),
        (KEY, None, "O#device#1 device_code"),
    ):
        with pytest.raises(link_key.SealError):
            link_key.unseal(key, value, bound_to=bound)


def test_a_confirm_token_matches_only_its_own_digest_and_record() -> None:
    token = link_key.new_confirm_token()
    digest = link_key.confirm_digest(KEY, token, bound_to="O#state#a")

    assert token not in digest and len(token) >= 43
    assert link_key.confirm_matches(KEY, token, digest, bound_to="O#state#a")
    assert not link_key.confirm_matches(KEY, token, digest, bound_to="O#state#b")
    assert not link_key.confirm_matches(KEY, link_key.new_confirm_token(), digest, bound_to="O#state#a")
    assert not link_key.confirm_matches(OTHER_KEY, token, digest, bound_to="O#state#a")
    assert not link_key.confirm_matches(KEY, token, None, bound_to="O#state#a")


def test_the_local_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path))

    first = link_key.resolve(settings)

    path = tmp_path / "link.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and link_key.resolve(settings) == first
    assert link_key.resolve(Settings(data_dir=str(tmp_path), link_key="v" * 40)) == b"v" * 40


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.key"
    path.write_text("x" * 43)
    path.chmod(0o644)

    with pytest.raises(link_key.LinkKeyError, match="chmod 600"):
        link_key.resolve(Settings(link_key_file=str(path)))


def test_a_short_link_key_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="link_key"):
        Settings.from_env({"TIMMYBOT_LINK_KEY": "too-short"})
