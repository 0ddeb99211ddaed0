"""A user's own preferences (/preferences): plain functions over the Store.

One small record per user (``U#{user}`` / ``PREFS``, see ``timmybot.store.keys``):

- ``platform``: the source searched first for that user's /play and /search queries (a name of the
  operator's ``source_chain``; None keeps the operator's order);
- ``autoplay``: what /autoplay starts at in a session that user begins (default on);
- ``notify``: the now-playing card pings the requester when their own track starts (default off);
- ``quality``: ``high`` streams the best Opus format a source offers, ``data-saver`` caps the bitrate.

The record expires ``PREFS_TTL_S`` (30 days) after the user was last active: saving refreshes it,
and so does using the bot (``touch``), at most once every ``TOUCH_EVERY_S`` so a busy user costs one
write a day, not one per track. An expired record reads as absent, before the table's own TTL
deletes it. /forget-me deletes it (the registry marks the kind ``forget_me``).

Records written before this module held only ``{"autoplay": bool}``; every field is optional and a
value this release does not know is read as its default.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from timmybot.errors import InvalidInputError
from timmybot.store.keys import PREFS_SK, user_pk

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from timmybot.models import QueueEntry
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

PREFS_TTL_S = 30 * 24 * 3600
TOUCH_EVERY_S = 24 * 3600
#: The platforms a user may put first (chain names), and what they read.
PLATFORMS: dict[str, str] = {"youtube": "YouTube", "ytmusic": "YouTube Music", "soundcloud": "SoundCloud"}


class Quality(enum.Enum):
    HIGH = "high"
    DATA_SAVER = "data-saver"


QUALITY_LABELS = {Quality.HIGH: "high (the best Opus stream)", Quality.DATA_SAVER: "data-saver (lower bitrate)"}


@dataclass(frozen=True)
class Preferences:
    """What one user chose; the defaults for anything they never set."""

    platform: str | None = None
    autoplay: bool = True
    notify: bool = False
    quality: Quality = Quality.HIGH
    active_at: float = 0.0  # when the user was last seen (the record's refresh)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "autoplay": self.autoplay,
            "notify": self.notify,
            "quality": self.quality.value,
            "active_at": round(self.active_at, 3),
        }
        if self.platform is not None:
            data["platform"] = self.platform
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preferences:
        platform = data.get("platform")
        try:
            quality = Quality(data.get("quality", Quality.HIGH.value))
        except ValueError:
            quality = Quality.HIGH
        autoplay = data.get("autoplay", True)
        notify = data.get("notify", False)
        active = data.get("active_at", 0.0)
        return cls(
            platform=platform if isinstance(platform, str) and platform in PLATFORMS else None,
            autoplay=autoplay if isinstance(autoplay, bool) else True,
            notify=notify if isinstance(notify, bool) else False,
            quality=quality,
            active_at=float(active) if isinstance(active, int | float) else 0.0,
        )


def stored(store: Store, user_id: str) -> Preferences | None:
    """The user's saved preferences, or None when they have none (never saved, expired or forgotten)."""
    try:
        data = store.get_record(user_pk(user_id), PREFS_SK)
    except Exception:
        _log.warning("preferences of user %s unreadable; using the defaults", user_id, exc_info=True)
        return None
    return Preferences.from_dict(data) if data is not None else None


def load(store: Store, user_id: str) -> Preferences:
    """The user's preferences, the defaults where they saved none."""
    return stored(store, user_id) or Preferences()


def save(store: Store, user_id: str, change: Callable[[Preferences], Preferences], *, now: float) -> Preferences:
    """Apply ``change`` to the user's preferences (the defaults if none) and keep them 30 more days."""
    written: list[Preferences] = []

    def update(current: dict[str, Any] | None) -> dict[str, Any]:
        prefs = replace(change(Preferences.from_dict(current or {})), active_at=now)
        written[:] = [prefs]
        return prefs.to_dict()

    store.update_record(user_pk(user_id), PREFS_SK, update, ttl_s=PREFS_TTL_S)
    return written[0]


def touch(store: Store, user_id: str, *, now: float) -> Preferences | None:
    """The user was active: their saved preferences (None if they have none), refreshed for another
    30 days when the last refresh is over a day old. Never creates a record; a failure is logged."""
    prefs = stored(store, user_id)
    if prefs is None or now - prefs.active_at < TOUCH_EVERY_S:
        return prefs
    try:
        return save(store, user_id, lambda current: current, now=now)
    except Exception:
        _log.warning("could not refresh the preferences of user %s", user_id, exc_info=True)
        return prefs


def parse_platform(value: str, chain: tuple[str, ...]) -> str | None:
    """A platform the user asked for: a chain name, or "default" (None: the operator's order)."""
    if value == "default":
        return None
    if value not in PLATFORMS:
        raise InvalidInputError("The platform must be YouTube, YouTube Music or SoundCloud.")
    if value not in chain:
        raise InvalidInputError(f"{PLATFORMS[value]} isn't one of the sources this bot uses, so it can't go first.")
    return value


def parse_quality(value: str) -> Quality:
    try:
        return Quality(value)
    except ValueError:
        raise InvalidInputError("The quality must be `high` or `data-saver`.") from None


def source_order(chain: tuple[str, ...], platform: str | None) -> tuple[str, ...]:
    """The operator's chain with the user's platform moved first (where the chain has it)."""
    if platform is None or platform not in chain:
        return chain
    return (platform, *(name for name in chain if name != platform))


def describe(prefs: Preferences | None, chain: tuple[str, ...]) -> str:
    """What /preferences shows: each setting and what it does."""
    current = prefs or Preferences()
    if current.platform in chain:
        platform = f"{PLATFORMS[current.platform or '']} first, then the usual order"
    else:
        platform = "the bot's usual order (" + ", ".join(PLATFORMS.get(n, n) for n in chain if n in PLATFORMS) + ")"
    lines = [
        "**Your preferences** (only you see these)",
        f"Preferred platform: {platform}",
        "Auto-queue when you start a session: "
        + (("on" if current.autoplay else "off") if prefs is not None else "the server's /autoplay setting"),
        f"Ping me when my track starts: {'on' if current.notify else 'off'}",
        f"Quality: {QUALITY_LABELS[current.quality]}",
    ]
    if prefs is None:
        lines.append(
            "You haven't saved any: change one with the options of /preferences "
            "(auto-queue then starts on unless you turn it off)."
        )
    else:
        lines.append("Kept 30 days after you last use TimmyBot; /forget-me deletes them.")
    return "\n".join(lines)


# ---------------------------------------------------------------------- applying them (worker)
def stamp(entries: Sequence[QueueEntry], prefs: Preferences | None) -> list[QueueEntry]:
    """The requester's ping and quality on each of their entries (the voice task reads no user records)."""
    if prefs is None or (not prefs.notify and prefs.quality is Quality.HIGH):
        return list(entries)
    quality = "" if prefs.quality is Quality.HIGH else prefs.quality.value
    return [replace(entry, notify=prefs.notify, quality=quality) for entry in entries]


def start_session(store: Store, guild_id: str, prefs: Preferences | None) -> None:
    """A session this user began: /autoplay starts at their auto-queue preference (saved ones only:
    without any, the guild keeps its own setting). A failure is logged, the music still starts."""
    if prefs is None:
        return
    try:
        store.set_autoplay(guild_id, prefs.autoplay)
    except Exception:
        _log.warning("could not apply the auto-queue preference in guild %s", guild_id, exc_info=True)
