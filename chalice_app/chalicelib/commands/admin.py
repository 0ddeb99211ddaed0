"""/settings: the guild's own playback settings, for members with Manage Server.

One subcommand per part, so the command stays far inside Discord's 25 options a level::

    /settings show
    /settings dj role <role> | dj clear-role | dj only <enabled> [adding]
    /settings vote-skip [enabled] [percent]
    /settings playback 24-7 <enabled> | playback idle-timeout <minutes> | playback lyrics <enabled>
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.commands.base import Command, CommandContext, Option, group, subcommand
from chalicelib.replies import Reply
from timmybot.discord.types import OptionType, Permission
from timmybot.errors import InvalidInputError, PermissionDeniedError
from timmybot.models import GuildRecord, GuildSettings
from timmybot.store.base import Store


def _describe(record_settings: GuildSettings, ctx: CommandContext) -> str:
    idle = record_settings.idle_timeout_s or ctx.settings.idle_timeout_s
    lines = [
        f"DJ role: {f'<@&{record_settings.dj_role_id}>' if record_settings.dj_role_id else 'none'}",
        f"Vote-skip: {'on' if record_settings.vote_skip else 'off'} "
        f"(with 3+ listeners a skip needs more than {record_settings.vote_skip_percent}% of them)",
        f"DJ-only: {_dj_only_text(record_settings)}",
        f"24/7: {'on' if record_settings.twenty_four_seven else 'off'}",
        f"Idle timeout: {idle // 60} min",
        f"Lyrics in the now-playing card: {'on' if record_settings.lyrics_in_card else 'off'}",
    ]
    return "\n".join(lines)


def _dj_only_text(record_settings: GuildSettings) -> str:
    if not record_settings.dj_only:
        return "off (listeners in my channel control playback)"
    who = f"<@&{record_settings.dj_role_id}>" if record_settings.dj_role_id else "Manage Server (no DJ role set)"
    adding = "adding too" if record_settings.dj_only_adding else "anyone may still add tracks"
    return f"on: only {who} controls playback, no votes ({adding})"


SHOW = "show"
DJ_ROLE = "dj role"
DJ_CLEAR_ROLE = "dj clear-role"
DJ_ONLY = "dj only"
VOTE_SKIP = "vote-skip"
STAY = "playback 24-7"
IDLE_TIMEOUT = "playback idle-timeout"
LYRICS_IN_CARD = "playback lyrics"
USAGE = (
    "Choose what to change: `/settings show`, `/settings dj role|clear-role|only`, `/settings vote-skip` or "
    "`/settings playback 24-7|idle-timeout|lyrics`."
)


def settings(ctx: CommandContext, store: Store) -> Reply:
    """/settings show, or one subcommand that changes one part (each checked, then one write)."""
    if not ctx.is_manager():
        raise PermissionDeniedError("Only members with the Manage Server permission can change TimmyBot's settings.")
    if ctx.subcommand == SHOW:
        record = store.get_guild(ctx.guild_id)
        return Reply.private("Current settings:\n" + _describe(record.settings, ctx))
    changes = _changes(ctx)

    def change(record: GuildRecord) -> GuildRecord:
        return record.evolve(settings=replace(record.settings, **changes))  # type: ignore[arg-type]

    record = store.update_guild(ctx.guild_id, change)
    return Reply.private("Settings saved:\n" + _describe(record.settings, ctx))


def _bool(ctx: CommandContext, name: str) -> bool:
    value = ctx.options.get(name)
    if not isinstance(value, bool | int):
        raise InvalidInputError(f"`{name}` must be true or false.")
    return bool(value)


def _changes(ctx: CommandContext) -> dict[str, object]:
    """What one subcommand changes; a sentence for anything Discord would not have sent."""
    changes: dict[str, object] = {}
    if ctx.subcommand == DJ_ROLE:
        role = ctx.options.get("role")
        if not isinstance(role, str) or not role.isdigit():
            raise InvalidInputError("Pick the DJ role from the list (`role`).")
        changes["dj_role_id"] = role
    elif ctx.subcommand == DJ_CLEAR_ROLE:
        changes["dj_role_id"] = None
    elif ctx.subcommand == DJ_ONLY:
        changes["dj_only"] = _bool(ctx, "enabled")
        if "adding" in ctx.options:
            changes["dj_only_adding"] = _bool(ctx, "adding")
    elif ctx.subcommand == VOTE_SKIP:
        if "enabled" not in ctx.options and "percent" not in ctx.options:
            raise InvalidInputError("Give `enabled`, `percent` or both: `/settings vote-skip enabled:False`.")
        if "enabled" in ctx.options:
            changes["vote_skip"] = _bool(ctx, "enabled")
        if "percent" in ctx.options:
            percent = ctx.int_option("percent")
            if not 1 <= percent <= 100:
                raise InvalidInputError(f"`percent` must be between 1 and 100 (you gave {percent}).")
            changes["vote_skip_percent"] = percent
    elif ctx.subcommand == STAY:
        wanted = _bool(ctx, "enabled")
        if wanted and not ctx.settings.allow_24_7:
            raise InvalidInputError(
                "24/7 mode is switched off on this bot by its operator (it keeps a player running)."
            )
        changes["twenty_four_seven"] = wanted
    elif ctx.subcommand == IDLE_TIMEOUT:
        minutes = ctx.int_option("minutes")
        low, high = ctx.settings.idle_timeout_min_s // 60, ctx.settings.idle_timeout_max_s // 60
        if not low <= minutes <= high:
            raise InvalidInputError(f"The idle timeout must be between {low} and {high} minutes (you gave {minutes}).")
        changes["idle_timeout_s"] = minutes * 60
    elif ctx.subcommand == LYRICS_IN_CARD:
        changes["lyrics_in_card"] = _bool(ctx, "enabled")
    else:
        raise InvalidInputError(USAGE)
    return changes


COMMANDS = (
    Command(
        "settings",
        "Server settings for TimmyBot: DJ role, DJ-only, vote-skip, 24/7, idle timeout (Manage Server only)",
        settings,
        options=(
            subcommand(SHOW, "Show this server's settings"),
            group(
                "dj",
                "The DJ role and DJ-only mode",
                subcommand(
                    "role",
                    "Members with this role can always control playback",
                    Option("role", "The DJ role", OptionType.ROLE),
                ),
                subcommand("clear-role", "Remove the DJ role"),
                subcommand(
                    "only",
                    "Only the DJ role and Manage Server control playback (no votes)",
                    Option("enabled", "DJ-only mode on or off", OptionType.BOOLEAN),
                    Option("adding", "In DJ-only mode, only they add tracks too", OptionType.BOOLEAN, required=False),
                ),
            ),
            subcommand(
                VOTE_SKIP,
                "With 3+ listeners, skips need a vote",
                Option("enabled", "Vote-skip on or off", OptionType.BOOLEAN, required=False),
                Option(
                    "percent",
                    "Share of listeners a skip vote must exceed (50 = majority)",
                    OptionType.INTEGER,
                    required=False,
                    min_value=1,
                    max_value=100,
                ),
            ),
            group(
                "playback",
                "When the player stays or leaves",
                subcommand(
                    "24-7",
                    "Stay in the channel when idle",
                    Option("enabled", "24/7 on or off", OptionType.BOOLEAN),
                ),
                subcommand(
                    "idle-timeout",
                    "Leave after this many idle minutes",
                    Option("minutes", "Idle minutes before leaving", OptionType.INTEGER, min_value=1, max_value=60),
                ),
                subcommand(
                    "lyrics",
                    "Show the synced lyrics line in the now-playing card",
                    Option("enabled", "Lyrics in the card on or off", OptionType.BOOLEAN),
                ),
            ),
        ),
        default_member_permissions=Permission.MANAGE_GUILD,
    ),
)
