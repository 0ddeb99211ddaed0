"""/play: validate cheaply, answer "thinking…" (type 5) at once, hand the job to the worker.

The fast path never touches the network, yt-dlp or Discord: ``classify_query`` applies the URL
policy and the length limit, so a refused link or an over-long query is answered here,
ephemerally, and nothing is dispatched. Everything slow (voice channel, permissions, resolving,
enqueueing, launching) happens in the worker (``timmybot.worker.play``), which edits the original response.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chalicelib.commands.base import (
    Choice,
    Command,
    CommandContext,
    Option,
    dj_only_refusal,
    is_dj,
    require_adding,
)
from chalicelib.replies import Reply
from timmybot.discord.types import OptionType
from timmybot.errors import InvalidInputError, PermissionDeniedError, TimmyError
from timmybot.models import GuildRecord
from timmybot.store.base import Store
from timmybot.worker.jobs import PLACEMENTS, PlayJob

if TYPE_CHECKING:
    from chalicelib.dispatch import Dispatcher

_log = logging.getLogger(__name__)

QUERY_MAX_LENGTH = 200


def play(ctx: CommandContext, store: Store, dispatcher: Dispatcher) -> Reply:
    query = ctx.str_option("query")
    if len(query) > QUERY_MAX_LENGTH:
        raise InvalidInputError(f"That's too long: a search or link can be at most {QUERY_MAX_LENGTH} characters.")
    from timmybot.sources.policy import classify_query  # noqa: PLC0415 - paid by /play only, not every cold start

    classify_query(query, ctx.settings.source_settings())  # raises the user's sentence for a refused query
    placement = ctx.str_option("placement", default="end")
    if placement not in PLACEMENTS:
        raise InvalidInputError("Placement must be `end`, `next` or `now`.")
    record = store.get_guild(ctx.guild_id)
    require_adding(ctx, record)
    if placement == "now":
        require_interrupt(ctx, record)
    play_job_for(ctx, dispatcher, query, placement=placement)
    return Reply.deferred()


def play_job_for(ctx: CommandContext, dispatcher: Dispatcher, query: str, *, placement: str) -> None:
    """Hand ``query`` to the /play worker for this interaction (the policy checked once more here)."""
    from timmybot.sources.policy import classify_query  # noqa: PLC0415

    classify_query(query, ctx.settings.source_settings())
    job = PlayJob(
        **ctx.job_envelope(),
        query=query,
        placement=placement,
    )
    dispatcher.dispatch(job.to_dict())
    _log.info("play job %s dispatched for guild %s", ctx.interaction_id, ctx.guild_id)


def queue_pick(
    ctx: CommandContext, store: Store, dispatcher: Dispatcher, url: str, placement: str, *, refused: str
) -> Reply:
    """A track picked from a menu (/history, /search): queued as /play queues its link, under the
    same rules; ``refused`` is the sentence when its link no longer passes the policy."""
    record = store.get_guild(ctx.guild_id)
    require_adding(ctx, record)
    if placement == "now":
        require_interrupt(ctx, record)
    try:
        play_job_for(ctx, dispatcher, url, placement=placement)
    except TimmyError:
        _log.info("pick %s: its link does not pass the policy", ctx.interaction_id)
        raise InvalidInputError(refused) from None
    return Reply.deferred(ephemeral=True)


def require_interrupt(
    ctx: CommandContext,
    record: GuildRecord,
    *,
    action: str = "cut it with `play now`. Use `play next` instead.",
) -> None:
    """ "Play now" cuts the current track: a DJ (or a manager, or a member alone with the bot) may,
    and so may whoever added the track it cuts. Never a vote."""
    playing = record.actual.now_playing
    if playing is None or is_dj(ctx, record):
        return
    if record.settings.dj_only:
        raise PermissionDeniedError(dj_only_refusal(record, "cut the current track"))
    if playing.requester_id == ctx.user_id:
        return
    raise PermissionDeniedError(
        f"Only a DJ, a member with Manage Server, or whoever added the current track can {action}"
    )


COMMANDS: tuple[Command, ...] = (
    Command(
        "play",
        "Play a song or playlist: search words or a YouTube, SoundCloud or Spotify link.",
        play,
        (
            Option(
                "query",
                "Search words or a link",
                OptionType.STRING,
                min_length=1,
                max_length=QUERY_MAX_LENGTH,
                autocomplete=True,  # recent plays, then suggestions (timmybot.autocomplete)
            ),
            Option(
                "placement",
                "Where it goes: the end of the queue (default), next, or now (cutting the current track)",
                OptionType.STRING,
                required=False,
                choices=(Choice("end of the queue", "end"), Choice("play next", "next"), Choice("play now", "now")),
            ),
        ),
        rate="play",
    ),
)
