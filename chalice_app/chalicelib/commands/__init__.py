"""The command registry: every slash command's schema and handler, and the component routes.

``schema()`` is what ``scripts/register_commands.py`` PUTs to Discord; the router looks handlers up
here. Commands are defined next to their handlers (``playback.py``, ``queue.py``).
"""

from __future__ import annotations

from chalicelib.commands import (
    accounts,
    admin,
    history,
    lyrics,
    personal,
    play,
    playback,
    playlists,
    preferences,
    queue,
    search,
)
from chalicelib.commands.base import (
    BoundHandler,
    Command,
    CommandContext,
    Handler,
    Option,
    UnknownPortError,
    bind,
    require_control,
)
from timmybot.discord.custom_ids import (
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
    SavedPlaylistDeleteId,
    SavedPlaylistPageId,
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
    *preferences.COMMANDS,
    *playlists.COMMANDS,
)
BY_NAME: dict[str, Command] = {command.name: command for command in COMMANDS}

_NOW_PLAYING_ROUTES: dict[NowPlayingAction, str] = {
    NowPlayingAction.BACK: "np.back",
    NowPlayingAction.PAUSE: "np.pause",
    NowPlayingAction.SKIP: "np.skip",
    NowPlayingAction.STOP: "np.stop",
}

#: Every component route's handler, bound once here (its signature read at import, see ``bind``).
COMPONENTS: dict[str, BoundHandler] = {
    route: bind(handler)
    for route, handler in (
        ("queue.page", queue.queue_page_click),
        ("np.back", playback.back),
        ("np.pause", playback.toggle_pause),
        ("np.skip", playback.skip),
        ("np.stop", playback.stop),
        ("auth.check", accounts.check_click),
        ("forget.confirm", accounts.forget_confirm),
        ("mypl.page", personal.my_playlists_page),
        ("mypl.pick", personal.my_playlists_pick),
        ("history.replay", personal.history_replay),
        ("ghist.pick", history.history_pick),
        ("search.pick", search.search_pick),
        ("lyrics.page", lyrics.lyrics_page),
        ("playlist.page", playlists.page_click),
        ("playlist.delete", playlists.delete_confirm),
    )
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


def component_route(custom_id: CustomId) -> tuple[str, BoundHandler]:
    """(route name for logs and metrics, bound handler) for a parsed custom id."""
    route = component_route_name(custom_id)
    return route, COMPONENTS[route]


def component_route_name(custom_id: CustomId) -> str:
    match custom_id:
        case QueuePageId():
            return "queue.page"
        case NowPlayingId(action=action):
            return _NOW_PLAYING_ROUTES[action]
        case AuthCheckId():
            return "auth.check"
        case ForgetConfirmId():
            return "forget.confirm"
        case MyPlaylistsPageId():
            return "mypl.page"
        case MyPlaylistsPickId():
            return "mypl.pick"
        case HistoryReplayId():
            return "history.replay"
        case GuildHistoryPickId():
            return "ghist.pick"
        case SearchPickId():
            return "search.pick"
        case LyricsPageId():
            return "lyrics.page"
        case SavedPlaylistPageId():
            return "playlist.page"
        case SavedPlaylistDeleteId():
            return "playlist.delete"


__all__ = [
    "BY_NAME",
    "COMMANDS",
    "COMPONENTS",
    "BoundHandler",
    "Command",
    "CommandContext",
    "Handler",
    "Option",
    "UnknownPortError",
    "bind",
    "component_route",
    "component_route_name",
    "rate_bucket",
    "require_control",
    "schema",
]
