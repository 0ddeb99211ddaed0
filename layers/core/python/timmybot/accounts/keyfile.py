"""Local key files: created once, exclusively, mode 0600; refused when others can read them.

The local vault's Fernet key and the local link key both live in such a file under the data
directory (in AWS neither exists: KMS or Secrets Manager, and an SSM parameter, stand in).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

_log = logging.getLogger(__name__)

KEY_FILE_MODE = 0o600


def read_or_create(path: Path, make: Callable[[], bytes], *, label: str, error: type[Exception]) -> bytes:
    """The key in ``path`` (stripped), or ``make()`` written there first when the file is new.

    ``label`` names the key in messages ("vault key"); ``error`` is raised when the file is readable
    by other users."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise error(
                f"The {label} file {path} can be read by other users (mode {mode:o}); run chmod 600 on it."
            ) from None
        return path.read_bytes().strip()
    key = make()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key + b"\n")
    _log.info("created the local %s file %s (mode 600)", label, path)
    return key
