"""The local vault: a SQLite file whose rows are Fernet-encrypted documents (self-hosting, tests).

The key lives in its own file, created on first run with mode 0600 (owner read/write only) and
never printed. A key file that others can read is refused, as ssh refuses such a private key.
The vault's database is a separate file from the store's: the voice task, which reads the store,
never gets this file or the key.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from timmybot.accounts import keyfile
from timmybot.accounts.vault.base import Document, Vault, VaultError, VaultIntegrityError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

_log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vault (
    user_id    TEXT PRIMARY KEY,
    ciphertext BLOB NOT NULL,
    revision   INTEGER NOT NULL,
    updated_at REAL NOT NULL
)
"""


class VaultKeyError(VaultError):
    """The key file is missing its protection (readable by others) or is not a Fernet key."""


def load_or_create_key(path: Path) -> bytes:
    """The Fernet key in ``path``, created (mode 0600, exclusively) if the file does not exist."""
    from cryptography.fernet import Fernet  # noqa: PLC0415 - only where tokens are handled

    key = keyfile.read_or_create(path, Fernet.generate_key, label="vault key", error=VaultKeyError)
    try:
        Fernet(key)
    except ValueError as exc:
        raise VaultKeyError(f"The vault key file {path} does not hold a Fernet key.") from exc
    return key


class LocalVault(Vault):
    def __init__(self, path: str | Path, key_file: str | Path, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        import time  # noqa: PLC0415

        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._key_file = Path(key_file)
        self._fernet_instance: Fernet | None = None
        self._clock = clock or time.time
        self._local = threading.local()
        with self._connection() as connection:
            connection.execute(_SCHEMA)

    @property
    def path(self) -> Path:
        return self._path

    def _fernet(self) -> Fernet:
        if self._fernet_instance is None:
            from cryptography.fernet import Fernet  # noqa: PLC0415

            self._fernet_instance = Fernet(load_or_create_key(self._key_file))
        return self._fernet_instance

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._local.connection = connection
        return connection

    def _read(self, user_id: str) -> tuple[Document, Any] | None:
        from cryptography.fernet import InvalidToken  # noqa: PLC0415

        row = (
            self._connection()
            .execute("SELECT ciphertext, revision FROM vault WHERE user_id = ?", (user_id,))
            .fetchone()
        )
        if row is None:
            return None
        try:
            document = json.loads(self._fernet().decrypt(bytes(row[0])))
        except (InvalidToken, ValueError) as exc:
            raise VaultIntegrityError() from exc
        if not isinstance(document, dict):
            raise VaultIntegrityError()
        return document, int(row[1])

    def _write(self, user_id: str, document: Document, revision: Any) -> bool:
        ciphertext = self._fernet().encrypt(json.dumps(document, separators=(",", ":")).encode())
        now = float(self._clock())
        connection = self._connection()
        if revision is None:
            cursor = connection.execute(
                "INSERT INTO vault (user_id, ciphertext, revision, updated_at) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (user_id) DO NOTHING",
                (user_id, ciphertext, now),
            )
        else:
            cursor = connection.execute(
                "UPDATE vault SET ciphertext = ?, revision = revision + 1, updated_at = ? "
                "WHERE user_id = ? AND revision = ?",
                (ciphertext, now, user_id, int(revision)),
            )
        return cursor.rowcount == 1

    def _erase(self, user_id: str) -> None:
        self._connection().execute("DELETE FROM vault WHERE user_id = ?", (user_id,))

    def close(self) -> None:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
