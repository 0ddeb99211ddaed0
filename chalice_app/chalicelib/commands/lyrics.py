"""/lyrics [query]: the current track's lyrics by default, or the song the words name. The api
validates and defers (ephemeral "thinking…"); the worker (``timmybot.lyrics.job``) looks them up
through the store cache and edits the reply into the first page. The ◀ ▶ buttons are answered here
from the cached record (type 7), with no call out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chalicelib.commands.base import Command, CommandContext, Option
from chalicelib.replies import Reply
from timmybot.discord.custom_ids import InvalidCustomIdError, LyricsPageId
from timmybot.discord.types import OptionType
from timmybot.errors import InvalidInputError
from timmybot.lyrics.job import QUERY_MAX, LyricsJob
from timmybot.store.base import Store

if TYPE_CHECKING:
    from chalicelib.dispatch import Dispatcher

_log = logging.getLogger(__name__)


def lyrics(ctx: CommandContext, dispatcher: Dispatcher) -> Reply:
    query = " ".join(ctx.str_option("query", default="").split()) or None
    if query is not None and len(query) > QUERY_MAX:
        raise InvalidInputError(f"That's too long: a lyrics search can be at most {QUERY_MAX} characters.")
    job = LyricsJob(**ctx.job_envelope(), query=query)
    dispatcher.dispatch(job.to_dict())
    _log.info("lyrics job %s dispatched for guild %s", ctx.interaction_id, ctx.guild_id)
    return Reply.deferred(ephemeral=True)


def lyrics_page(ctx: CommandContext, store: Store) -> Reply:
    """◀ ▶ clicked: the same message (type 7) at the page asked, from the cached look-up."""
    from timmybot.lyrics import pages, service  # noqa: PLC0415 - plain functions, no network

    if not isinstance(ctx.custom_id, LyricsPageId):
        raise InvalidCustomIdError()
    result = service.cached(store, ctx.custom_id.digest)
    if result is None:
        raise InvalidInputError(pages.EXPIRED)
    body = pages.body(result, ctx.custom_id.page)
    return Reply.update(body["content"] or None, embeds=tuple(body["embeds"]), components=tuple(body["components"]))


COMMANDS: tuple[Command, ...] = (
    Command(
        "lyrics",
        "Show the lyrics of the current track, or of the song you name.",
        lyrics,
        (
            Option("query", "Artist and title, e.g. Queen - Bohemian Rhapsody (default: the current track)",
                   OptionType.STRING, required=False, min_length=1, max_length=QUERY_MAX),
        ),
        rate="lyrics",
    ),
)  # fmt: skip
