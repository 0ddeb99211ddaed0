"""DynamoDB's item size limit, counted as DynamoDB counts it, for every Store adapter.

A record that DynamoDB would refuse must be refused locally too (SQLite, memory), or a test and the
local bot would pass where the deployed bot fails. Sizes follow DynamoDB's published rules:
attribute names and strings count their UTF-8 bytes, a number about one byte per two significant
digits plus one, a boolean or null one byte, and a map or list 3 bytes plus 1 per element.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from timmybot.errors import TimmyError

ITEM_SIZE_LIMIT = 400 * 1024
# What every stored item carries beside its data (see ``schema``): the version, the TTL, the index flag
_NUMBER_MAX = 21
_FIXED_ATTRIBUTES = sum(map(len, ("pk", "sk", "data", "version", "expires_at", "active"))) + 2 * _NUMBER_MAX + 1


class ItemTooLargeError(TimmyError):
    user_message = "That's more than I can keep in one record. Try with fewer or shorter items."


def value_size(value: Any) -> int:
    """The size DynamoDB charges for ``value`` stored as an attribute value."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, int | float):
        digits = len(repr(abs(value)).replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if isinstance(value, Mapping):
        return 3 + sum(len(str(name).encode()) + value_size(item) + 1 for name, item in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(value_size(item) + 1 for item in value)
    raise TypeError(f"Cannot store a {type(value).__name__}")


def item_size(key: tuple[str, str], data: Mapping[str, Any]) -> int:
    return value_size(key[0]) + value_size(key[1]) + value_size(data) + _FIXED_ATTRIBUTES


def check_item_size(key: tuple[str, str], data: Mapping[str, Any]) -> None:
    """Raise ``ItemTooLargeError`` for an item DynamoDB would refuse (over 400 KB)."""
    size = item_size(key, data)
    if size > ITEM_SIZE_LIMIT:
        raise ItemTooLargeError
