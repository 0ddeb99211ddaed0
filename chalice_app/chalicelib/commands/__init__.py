"""The command registry: every slash command's schema and handler, and the component routes.

``schema()`` is what ``scripts/register_commands.py`` PUTs to Discord; the router looks handlers up
here. Commands are defined next to their handlers (``playback.py``, ``queue.py``).
"""

from __future__ import annotations

from chalicelib.commands import accounts, admin, history, lyrics, personal, play, playback, queue, search
from chalicelib.commands.base import Command, CommandContext, Handler, Option, require_control
from timmybot.custom_ids import (
    AuthCheckId,
    CustomId,
    ForgetConfirmId,
    GuildHistoryPickId,
    HistoryReplayId,
    LyricsPageId,
    MyPlaylistsPageId,
    MyPlaylistsPickId,
    NowPlayingAction,
    NowPlayingId,
    QueuePageId,
    SearchPickId,
)
from timmybot.discord.types import CommandSchema

COMMANDS: tuple[Command, ...] = (
    *play.COMMANDS,
    *playback.COMMANDS,
    *queue.COMMANDS,
    *history.COMMANDS,
    *search.COMMANDS,
    *lyrics.COMMANDS,
    *admin.COMMANDS,
    *accounts.COMMANDS,
    *personal.COMMANDS,
)
BY_NAME: dict[str, Command] = {command.name: command for command in COMMANDS}

_NOW_PLAYING_ROUTES: dict[NowPlayingAction, tuple[str, Handler]] = {
    NowPlayingAction.BACK: ("np.back", playback.back),
    NowPlayingAction.PAUSE: ("np.pause", playback.toggle_pause),
    NowPlayingAction.SKIP: ("np.skip", playback.skip),
    NowPlayingAction.STOP: ("np.stop", playback.stop),
}


#: Components that call out (Google, Spotify, the worker) count against their command's limit.
COMPONENT_RATES: dict[str, str] = {
    "auth.check": "check",
    "mypl.pick": "personal",
    "history.replay": "play",
    "ghist.pick": "play",
    "search.pick": "play",
}


def rate_bucket(route: str) -> str | None:
    """The rate-limit bucket of a command or component route (None: not limited)."""
    command = BY_NAME.get(route)
    return command.rate if command is not None else COMPONENT_RATES.get(route)


def schema() -> list[CommandSchema]:
    return [command.schema() for command in COMMANDS]


def component_route(custom_id: CustomId) -> tuple[str, Handler]:
    """(route name for logs and metrics, handler) for a parsed custom id."""
    match custom_id:
        case QueuePageId():
            return "queue.page", queue.queue_page_click
        case NowPlayingId(action=action):
            return _NOW_PLAYING_ROUTES[action]
        case AuthCheckId():
            return "auth.check", accounts.check_click
        case ForgetConfirmId():
            return "forget.confirm", accounts.forget_confirm
        case MyPlaylistsPageId():
            return "mypl.page", personal.my_playlists_page
        case MyPlaylistsPickId():
            return "mypl.pick", personal.my_playlists_pick
        case HistoryReplayId():
            return "history.replay", personal.history_replay
        case GuildHistoryPickId():
            return "ghist.pick", history.history_pick
        case SearchPickId():
            return "search.pick", search.search_pick
        case LyricsPageId():
            return "lyrics.page", lyrics.lyrics_page


__all__ = [
    "BY_NAME",
    "COMMANDS",
    "Command",
    "CommandContext",
    "Handler",
    "Option",
    "component_route",
    "rate_bucket",
    "require_control",
    "schema",
]
