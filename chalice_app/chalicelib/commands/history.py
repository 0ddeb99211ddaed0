"""/history: the tracks this server played lately (the voice task's guild history), newest first,
with a select menu that queues one again — at the end, next or now — through the /play worker.

The menu is ephemeral (only who ran the command sees it). A pick names an entry by its index and
a digest of its id, so a stale menu (the history moved on) or an edited value queues nothing.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from chalicelib.commands.base import Choice, Command, CommandContext, Option
from chalicelib.commands.play import queue_pick
from chalicelib.replies import Reply
from timmybot import text
from timmybot.discord import custom_ids, ui
from timmybot.discord.custom_ids import GuildHistoryPickId, InvalidCustomIdError
from timmybot.discord.types import ComponentPayload, ComponentType, OptionType
from timmybot.errors import InvalidInputError
from timmybot.models import QueueEntry
from timmybot.store.base import Store

if TYPE_CHECKING:
    from chalicelib.dispatch import Dispatcher

_log = logging.getLogger(__name__)

MENU_MAX = 25  # Discord's limit of options in a select menu
LISTED = 10
LABEL_MAX = 100
EMPTY = "Nothing has played in this server yet."
STALE = "That track is no longer in this server's history. Run /history again."
PLACEMENT_WORDS = {"end": "at the end of the queue", "next": "next", "now": "now"}


def entry_digest(entry: QueueEntry) -> str:
    return hashlib.sha256(entry.entry_id.encode()).hexdigest()[:8]


def history(ctx: CommandContext, store: Store) -> Reply:
    placement = ctx.str_option("placement", default="end")
    if placement not in custom_ids.GUILD_HISTORY_PLACEMENTS:
        raise InvalidInputError("Placement must be `end`, `next` or `now`.")
    played = store.guild_history(ctx.guild_id)[:MENU_MAX]
    if not played:
        return Reply.private(EMPTY)
    lines = [
        f"`{n}.` {text.quote(entry.title, 80)} · {ui.format_duration(entry.duration_s)}"
        + (f" · <@{entry.requester_id}>" if entry.requester_id else "")
        for n, entry in enumerate(played[:LISTED], start=1)
    ]
    more = f"\n…and {len(played) - LISTED} more in the menu" if len(played) > LISTED else ""
    options = [
        {
            "label": text.cap(f"{n}. {entry.title}", LABEL_MAX),  # plain text: no markdown in a select
            "value": custom_ids.history_choice(n - 1, entry_digest(entry)),
            "description": ui.format_duration(entry.duration_s),
        }
        for n, entry in enumerate(played, start=1)
    ]
    select: ComponentPayload = {
        "type": ComponentType.STRING_SELECT,
        "custom_id": custom_ids.build(GuildHistoryPickId(placement)),
        "placeholder": f"Choose a track to play {PLACEMENT_WORDS[placement]}",
        "options": options,
        "min_values": 1,
        "max_values": 1,
    }
    content = "Played lately in this server (newest first):\n" + "\n".join(lines) + more
    return Reply.private(content, components=({"type": ComponentType.ACTION_ROW, "components": [select]},))


def history_pick(ctx: CommandContext, store: Store, dispatcher: Dispatcher) -> Reply:
    """A track chosen in the menu: queued as /play would queue its link, with the menu's placement."""
    if not isinstance(ctx.custom_id, GuildHistoryPickId) or len(ctx.values) != 1:
        raise InvalidCustomIdError()
    choice = custom_ids.parse_history_choice(ctx.values[0])
    played = store.guild_history(ctx.guild_id)
    entry = played[choice.index] if choice.index < len(played) else None
    if entry is None or entry_digest(entry) != choice.digest:
        raise InvalidInputError(STALE)
    return queue_pick(ctx, store, dispatcher, entry.url, ctx.custom_id.placement,
                      refused="I can't queue that track again from here; try /play with its name.")  # fmt: skip


COMMANDS: tuple[Command, ...] = (
    Command(
        "history",
        "What this server played lately; choose one to play it again.",
        history,
        (
            Option(
                "placement",
                "Where your pick goes: the end of the queue (default), next, or now",
                OptionType.STRING,
                required=False,
                choices=(Choice("end of the queue", "end"), Choice("play next", "next"), Choice("play now", "now")),
            ),
        ),
    ),
)
