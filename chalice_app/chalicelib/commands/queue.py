"""Queue commands: /queue (paged, with ◀ ▶), /remove, /move, /shuffle, /clear.

Reordering changes the guild's ordered id list through the Store (one conditional update each).
"""

from __future__ import annotations

from chalicelib.commands.base import Command, CommandContext, Option, require_control
from chalicelib.replies import Reply
from timmybot import text
from timmybot.discord import ui
from timmybot.discord.custom_ids import MAX_PAGE, QueuePageId
from timmybot.discord.types import OptionType
from timmybot.errors import InvalidInputError, QueueEmptyError
from timmybot.store.base import Store

POSITION_MAX = 5000  # the highest queue cap a deployment may set


def _queue_view(ctx: CommandContext, store: Store, page_number: int, *, clamp: bool) -> tuple[Reply, int]:
    page = store.queue_page(ctx.guild_id, number=page_number, size=ui.PAGE_SIZE)
    if page.number != page_number and not clamp:
        pages = ui.page_count(page.total)
        raise InvalidInputError(f"`page` must be between 1 and {pages} (the queue has {pages} pages).")
    embed = ui.queue_embed(page)
    return Reply.message(embeds=(embed,), components=ui.queue_buttons(page.number, page.total)), page.number


def show_queue(ctx: CommandContext, store: Store) -> Reply:
    page_number = ctx.int_option("page", default=1)
    if page_number < 1:
        raise InvalidInputError("`page` must be 1 or more.")
    reply, _ = _queue_view(ctx, store, page_number, clamp=False)
    return reply


def queue_page_click(ctx: CommandContext, store: Store) -> Reply:
    """◀ ▶ clicked: edit the same message (type 7) to show the requested page (clamped if the queue shrank)."""
    if not isinstance(ctx.custom_id, QueuePageId):
        raise InvalidInputError("That button does not belong to a queue.")
    reply, _ = _queue_view(ctx, store, ctx.custom_id.page, clamp=True)
    return Reply.update(embeds=reply.embeds, components=reply.components)


def remove(ctx: CommandContext, store: Store) -> Reply:
    position = ctx.int_option("position")
    require_control(ctx, store.get_guild(ctx.guild_id))
    entry = store.remove_at(ctx.guild_id, position)
    title = text.quote(entry.title, text.IN_SENTENCE)
    return Reply.message(f"🗑 <@{ctx.user_id}> removed **{title}** (was #{position}).")


def move(ctx: CommandContext, store: Store) -> Reply:
    source = ctx.int_option("from")
    destination = ctx.int_option("to")
    require_control(ctx, store.get_guild(ctx.guild_id))
    entry = store.move(ctx.guild_id, source, destination)
    title = text.quote(entry.title, text.IN_SENTENCE)
    return Reply.message(f"↕ <@{ctx.user_id}> moved **{title}** from #{source} to #{destination}.")


def shuffle(ctx: CommandContext, store: Store) -> Reply:
    require_control(ctx, store.get_guild(ctx.guild_id))
    count = store.shuffle(ctx.guild_id)
    return Reply.message(f"🔀 <@{ctx.user_id}> shuffled {count} {'track' if count == 1 else 'tracks'}.")


def clear(ctx: CommandContext, store: Store) -> Reply:
    record = store.get_guild(ctx.guild_id)
    if not record.queue:
        raise QueueEmptyError("The queue is already empty.")
    require_control(ctx, record)
    count = store.clear_queue(ctx.guild_id)
    return Reply.message(f"🧹 <@{ctx.user_id}> cleared the queue ({count} {'track' if count == 1 else 'tracks'}).")


def _position(name: str, description: str) -> Option:
    return Option(name, description, OptionType.INTEGER, min_value=1, max_value=POSITION_MAX)


COMMANDS: tuple[Command, ...] = (
    Command(
        "queue",
        "Show the queue, 10 tracks per page.",
        show_queue,
        (Option("page", "Which page", OptionType.INTEGER, required=False, min_value=1, max_value=MAX_PAGE),),
    ),
    Command("remove", "Remove a track from the queue.", remove, (_position("position", "Its number in /queue"),)),
    Command(
        "move",
        "Move a track to another place in the queue.",
        move,
        (_position("from", "Its number in /queue now"), _position("to", "The number it should get")),
    ),
    Command("shuffle", "Shuffle the queue.", shuffle),
    Command("clear", "Remove every track from the queue.", clear),
)
