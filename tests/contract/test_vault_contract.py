"""The token vault contract: ONE suite, run against every adapter.

GIVEN a vault (local Fernet SQLite file; Secrets Manager on moto; DynamoDB + KMS on moto)
THEN tokens round-trip, overwrite, delete one platform or the whole user, list platforms, are
encrypted at rest (the raw bytes an operator or a backup sees hold no token), and an entry moved
to another user is refused rather than handed out.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from timmybot.accounts.vault import Platform, TokenSet, Vault, VaultIntegrityError, build_vault
from timmybot.accounts.vault.local import LocalVault, VaultKeyError, load_or_create_key
from timmybot.accounts.vault.schema import create_token_table
from timmybot.config import Settings

REGION = "us-east-1"
TABLE = "timmybot-tokens-contract"
ALICE = "100000000000000001"
BOB = "100000000000000002"


@dataclass
class VaultKit:
    vault: Vault
    raw: Callable[[], bytes]  # everything the backend keeps, as an operator (or a backup) would see it
    move_entry: Callable[[str, str], None]  # copy one user's stored entry under another user's id


def _tokens(tag: str = "") -> TokenSet:
    return TokenSet(
        access_token=f"access-{tag}{secrets.token_hex(12)}",
        refresh_token=f"refresh-{tag}{secrets.token_hex(12)}",
        expires_at=1_800_000_000.0,
        scope="scope-a scope-b",
    )


def _local_kit(tmp_path: Path) -> VaultKit:
    settings = Settings(data_dir=str(tmp_path), vault_backend="local")
    vault = build_vault(settings)
    assert isinstance(vault, LocalVault)

    def raw() -> bytes:
        return b"".join(p.read_bytes() for p in tmp_path.glob("vault.sqlite3*"))

    def move(source: str, target: str) -> None:
        with sqlite3.connect(vault.path) as connection:
            connection.execute(
                "INSERT OR REPLACE INTO vault (user_id, ciphertext, revision, updated_at) "
                "SELECT ?, ciphertext, revision, updated_at FROM vault WHERE user_id = ?",
                (target, source),
            )

    return VaultKit(vault, raw, move)


def _secretsmanager_kit() -> VaultKit:
    client = boto3.client("secretsmanager", region_name=REGION)
    vault = build_vault(Settings(vault_backend="secretsmanager"), secretsmanager=client)

    def raw() -> bytes:
        # Secrets Manager encrypts every secret VALUE with KMS itself; what stays readable is the
        # metadata (names, descriptions, tags), which ListSecrets and DescribeSecret return.
        listed = client.list_secrets()["SecretList"]
        described = [client.describe_secret(SecretId=s["Name"]) for s in listed]
        return json.dumps([listed, described], default=str).encode()

    def move(source: str, target: str) -> None:
        value = client.get_secret_value(SecretId=f"/timmybot/users/{source}/oauth")["SecretString"]
        client.create_secret(Name=f"/timmybot/users/{target}/oauth", SecretString=value)

    return VaultKit(vault, raw, move)


def _kms_kit() -> VaultKit:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    kms = boto3.client("kms", region_name=REGION)
    create_token_table(dynamodb, TABLE)
    key_arn = kms.create_key(Description="tokens")["KeyMetadata"]["Arn"]
    settings = Settings(vault_backend="kms", token_table=TABLE, token_key_arn=key_arn)
    vault = build_vault(settings, dynamodb=dynamodb, kms=kms)

    def raw() -> bytes:
        return json.dumps(dynamodb.scan(TableName=TABLE)["Items"], default=repr).encode()

    def move(source: str, target: str) -> None:
        item = dynamodb.get_item(TableName=TABLE, Key={"user_id": {"S": source}})["Item"]
        dynamodb.put_item(TableName=TABLE, Item={**item, "user_id": {"S": target}})

    return VaultKit(vault, raw, move)


@pytest.fixture(params=["local", "secretsmanager", "kms"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VaultKit]:
    if request.param == "local":
        local = _local_kit(tmp_path)
        yield local
        assert isinstance(local.vault, LocalVault)
        local.vault.close()
        return
    with mock_aws():
        yield _secretsmanager_kit() if request.param == "secretsmanager" else _kms_kit()


def test_tokens_round_trip(kit: VaultKit) -> None:
    tokens = _tokens()

    kit.vault.put(ALICE, Platform.SPOTIFY, tokens)

    assert kit.vault.get(ALICE, Platform.SPOTIFY) == tokens
    assert kit.vault.get(ALICE, Platform.YOUTUBE) is None
    assert kit.vault.get(BOB, Platform.SPOTIFY) is None


def test_a_second_put_overwrites_and_keeps_the_other_platform(kit: VaultKit) -> None:
    youtube, first, second = _tokens("yt"), _tokens("one"), _tokens("two")
    kit.vault.put(ALICE, Platform.YOUTUBE, youtube)
    kit.vault.put(ALICE, Platform.SPOTIFY, first)

    kit.vault.put(ALICE, Platform.SPOTIFY, second)

    assert kit.vault.get(ALICE, Platform.SPOTIFY) == second
    assert kit.vault.get(ALICE, Platform.YOUTUBE) == youtube


def test_platforms_lists_what_the_user_linked(kit: VaultKit) -> None:
    assert kit.vault.platforms(ALICE) == []

    kit.vault.put(ALICE, Platform.SPOTIFY, _tokens())
    kit.vault.put(ALICE, Platform.YOUTUBE, _tokens())
    kit.vault.put(BOB, Platform.YOUTUBE, _tokens())

    assert kit.vault.platforms(ALICE) == [Platform.YOUTUBE, Platform.SPOTIFY]
    assert kit.vault.platforms(BOB) == [Platform.YOUTUBE]


def test_delete_removes_one_platform_only(kit: VaultKit) -> None:
    kit.vault.put(ALICE, Platform.SPOTIFY, _tokens())
    kit.vault.put(ALICE, Platform.YOUTUBE, _tokens())

    assert kit.vault.delete(ALICE, Platform.SPOTIFY) is True
    assert kit.vault.delete(ALICE, Platform.SPOTIFY) is False

    assert kit.vault.platforms(ALICE) == [Platform.YOUTUBE]


def test_deleting_the_last_platform_leaves_no_entry(kit: VaultKit) -> None:
    tokens = _tokens()
    kit.vault.put(ALICE, Platform.SPOTIFY, tokens)

    kit.vault.delete(ALICE, Platform.SPOTIFY)

    assert kit.vault.platforms(ALICE) == []
    assert ALICE.encode() not in kit.raw()


def test_delete_user_erases_everything_and_says_what_it_held(kit: VaultKit) -> None:
    kit.vault.put(ALICE, Platform.SPOTIFY, _tokens())
    kit.vault.put(ALICE, Platform.YOUTUBE, _tokens())
    kit.vault.put(BOB, Platform.SPOTIFY, _tokens())

    assert kit.vault.delete_user(ALICE) == [Platform.YOUTUBE, Platform.SPOTIFY]

    assert kit.vault.platforms(ALICE) == []
    assert kit.vault.get(ALICE, Platform.SPOTIFY) is None
    assert kit.vault.platforms(BOB) == [Platform.SPOTIFY]
    assert kit.vault.delete_user(ALICE) == []
    assert ALICE.encode() not in kit.raw()


def test_tokens_are_encrypted_at_rest(kit: VaultKit) -> None:
    tokens = _tokens()

    kit.vault.put(ALICE, Platform.SPOTIFY, tokens)
    raw = kit.raw()

    assert raw  # the backend holds something
    assert tokens.access_token.encode() not in raw
    assert tokens.refresh_token is not None and tokens.refresh_token.encode() not in raw
    assert b"access-" not in raw and b"refresh-" not in raw


def test_an_entry_moved_to_another_user_is_refused(kit: VaultKit) -> None:
    kit.vault.put(ALICE, Platform.SPOTIFY, _tokens())

    kit.move_entry(ALICE, BOB)

    with pytest.raises(VaultIntegrityError):
        kit.vault.get(BOB, Platform.SPOTIFY)
    assert kit.vault.delete_user(BOB) == []  # a damaged entry can still be erased
    assert kit.vault.get(ALICE, Platform.SPOTIFY) is not None


def test_repr_shows_no_token() -> None:
    tokens = _tokens()

    assert tokens.access_token not in repr(tokens)
    assert tokens.refresh_token is not None and tokens.refresh_token not in repr(tokens)


# -- adapter-specific guarantees ------------------------------------------------------------------


def test_kms_data_keys_are_bound_to_the_user_by_the_encryption_context() -> None:
    with mock_aws():
        kit = _kms_kit()
        kit.vault.put(ALICE, Platform.YOUTUBE, _tokens())
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        kms = boto3.client("kms", region_name=REGION)
        item = dynamodb.get_item(TableName=TABLE, Key={"user_id": {"S": ALICE}})["Item"]

        assert kms.decrypt(CiphertextBlob=item["wrapped_key"]["B"], EncryptionContext={"user_id": ALICE})["Plaintext"]
        with pytest.raises(kms.exceptions.InvalidCiphertextException):
            kms.decrypt(CiphertextBlob=item["wrapped_key"]["B"], EncryptionContext={"user_id": BOB})
        assert set(item) == {"user_id", "ciphertext", "wrapped_key", "updated_at"}


def test_secretsmanager_keeps_one_secret_per_user_at_the_agreed_name() -> None:
    with mock_aws():
        kit = _secretsmanager_kit()
        kit.vault.put(ALICE, Platform.YOUTUBE, _tokens())
        kit.vault.put(ALICE, Platform.SPOTIFY, _tokens())
        client = boto3.client("secretsmanager", region_name=REGION)

        names = [s["Name"] for s in client.list_secrets()["SecretList"]]

        assert names == [f"/timmybot/users/{ALICE}/oauth"]
        kit.vault.delete_user(ALICE)
        assert client.list_secrets()["SecretList"] == []  # deleted without a recovery window


def test_the_local_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "vault.key"

    first = load_or_create_key(key_file)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_key(key_file) == first


def test_a_local_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "vault.key"
    load_or_create_key(key_file)
    key_file.chmod(0o644)

    with pytest.raises(VaultKeyError, match="chmod 600"):
        load_or_create_key(key_file)


def test_the_local_vault_reads_nothing_with_another_key(tmp_path: Path) -> None:
    vault = LocalVault(tmp_path / "vault.sqlite3", tmp_path / "vault.key")
    vault.put(ALICE, Platform.SPOTIFY, _tokens())
    vault.close()
    (tmp_path / "vault.key").unlink()

    other = LocalVault(tmp_path / "vault.sqlite3", tmp_path / "vault.key")

    with pytest.raises(VaultIntegrityError):
        other.get(ALICE, Platform.SPOTIFY)
    other.close()
