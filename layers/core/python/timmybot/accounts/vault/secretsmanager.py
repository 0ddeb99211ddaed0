"""The Secrets Manager vault: one secret per user, ``/timmybot/users/{user_id}/oauth``.

The secret's value is the user's JSON token document; Secrets Manager encrypts it at rest with
KMS. Only the value is secret: the name (the Discord user id) and the description are metadata
and carry no token. The IAM policy allows secrets under ``/timmybot/users/`` and nothing else.

Forget-me and the last /unlink delete the secret with ``ForceDeleteWithoutRecovery`` (no 7–30 day
recovery window, and no $0.40/month for an empty secret). Secrets Manager has no conditional write,
so concurrent writes for ONE user are serialised within a process only; two containers refreshing
the same user's tokens in the same instant could lose one rotated Spotify refresh token (the user
then links again). Pick the KMS vault if that matters to you.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from timmybot import redaction
from timmybot.accounts.vault.base import Document, Vault, VaultError

_log = logging.getLogger(__name__)

DEFAULT_PREFIX = "/timmybot/users/"
DESCRIPTION = "TimmyBot: one Discord user's OAuth tokens (JSON). Deleted by /forget-me."
_ABSENT = ("ResourceNotFoundException",)


class SecretsManagerVault(Vault):
    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        client: Any | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        super().__init__()
        self._prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._client_instance = client
        self._region_name = region_name
        self._endpoint_url = endpoint_url or None
        self._client_lock = threading.Lock()
        redaction.install()

    def secret_name(self, user_id: str) -> str:
        return f"{self._prefix}{user_id}/oauth"

    def _client(self) -> Any:
        if self._client_instance is None:
            with self._client_lock:
                if self._client_instance is None:
                    import boto3  # noqa: PLC0415 - heavy; only when no client was injected

                    self._client_instance = boto3.session.Session().client(
                        "secretsmanager", region_name=self._region_name, endpoint_url=self._endpoint_url
                    )
        return self._client_instance

    def _read(self, user_id: str) -> tuple[Document, Any] | None:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            answer = self._client().get_secret_value(SecretId=self.secret_name(user_id))
        except ClientError as exc:
            code = _code(exc)
            if code in _ABSENT:
                return None
            if code == "InvalidRequestException":  # deleted a moment ago, not yet gone
                return None
            _log.warning("reading the vault secret of user %s failed: %s", user_id, code)
            raise VaultError() from exc
        try:
            document = json.loads(answer["SecretString"])
        except (KeyError, ValueError) as exc:
            raise VaultError() from exc
        return (document, answer.get("VersionId")) if isinstance(document, dict) else None

    def _write(self, user_id: str, document: Document, revision: Any) -> bool:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        text = json.dumps(document, separators=(",", ":"))
        name = self.secret_name(user_id)
        client = self._client()
        try:
            if revision is None:
                client.create_secret(Name=name, Description=DESCRIPTION, SecretString=text)
            else:
                client.put_secret_value(SecretId=name, SecretString=text)
        except ClientError as exc:
            code = _code(exc)
            if code == "ResourceExistsException":
                return False  # created meanwhile: read again and retry
            if code in _ABSENT and revision is not None:
                return False  # deleted meanwhile
            if code == "InvalidRequestException":
                _log.warning("the vault secret of user %s is still being deleted", user_id)
                raise VaultError(
                    "Your previous account data is still being deleted. Please try again in a minute."
                ) from exc
            _log.warning("writing the vault secret of user %s failed: %s", user_id, code)
            raise VaultError() from exc
        return True

    def _erase(self, user_id: str) -> None:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            self._client().delete_secret(SecretId=self.secret_name(user_id), ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if _code(exc) in _ABSENT:
                return
            _log.warning("deleting the vault secret of user %s failed: %s", user_id, _code(exc))
            raise VaultError() from exc


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__
