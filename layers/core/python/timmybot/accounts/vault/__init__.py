"""The token vault: the port and its three adapters; ``build_vault`` picks one from the settings.

Importing this package imports neither boto3 nor cryptography: each adapter imports them when it
first handles a token. Only the api and the worker build a vault (lazily, for account commands);
the voice task never does, and its IAM role cannot read any of the three backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from timmybot.accounts.vault.base import Platform, TokenSet, Vault, VaultError, VaultIntegrityError
from timmybot.accounts.vault.schema import token_table_definition

if TYPE_CHECKING:
    from timmybot.config import Settings


def build_vault(
    settings: Settings,
    *,
    dynamodb: Any | None = None,
    kms: Any | None = None,
    secretsmanager: Any | None = None,
    clock: Callable[[], float] | None = None,
) -> Vault:
    """The vault named by ``settings.vault_backend``; injected boto3 clients replace built ones."""
    import time  # noqa: PLC0415

    now = clock or time.time
    region = settings.aws_region or None
    endpoint = settings.aws_endpoint_url or None
    if settings.vault_backend == "local":
        from timmybot.accounts.vault.local import LocalVault  # noqa: PLC0415

        return LocalVault(settings.vault_database_path, settings.vault_key_path, clock=now)
    if settings.vault_backend == "secretsmanager":
        from timmybot.accounts.vault.secretsmanager import SecretsManagerVault  # noqa: PLC0415

        return SecretsManagerVault(
            prefix=settings.user_secret_prefix, client=secretsmanager, region_name=region, endpoint_url=endpoint
        )
    if settings.vault_backend == "kms":
        from timmybot.accounts.vault.kms import KmsVault  # noqa: PLC0415

        return KmsVault(
            settings.token_table,
            settings.token_key_arn,
            dynamodb=dynamodb,
            kms=kms,
            region_name=region,
            endpoint_url=endpoint,
            clock=now,
        )
    raise ValueError(f"Unknown vault backend {settings.vault_backend!r}")


__all__ = [
    "Platform",
    "TokenSet",
    "Vault",
    "VaultError",
    "VaultIntegrityError",
    "build_vault",
    "token_table_definition",
]
