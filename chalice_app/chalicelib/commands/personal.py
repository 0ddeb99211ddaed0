"""Personal music: /my-playlists, /liked-songs, /play-history, /recommendations and /autoplay.

The fast path only validates and dispatches: tokens, the Spotify / YouTube Data APIs and the source
chain are the worker's (``timmybot.worker.personal_jobs``), which edits the response. A user who has not
linked the platform reads, ephemerally, which /link command to run (the worker's edit of an
ephemeral "thinking…"). The menu's page buttons render from the listing the worker saved for the
clicking user, so they need no network; a choice or a history button must name something in the
clicking user's own listing, so a forged or foreign custom id queues nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chalicelib.commands.base import Choice, Command, CommandContext, Option, require_adding, require_control
from chalicelib.replies import Reply
from timmybot import text
from timmybot.discord import custom_ids
from timmybot.discord.custom_ids import HistoryReplayId, InvalidCustomIdError, MyPlaylistsPageId
from timmybot.discord.types import OptionType
from timmybot.errors import InvalidInputError, PermissionDeniedError
from timmybot.store.base import Store

# The handlers import timmybot.library.personal and timmybot.worker.personal_jobs where they use them: those pull in
# the source chain, which the interactions fast path must not pay for on a cold start.

if TYPE_CHECKING:
    from chalicelib.dispatch import Dispatcher
    from timmybot.discord.types import ComponentPayload
    from timmybot.worker.personal_jobs import JobKind

_log = logging.getLogger(__name__)

EXPIRED_LIST = "That list has expired (lists last 15 minutes). Run the command again."


def _dispatch(ctx: CommandContext, dispatcher: Dispatcher, kind: JobKind, **fields: object) -> None:
    from timmybot.worker.personal_jobs import PersonalJob  # noqa: PLC0415

    job = PersonalJob(
        kind=kind,
        **ctx.job_envelope(),
        **fields,  # type: ignore[arg-type]
    )
    dispatcher.dispatch(job.to_dict())
    _log.info("personal job %s (%s) dispatched for guild %s", ctx.interaction_id, kind.value, ctx.guild_id)


# ---------------------------------------------------------------------- slash commands
def my_playlists(ctx: CommandContext, dispatcher: Dispatcher) -> Reply:
    from timmybot.worker.personal_jobs import JobKind  # noqa: PLC0415

    _dispatch(ctx, dispatcher, JobKind.MY_PLAYLISTS)
    return Reply.deferred(ephemeral=True)


def liked_songs(ctx: CommandContext, store: Store, dispatcher: Dispatcher) -> Reply:
    from timmybot.library import personal  # noqa: PLC0415
    from timmybot.worker.personal_jobs import JobKind  # noqa: PLC0415

    raw = ctx.options.get("platform")
    platform = personal.check_platform(raw if isinstance(raw, str) else None)
    require_adding(ctx, store.get_guild(ctx.guild_id))
    _dispatch(ctx, dispatcher, JobKind.LIKED, platform=platform)
    return Reply.deferred(ephemeral=True)


def play_history(ctx: CommandContext, dispatcher: Dispatcher) -> Reply:
    from timmybot.worker.personal_jobs import JobKind  # noqa: PLC0415

    _dispatch(ctx, dispatcher, JobKind.HISTORY)
    return Reply.deferred(ephemeral=True)


def recommendations(ctx: CommandContext, store: Store, dispatcher: Dispatcher) -> Reply:
    from timmybot.worker.personal_jobs import JobKind  # noqa: PLC0415

    require_adding(ctx, store.get_guild(ctx.guild_id))
    _dispatch(ctx, dispatcher, JobKind.RECOMMEND)
    return Reply.deferred()


AUTOPLAY_ON = (
    "♾️ Autoplay is on: when the queue runs out I'll keep going with tracks from a YouTube mix of the last one."
)
AUTOPLAY_OFF = "Autoplay is off: I'll stop when the queue runs out."


def autoplay(ctx: CommandContext, store: Store) -> Reply:
    mode = ctx.str_option("mode")
    if mode not in ("on", "off"):
        raise InvalidInputError("Autoplay must be `on` or `off`.")
    record = store.get_guild(ctx.guild_id)
    require_control(ctx, record)
    store.set_autoplay(ctx.guild_id, mode == "on")
    return Reply.message(AUTOPLAY_ON if mode == "on" else AUTOPLAY_OFF)


# ---------------------------------------------------------------------- components
def my_playlists_page(ctx: CommandContext, store: Store) -> Reply:
    """◀ ▶: another page of the clicking user's own listing (type 7, from the store)."""
    from timmybot.library import personal  # noqa: PLC0415
    from timmybot.worker.personal_jobs import playlist_menu  # noqa: PLC0415

    if not isinstance(ctx.custom_id, MyPlaylistsPageId):
        raise InvalidCustomIdError()
    listed = personal.saved_playlists(store, ctx.user_id)
    if not listed:
        raise InvalidInputError(EXPIRED_LIST.replace("the command", "/my-playlists"))
    body = playlist_menu(listed, ctx.custom_id.page)
    components: tuple[ComponentPayload, ...] = tuple(body["components"])
    return Reply.update(body["content"], components=components)


def my_playlists_pick(ctx: CommandContext, store: Store, dispatcher: Dispatcher) -> Reply:
    """A playlist chosen in the menu: queue it (worker, with progress edits of this message)."""
    from timmybot.library import personal  # noqa: PLC0415
    from timmybot.worker.personal_jobs import JobKind  # noqa: PLC0415

    if len(ctx.values) != 1:
        raise InvalidCustomIdError()
    choice = custom_ids.parse_playlist_choice(ctx.values[0])
    listed = personal.saved_playlists(store, ctx.user_id)
    if listed is None:
        raise InvalidInputError(EXPIRED_LIST.replace("the command", "/my-playlists"))
    ref = next((p for p in listed if (p.platform, p.id) == (choice.platform, choice.playlist_id)), None)
    if ref is None:
        raise InvalidInputError("That playlist isn't in your list. Run /my-playlists again.")
    require_adding(ctx, store.get_guild(ctx.guild_id))
    _dispatch(ctx, dispatcher, JobKind.PLAYLIST, platform=ref.platform, item_id=ref.id, title=ref.name)
    return Reply.update(f"Adding **{text.quote(ref.name, text.IN_SENTENCE)}** ({ref.label})…", components=())


def history_replay(ctx: CommandContext, store: Store, dispatcher: Dispatcher) -> Reply:
    """A /play-history button: only its owner may use it; it queues the track it names."""
    from timmybot.library import personal  # noqa: PLC0415
    from timmybot.worker.personal_jobs import JobKind  # noqa: PLC0415

    if not isinstance(ctx.custom_id, HistoryReplayId):
        raise InvalidCustomIdError()
    if ctx.custom_id.owner_id != ctx.user_id:
        raise PermissionDeniedError("Those buttons belong to someone else's history. Run /play-history to see yours.")
    track = personal.history_view_track(store, ctx.user_id, ctx.custom_id.index, ctx.custom_id.digest)
    if track is None:
        raise InvalidInputError("That track is no longer in your history list. Run /play-history again.")
    require_adding(ctx, store.get_guild(ctx.guild_id))
    _dispatch(ctx, dispatcher, JobKind.REQUEUE, track=track.to_dict())
    return Reply.deferred(ephemeral=True)


COMMANDS: tuple[Command, ...] = (
    Command(
        "my-playlists",
        "Queue one of your YouTube or Spotify playlists (link them first with /link).",
        my_playlists,
        rate="personal",
    ),
    Command(
        "liked-songs",
        "Queue your liked songs (up to 50) from YouTube or Spotify.",
        liked_songs,
        (
            Option(
                "platform",
                "Where your liked songs are (default: the account you linked)",
                OptionType.STRING,
                required=False,
                choices=(Choice("YouTube", "youtube"), Choice("Spotify", "spotify")),
            ),
        ),
        rate="personal",
    ),
    Command(
        "play-history",
        "What you played lately (and Spotify's recently played), to queue again.",
        play_history,
        rate="personal",
    ),
    Command(
        "recommendations",
        "Queue a YouTube mix based on your last track (or this server's).",
        recommendations,
        rate="personal",
    ),
    Command(
        "autoplay",
        "Keep playing a YouTube mix of the last track when the queue runs out.",
        autoplay,
        (Option("mode", "on or off", OptionType.STRING, choices=(Choice("on", "on"), Choice("off", "off"))),),
    ),
)
