"""Rate limits per user and per guild, kept in the store so every Lambda container shares them.

Each limit is a sliding window: a record holds the times of the last ``count`` accepted calls
within ``window_s``. A call is accepted while fewer than ``count`` are in the window, and otherwise
told how long until the oldest leaves it. The record expires with its window (the store's TTL), so
an idle user costs nothing. Refused calls are not recorded: hammering does not extend the wait.

The record is the registry's "rate window" (``timmybot.store.keys``), written with
``Store.update_record`` (compare-and-swap), so two containers cannot both take the last slot.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from timmybot.config import Settings, parse_rate
from timmybot.errors import TimmyError
from timmybot.store.keys import RATE_SK, rate_pk

_log = logging.getLogger(__name__)

Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]


class RecordStore(Protocol):
    """The one call of ``timmybot.store.Store`` a limit needs."""

    def update_record(
        self, pk: str, sk: str, change: Change, *, ttl_s: float | None = None
    ) -> dict[str, Any] | None: ...


class RateLimitedError(TimmyError):
    """Over a limit: the sentence names the wait."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = max(1, math.ceil(wait_s))
        super().__init__(f"Slow down: try again in {self.wait_s} s.")


@dataclass(frozen=True, slots=True)
class Limit:
    """``count`` calls per ``window_s`` seconds for one bucket and scope (``user`` or ``guild``)."""

    bucket: str
    scope: str
    count: int
    window_s: int

    @classmethod
    def of(cls, bucket: str, scope: str, rate: str) -> Limit:
        count, window_s = parse_rate(rate)
        return cls(bucket, scope, count, window_s)

    @property
    def off(self) -> bool:
        return self.count <= 0


def rate_key(limit: Limit, subject: str) -> str:
    return rate_pk(limit.bucket, limit.scope, subject)


def take(store: RecordStore, limit: Limit, subject: str, *, now: float) -> float:
    """Take one slot of ``limit`` for ``subject``; 0 when taken, else the seconds to wait."""
    if limit.off or not subject:
        return 0.0
    wait = 0.0

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        nonlocal wait
        hits = _recent(current, now, limit.window_s)
        if len(hits) >= limit.count:
            wait = hits[0] + limit.window_s - now
            return current  # refused: nothing written
        wait = 0.0
        return {"hits": [*hits[-(limit.count - 1) :], round(now, 3)] if limit.count > 1 else [round(now, 3)]}

    store.update_record(rate_key(limit, subject), RATE_SK, change, ttl_s=limit.window_s + 1)
    return max(0.0, wait)


def check(store: RecordStore, limits: Iterable[tuple[Limit, str]], *, now: float) -> None:
    """Take a slot of every ``(limit, subject)``; raise ``RateLimitedError`` with the longest wait.

    Limits are taken in order and the first refusal stops: a user over their own limit does not use
    up their guild's. (A slot taken before a later refusal stays taken; the windows are short.)"""
    for limit, subject in limits:
        wait = take(store, limit, subject, now=now)
        if wait > 0:
            _log.info("rate limit %s/%s reached; wait %.1f s", limit.bucket, limit.scope, wait)
            raise RateLimitedError(wait)


def command_limits(settings: Settings, bucket: str, *, user_id: str, guild_id: str) -> list[tuple[Limit, str]]:
    """The limits one command of ``bucket`` is held to, with the subject each is counted for."""
    user_rate = {
        "play": settings.rate_play_user,
        "personal": settings.rate_personal_user,
        "link": settings.rate_link_user,
        "check": settings.rate_check_user,
        "search": settings.rate_search_user,
        "lyrics": settings.rate_lyrics_user,
        "autocomplete": settings.rate_autocomplete_user,
    }[bucket]
    limits = [(Limit.of(bucket, "user", user_rate), user_id)]
    if bucket == "play":
        limits.append((Limit.of(bucket, "guild", settings.rate_play_guild), guild_id))
    return limits


def _recent(current: dict[str, Any] | None, now: float, window_s: int) -> list[float]:
    raw = (current or {}).get("hits")
    if not isinstance(raw, list):
        return []
    hits = []
    for value in raw:
        try:
            moment = float(value)
        except (TypeError, ValueError):
            continue
        if now - window_s < moment <= now + 1:
            hits.append(moment)
    return sorted(hits)
