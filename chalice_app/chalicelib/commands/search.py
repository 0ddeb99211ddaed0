"""/search: find the right song. The api validates and defers (ephemeral "thinking…"); the worker
(``timmybot.worker.search``) searches, ranks and edits the reply into an owner-only select menu whose
state is in the store. A pick is queued by the /play worker with the result's link, so it follows
every /play rule (the same checks, rate limit and placement)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chalicelib.commands.base import Choice, Command, CommandContext, Option, require_adding
from chalicelib.commands.play import QUERY_MAX_LENGTH, queue_pick
from chalicelib.replies import Reply
from timmybot.discord import custom_ids
from timmybot.discord.custom_ids import InvalidCustomIdError, SearchPickId
from timmybot.discord.types import OptionType
from timmybot.errors import InvalidInputError, PermissionDeniedError
from timmybot.store.base import Store
from timmybot.worker.jobs import PLACEMENTS

if TYPE_CHECKING:
    from chalicelib.dispatch import Dispatcher

_log = logging.getLogger(__name__)

# timmybot.worker.search is imported where used: it pulls in the personal and source models, which the
# fast path of every other command must not pay for on a cold start.
SOURCES = ("youtube", "ytmusic", "soundcloud")  # timmybot.worker.search.SEARCH_SOURCES (a test keeps them equal)
LINK_GIVEN = "/search takes search words; to play a link, use /play with it."


def search(ctx: CommandContext, store: Store, dispatcher: Dispatcher) -> Reply:
    from timmybot.sources.models import QueryKind  # noqa: PLC0415
    from timmybot.sources.policy import classify_query  # noqa: PLC0415
    from timmybot.worker.search import SearchJob  # noqa: PLC0415

    query = " ".join(ctx.str_option("query").split())
    if not query:
        raise InvalidInputError("Tell me what to search for: some words of the title or the artist.")
    if len(query) > QUERY_MAX_LENGTH:
        raise InvalidInputError(f"That's too long: a search can be at most {QUERY_MAX_LENGTH} characters.")
    if classify_query(query, ctx.settings.source_settings()).kind is not QueryKind.SEARCH:
        raise InvalidInputError(LINK_GIVEN)
    placement = ctx.str_option("placement", default="end")
    if placement not in PLACEMENTS:
        raise InvalidInputError("Placement must be `end`, `next` or `now`.")
    source = ctx.str_option("source", default="") or None
    if source is not None and source not in SOURCES:
        raise InvalidInputError("Source must be `youtube`, `ytmusic` or `soundcloud`.")
    require_adding(ctx, store.get_guild(ctx.guild_id))  # as /play: a DJ-only server hears it before searching
    job = SearchJob(
        **ctx.job_envelope(),
        query=query,
        placement=placement,
        source=source,
    )
    dispatcher.dispatch(job.to_dict())
    _log.info("search job %s dispatched for guild %s", ctx.interaction_id, ctx.guild_id)
    return Reply.deferred(ephemeral=True)


def search_pick(ctx: CommandContext, store: Store, dispatcher: Dispatcher) -> Reply:
    """A result chosen in the menu: only the searcher may; queued as /play queues its link."""
    from timmybot.worker import search as searching  # noqa: PLC0415

    if not isinstance(ctx.custom_id, SearchPickId) or len(ctx.values) != 1:
        raise InvalidCustomIdError()
    if ctx.custom_id.owner_id != ctx.user_id:
        raise PermissionDeniedError(searching.NOT_YOURS)
    choice = custom_ids.parse_history_choice(ctx.values[0])
    tracks = searching.menu_tracks(store, ctx.user_id, ctx.custom_id.menu)
    if tracks is None:
        raise InvalidInputError(searching.EXPIRED)
    track = searching.picked(tracks, choice.index, choice.digest)
    return queue_pick(
        ctx,
        store,
        dispatcher,
        track.url,
        ctx.custom_id.placement,
        refused="I can't queue that result; try /play with its name.",
    )


COMMANDS: tuple[Command, ...] = (
    Command(
        "search",
        "Search for a song and choose the right one from the best matches.",
        search,
        (
            Option("query", "Words of the title or the artist", OptionType.STRING, min_length=1,
                   max_length=QUERY_MAX_LENGTH),
            Option(
                "placement",
                "Where your pick goes: the end of the queue (default), next, or now",
                OptionType.STRING,
                required=False,
                choices=(Choice("end of the queue", "end"), Choice("play next", "next"), Choice("play now", "now")),
            ),
            Option(
                "source",
                "Where to search (default: the usual sources, in order)",
                OptionType.STRING,
                required=False,
                choices=(Choice("YouTube", "youtube"), Choice("YouTube Music", "ytmusic"),
                         Choice("SoundCloud", "soundcloud")),
            ),
        ),
        rate="search",
    ),
)  # fmt: skip
