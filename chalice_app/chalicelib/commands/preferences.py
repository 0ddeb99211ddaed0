"""/preferences: show the user's own settings, or change any of them (logic in ``timmybot.preferences``).

    /preferences [platform] [auto-queue] [notify] [quality]

With no option it shows them; each option given is saved in one write. The answer is ephemeral:
only the user sees their preferences.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.commands.base import Choice, Command, CommandContext, Option
from chalicelib.replies import Reply
from timmybot import preferences
from timmybot.discord.types import OptionType
from timmybot.errors import InvalidInputError
from timmybot.store.base import Store

PLATFORM = "platform"
AUTO_QUEUE = "auto-queue"
NOTIFY = "notify"
QUALITY = "quality"


def _bool_option(ctx: CommandContext, name: str) -> bool | None:
    value = ctx.options.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidInputError(f"`{name}` must be true or false.")
    return value


def preferences_command(ctx: CommandContext, store: Store) -> Reply:
    chain = ctx.settings.source_chain
    platform = ctx.options.get(PLATFORM)
    quality = ctx.options.get(QUALITY)
    auto_queue = _bool_option(ctx, AUTO_QUEUE)
    notify = _bool_option(ctx, NOTIFY)
    new_platform = preferences.parse_platform(platform, chain) if isinstance(platform, str) else None
    new_quality = preferences.parse_quality(quality) if isinstance(quality, str) else None
    if platform is None and quality is None and auto_queue is None and notify is None:
        prefs = preferences.touch(store, ctx.user_id, now=ctx.now)
        return Reply.private(preferences.describe(prefs, chain))

    def change(current: preferences.Preferences) -> preferences.Preferences:
        updated = current
        if isinstance(platform, str):
            updated = replace(updated, platform=new_platform)
        if new_quality is not None:
            updated = replace(updated, quality=new_quality)
        if auto_queue is not None:
            updated = replace(updated, autoplay=auto_queue)
        if notify is not None:
            updated = replace(updated, notify=notify)
        return updated

    saved = preferences.save(store, ctx.user_id, change, now=ctx.now)
    return Reply.private("Saved.\n" + preferences.describe(saved, chain))


COMMANDS: tuple[Command, ...] = (
    Command(
        "preferences",
        "Show or change your own preferences: platform, auto-queue, pings and quality.",
        preferences_command,
        (
            Option(
                PLATFORM,
                "The platform searched first for your /play and /search",
                OptionType.STRING,
                required=False,
                choices=(
                    Choice("YouTube", "youtube"),
                    Choice("YouTube Music", "ytmusic"),
                    Choice("SoundCloud", "soundcloud"),
                    Choice("the bot's usual order", "default"),
                ),
            ),
            Option(AUTO_QUEUE, "Start /autoplay on in sessions you begin", OptionType.BOOLEAN, required=False),
            Option(NOTIFY, "Ping you when your own track starts playing", OptionType.BOOLEAN, required=False),
            Option(
                QUALITY,
                "Stream quality for your tracks",
                OptionType.STRING,
                required=False,
                choices=(Choice("high", "high"), Choice("data-saver", "data-saver")),
            ),
        ),
    ),
)
