"""/settings: the guild's own playback settings, for members with Manage Server."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.commands.base import Command, CommandContext, Option
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
    ]
    return "\n".join(lines)


def _dj_only_text(record_settings: GuildSettings) -> str:
    if not record_settings.dj_only:
        return "off (listeners in my channel control playback)"
    who = f"<@&{record_settings.dj_role_id}>" if record_settings.dj_role_id else "Manage Server (no DJ role set)"
    adding = "adding too" if record_settings.dj_only_adding else "anyone may still add tracks"
    return f"on: only {who} controls playback, no votes ({adding})"


def settings(ctx: CommandContext, store: Store) -> Reply:
    if not ctx.is_manager():
        raise PermissionDeniedError("Only members with the Manage Server permission can change TimmyBot's settings.")
    changes: dict[str, object] = {}
    if "dj_role" in ctx.options:
        changes["dj_role_id"] = str(ctx.options["dj_role"])
    if ctx.options.get("clear_dj_role") is True:
        changes["dj_role_id"] = None
    if "vote_skip" in ctx.options:
        changes["vote_skip"] = bool(ctx.options["vote_skip"])
    if "vote_skip_percent" in ctx.options:
        percent = ctx.int_option("vote_skip_percent")
        if not 1 <= percent <= 100:
            raise InvalidInputError(f"`vote_skip_percent` must be between 1 and 100 (you gave {percent}).")
        changes["vote_skip_percent"] = percent
    if "dj_only" in ctx.options:
        changes["dj_only"] = bool(ctx.options["dj_only"])
    if "dj_only_adding" in ctx.options:
        changes["dj_only_adding"] = bool(ctx.options["dj_only_adding"])
    if "twenty_four_seven" in ctx.options:
        wanted = bool(ctx.options["twenty_four_seven"])
        if wanted and not ctx.settings.allow_24_7:
            raise InvalidInputError(
                "24/7 mode is switched off on this bot by its operator (it keeps a player running)."
            )
        changes["twenty_four_seven"] = wanted
    if "idle_timeout_minutes" in ctx.options:
        minutes = ctx.int_option("idle_timeout_minutes")
        low, high = ctx.settings.idle_timeout_min_s // 60, ctx.settings.idle_timeout_max_s // 60
        if not low <= minutes <= high:
            raise InvalidInputError(f"The idle timeout must be between {low} and {high} minutes (you gave {minutes}).")
        changes["idle_timeout_s"] = minutes * 60

    if not changes:
        record = store.get_guild(ctx.guild_id)
        return Reply.private("Current settings:\n" + _describe(record.settings, ctx))

    def change(record: GuildRecord) -> GuildRecord:
        return record.evolve(settings=replace(record.settings, **changes))  # type: ignore[arg-type]

    record = store.update_guild(ctx.guild_id, change)
    return Reply.private("Settings saved:\n" + _describe(record.settings, ctx))


COMMANDS = (
    Command(
        "settings",
        "Server settings for TimmyBot: DJ role, DJ-only, vote-skip, 24/7, idle timeout (Manage Server only)",
        settings,
        options=(
            Option("dj_role", "Members with this role can always control playback", OptionType.ROLE, required=False),
            Option("clear_dj_role", "Remove the DJ role", OptionType.BOOLEAN, required=False),
            Option("vote_skip", "With 3+ listeners, skips need a vote", OptionType.BOOLEAN, required=False),
            Option(
                "vote_skip_percent",
                "Share of listeners a skip vote must exceed (50 = majority)",
                OptionType.INTEGER,
                required=False,
                min_value=1,
                max_value=100,
            ),
            Option(
                "dj_only",
                "Only the DJ role and Manage Server control playback (no votes)",
                OptionType.BOOLEAN,
                required=False,
            ),
            Option(
                "dj_only_adding",
                "In DJ-only mode, only they add tracks too",
                OptionType.BOOLEAN,
                required=False,
            ),
            Option("twenty_four_seven", "Stay in the channel when idle", OptionType.BOOLEAN, required=False),
            Option(
                "idle_timeout_minutes",
                "Leave after this many idle minutes",
                OptionType.INTEGER,
                required=False,
                min_value=1,
                max_value=60,
            ),
        ),
        default_member_permissions=Permission.MANAGE_GUILD,
    ),
)
