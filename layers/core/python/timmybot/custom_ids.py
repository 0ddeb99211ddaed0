"""Component custom ids: the one place that builds and parses them.

Format: ``v1:<kind>:<fields…>``, ASCII, at most 100 characters (Discord's limit)::

    v1:queue:page:3     the queue embed's ◀ ▶ buttons (1-based page)
    v1:np:pause         the now-playing buttons: pause (toggles), skip, stop
    v1:np:skip
    v1:np:stop

Anything else — another version, an unknown kind, extra or missing fields, a page outside
1..MAX_PAGE, non-ASCII — raises ``InvalidCustomIdError``: custom ids come back from clients and
are treated as untrusted input.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from timmybot.errors import InvalidInputError

VERSION = "v1"
MAX_LENGTH = 100
MAX_PAGE = 1000  # 5000 entries (the highest queue cap) / 10 per page, with room to spare

_PAGE_RE = re.compile(r"[1-9][0-9]{0,3}")


class InvalidCustomIdError(InvalidInputError):
    user_message = "That button no longer works (it may be from an older message). Run the command again."


class NowPlayingAction(enum.StrEnum):
    PAUSE = "pause"  # toggles pause / resume
    SKIP = "skip"
    STOP = "stop"


@dataclass(frozen=True)
class QueuePageId:
    page: int


@dataclass(frozen=True)
class NowPlayingId:
    action: NowPlayingAction


CustomId = QueuePageId | NowPlayingId


def build(custom_id: CustomId) -> str:
    if isinstance(custom_id, QueuePageId):
        if not 1 <= custom_id.page <= MAX_PAGE:
            raise ValueError(f"queue page out of range: {custom_id.page}")
        raw = f"{VERSION}:queue:page:{custom_id.page}"
    else:
        raw = f"{VERSION}:np:{custom_id.action.value}"
    assert len(raw) <= MAX_LENGTH
    return raw


def queue_page(page: int) -> str:
    return build(QueuePageId(page))


def now_playing(action: NowPlayingAction) -> str:
    return build(NowPlayingId(action))


def parse(raw: object) -> CustomId:
    """The custom id ``raw`` names; raises InvalidCustomIdError for anything we did not build."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_LENGTH or not raw.isascii():
        raise InvalidCustomIdError()
    parts = raw.split(":")
    if parts[0] != VERSION:
        raise InvalidCustomIdError()
    match parts[1:]:
        case ["queue", "page", page] if _PAGE_RE.fullmatch(page) and int(page) <= MAX_PAGE:
            return QueuePageId(int(page))
        case ["np", action] if action in NowPlayingAction._value2member_map_:
            return NowPlayingId(NowPlayingAction(action))
        case _:
            raise InvalidCustomIdError()
