"""The guild allowlist: a version-controlled file (one id per line, ``#`` comments) plus settings.

The pure text functions (``parse``, ``add``, ``remove``) are shared with ``scripts/allowlist.py``
so the script and the endpoint can never read the file differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from timmybot.config import Settings, is_snowflake

DEFAULT_FILE = Path(__file__).with_name("allowlist.txt")


class AllowlistError(ValueError):
    """The file holds something that is not a guild id; the message names the line."""


def _id_of(line: str) -> str:
    return line.split("#", 1)[0].strip()


def parse(text: str) -> list[str]:
    """Guild ids in file order; raises AllowlistError on a line that is not a snowflake."""
    ids: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        guild_id = _id_of(line)
        if not guild_id:
            continue
        if not is_snowflake(guild_id):
            raise AllowlistError(f"line {number}: {guild_id!r} is not a Discord guild id")
        ids.append(guild_id)
    return ids


def add(text: str, guild_id: str, *, comment: str = "") -> tuple[str, bool]:
    """``text`` with ``guild_id`` appended (comments kept); False if it was already listed."""
    _require_snowflake(guild_id)
    if guild_id in parse(text):
        return text, False
    note = " ".join(comment.split())  # one line, whatever was typed
    line = f"{guild_id}  # {note}" if note else guild_id
    if text and not text.endswith("\n"):
        text += "\n"
    return f"{text}{line}\n", True


def remove(text: str, guild_id: str) -> tuple[str, bool]:
    """``text`` without the line(s) listing ``guild_id``; False if it was not listed."""
    _require_snowflake(guild_id)
    kept = [line for line in text.splitlines(keepends=True) if _id_of(line) != guild_id]
    new_text = "".join(kept)
    return new_text, new_text != text


def _require_snowflake(guild_id: str) -> None:
    if not is_snowflake(guild_id):
        raise AllowlistError(f"{guild_id!r} is not a Discord guild id (a snowflake: 17 to 20 digits)")


@dataclass(frozen=True)
class Allowlist:
    guild_ids: frozenset[str]
    allow_all: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Allowlist:
        if settings.allowlist_file:  # configured explicitly: a missing file is an error
            text = Path(settings.allowlist_file).read_text(encoding="utf-8")
        else:
            text = DEFAULT_FILE.read_text(encoding="utf-8") if DEFAULT_FILE.exists() else ""
        listed = parse(text)
        return cls(frozenset(listed) | frozenset(settings.allowlist_extra), settings.allow_all_guilds)

    def allows(self, guild_id: str | None) -> bool:
        """DMs (no guild) are never allowed: commands are registered guild-only."""
        if not guild_id:
            return False
        return self.allow_all or guild_id in self.guild_ids
