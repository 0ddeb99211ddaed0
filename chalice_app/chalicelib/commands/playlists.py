"""/playlist: saved playlists, personal (the user's, in every allowed guild) or server (this guild's,
managed by the DJ role or Manage Server, loaded by anyone in it). Storage: ``timmybot.playlists.book``.

Saving the queue, adding the current track, showing, listing, removing, renaming and deleting run
here, on the store alone. Loading (voice checks, the launcher), adding a search, importing and
exporting go to the worker (``timmybot.playlists.jobs``), which edits the "thinking…" response.
An import's attachment is checked here first (the CDN host, its size), so a refused file is
answered at once and nothing is fetched or dispatched.

Without ``scope``, a read (load, show, export) or a change finds your personal playlist of that
name first, then this server's; save and import make a personal one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.commands.base import Choice, Command, CommandContext, Option, require_adding, subcommand
from chalicelib.commands.play import QUERY_MAX_LENGTH, require_interrupt
from chalicelib.replies import Reply
from timmybot import text
from timmybot.discord import custom_ids, ui
from timmybot.discord.custom_ids import InvalidCustomIdError, SavedPlaylistDeleteId, SavedPlaylistPageId
from timmybot.discord.types import ButtonStyle, ComponentPayload, ComponentType, EmbedPayload, OptionType
from timmybot.errors import InvalidInputError, NothingPlayingError, PermissionDeniedError
from timmybot.models import GuildRecord
from timmybot.playlists import names, transfer
from timmybot.playlists.book import SCOPES, Header, Owner, PlaylistBook, book_for, entry_track, track_key
from timmybot.store.base import Store
from timmybot.worker.jobs import PLACEMENTS

if TYPE_CHECKING:
    from chalicelib.dispatch import Dispatcher

_log = logging.getLogger(__name__)

PAGE_SIZE = 10
LINE_MAX = 80


# ---------------------------------------------------------------------- rules
def owner_of(ctx: CommandContext, scope: str) -> Owner:
    return Owner(scope, ctx.user_id if scope == "personal" else ctx.guild_id)


def can_manage(ctx: CommandContext, record: GuildRecord) -> bool:
    """Server playlists are the DJ role's and Manage Server's (not whoever is alone with the bot)."""
    dj_role = record.settings.dj_role_id
    return ctx.is_manager() or bool(dj_role and dj_role in ctx.roles)


def require_manage(ctx: CommandContext, store: Store, owner: Owner) -> None:
    if owner.scope == "personal":
        return
    record = store.get_guild(ctx.guild_id)
    if can_manage(ctx, record):
        return
    dj_role = record.settings.dj_role_id
    who = f"members with the <@&{dj_role}> role or Manage Server" if dj_role else "members with Manage Server"
    raise PermissionDeniedError(f"Only {who} can change this server's playlists. You can still load them.")


def _scope(ctx: CommandContext) -> str | None:
    raw = ctx.options.get("scope")
    if raw is None:
        return None
    if raw not in SCOPES:
        raise InvalidInputError("Scope must be `personal` or `server`.")
    return str(raw)


def _find(ctx: CommandContext, book: PlaylistBook) -> tuple[Owner, Header]:
    """The named playlist: in the given scope, else personal first, then this server's."""
    name = ctx.str_option("name")
    scope = _scope(ctx)
    if scope is not None:
        owner = owner_of(ctx, scope)
        return owner, book.get(owner, name)
    for candidate in SCOPES:
        owner = owner_of(ctx, candidate)
        found = book.find(owner, name)
        if found is not None:
            return owner, found
    raise InvalidInputError(
        f"Neither you nor this server has a playlist named **{text.quote(name, text.IN_SENTENCE)}**. "
        "/playlist list shows them."
    )


def _count(n: int) -> str:
    return f"{n} track" if n == 1 else f"{n} tracks"


# ---------------------------------------------------------------------- the command
def playlist(ctx: CommandContext, store: Store, dispatcher: Dispatcher) -> Reply:
    book = book_for(store, ctx.settings)
    handler = _STORE_ONLY.get(ctx.subcommand)
    if handler is not None:
        return handler(ctx, store, book)
    if ctx.subcommand in ("load", "export", "import", "add"):
        return _deferred(ctx, store, dispatcher, book)
    raise InvalidInputError("I don't know that /playlist command. Try again in a minute.")


def _save(ctx: CommandContext, store: Store, book: PlaylistBook) -> Reply:
    owner = owner_of(ctx, _scope(ctx) or "personal")
    require_manage(ctx, store, owner)
    record = store.get_guild(ctx.guild_id)
    playing = record.actual.now_playing
    waiting = [i for i in record.queue if playing is None or i != playing.entry_id]
    queued = store.get_entries(ctx.guild_id, waiting[: book.max_tracks])
    entries = ([playing] if playing is not None else []) + queued
    if not entries:
        raise NothingPlayingError("Nothing is playing or queued, so there is nothing to save.")
    name = ctx.str_option("name")
    header, left_out = book.create(owner, name, [entry_track(e) for e in entries], created_by=ctx.user_id)
    left_out = max(left_out, len(waiting) + (playing is not None) - header.count)
    more = f" The other {left_out} didn't fit: a playlist holds at most {book.max_tracks}." if left_out else ""
    where = "your personal playlist" if owner.scope == "personal" else "this server's playlist"
    return Reply.message(f"💾 Saved {_count(header.count)} as {where} {header.shown}.{more}")


def _add_current(ctx: CommandContext, store: Store, book: PlaylistBook) -> Reply:
    owner, header = _find(ctx, book)
    require_manage(ctx, store, owner)
    playing = store.get_guild(ctx.guild_id).actual.now_playing
    if playing is None:
        raise NothingPlayingError("Nothing is playing. Give `query` to add a song by search or link.")
    header, added, _left = book.append(owner, header.name, [entry_track(playing)])
    if not added:
        raise InvalidInputError("I can't keep that track in a playlist (its link is too long or missing).")
    title = text.quote(playing.title, text.IN_SENTENCE)
    return Reply.private(f"Added **{title}** to {header.shown} ({_count(header.count)}).")


def _show(ctx: CommandContext, store: Store, book: PlaylistBook) -> Reply:
    owner, header = _find(ctx, book)
    page = ctx.int_option("page", default=1)
    return _show_reply(book, owner, header, page, clamp=False)


def _show_reply(book: PlaylistBook, owner: Owner, header: Header, page: int, *, clamp: bool) -> Reply:
    tracks = book.tracks(owner, header)
    dead = book.dead_keys(owner, header)
    pages = max(1, (len(tracks) + PAGE_SIZE - 1) // PAGE_SIZE)
    if not 1 <= page <= pages:
        if not clamp:
            raise InvalidInputError(f"`page` must be between 1 and {pages}.")
        page = min(max(1, page), pages)
    start = (page - 1) * PAGE_SIZE
    lines = [
        f"`{n}.` {text.quote(str(t.get('title') or 'Unknown title'), LINE_MAX)} · "
        f"{ui.format_duration(t.get('duration_s'))}" + (" · 💀 dead" if track_key(t) in dead else "")
        for n, t in enumerate(tracks[start : start + PAGE_SIZE], start=start + 1)
    ]
    whose = "Personal" if owner.scope == "personal" else "Server"
    marked = sum(1 for t in tracks if track_key(t) in dead)
    footer = f"{whose} playlist · {_count(len(tracks))} · page {page}/{pages}" + (f" · {marked} dead" if marked else "")
    embed: EmbedPayload = {
        "title": text.quote(header.name, 200),
        "description": "\n".join(lines) or "This playlist is empty.",
        "color": ui.COLOR,
        "footer": {"text": footer},
    }
    components: tuple[ComponentPayload, ...] = ()
    if pages > 1:

        def button(emoji: str, target: int, disabled: bool) -> ComponentPayload:
            return {
                "type": ComponentType.BUTTON,
                "style": ButtonStyle.SECONDARY,
                "emoji": {"name": emoji},
                "custom_id": custom_ids.build(SavedPlaylistPageId(owner.scope, header.id, target)),
                "disabled": disabled,
            }

        row = [button("◀", max(1, page - 1), page <= 1), button("▶", min(pages, page + 1), page >= pages)]
        components = ({"type": ComponentType.ACTION_ROW, "components": row},)
    return Reply.message(embeds=(embed,), components=components, ephemeral=True)


def _list(ctx: CommandContext, store: Store, book: PlaylistBook) -> Reply:
    sections = []
    for scope, title in (("personal", "Your playlists"), ("server", "This server's playlists")):
        headers = book.headers(owner_of(ctx, scope))
        lines = [f"• **{text.quote(h.name, 60)}** · {_count(h.count)}" for h in headers]
        sections.append(f"**{title}** ({len(headers)}/{book.max_playlists})\n" + ("\n".join(lines) or "none yet"))
    return Reply.private("\n\n".join(sections))


def _remove(ctx: CommandContext, store: Store, book: PlaylistBook) -> Reply:
    owner, header = _find(ctx, book)
    require_manage(ctx, store, owner)
    header, removed = book.remove_at(owner, header.name, ctx.int_option("index"))
    title = text.quote(str(removed.get("title") or "that track"), text.IN_SENTENCE)
    return Reply.private(f"🗑 Removed **{title}** from {header.shown} ({_count(header.count)} left).")


def _rename(ctx: CommandContext, store: Store, book: PlaylistBook) -> Reply:
    owner, header = _find(ctx, book)
    require_manage(ctx, store, owner)
    renamed = book.rename(owner, header.name, ctx.str_option("new_name"))
    return Reply.private(f"Renamed {header.shown} to {renamed.shown}.")


def _delete(ctx: CommandContext, store: Store, book: PlaylistBook) -> Reply:
    owner, header = _find(ctx, book)
    require_manage(ctx, store, owner)
    confirm: ComponentPayload = {
        "type": ComponentType.BUTTON,
        "style": ButtonStyle.DANGER,
        "label": "Delete it",
        "custom_id": custom_ids.build(SavedPlaylistDeleteId(owner.scope, header.id)),
    }
    return Reply.private(
        f"Delete {header.shown} ({_count(header.count)})? This can't be undone.",
        components=({"type": ComponentType.ACTION_ROW, "components": [confirm]},),
    )


_STORE_ONLY = {
    "save": _save,
    "show": _show,
    "list": _list,
    "remove": _remove,
    "rename": _rename,
    "delete": _delete,
}


def _deferred(ctx: CommandContext, store: Store, dispatcher: Dispatcher, book: PlaylistBook) -> Reply:
    from timmybot.playlists.jobs import JobKind, PlaylistJob  # noqa: PLC0415 - the worker's module

    fields: dict[str, Any] = {}
    if ctx.subcommand == "import":
        kind, owner = JobKind.IMPORT, owner_of(ctx, _scope(ctx) or "personal")
        require_manage(ctx, store, owner)
        name = book.check_new(owner, ctx.str_option("name"))
        fields.update(_import_source(ctx))
    elif ctx.subcommand == "add":
        if "query" not in ctx.options:
            return _add_current(ctx, store, book)
        kind, (owner, header) = JobKind.ADD, _find(ctx, book)
        require_manage(ctx, store, owner)
        name, fields["query"] = header.name, _checked_query(ctx, ctx.str_option("query"))
    else:
        kind, (owner, header) = JobKind(ctx.subcommand), _find(ctx, book)
        name = header.name
        if kind is JobKind.LOAD:
            placement = ctx.str_option("placement", default="end")
            if placement not in PLACEMENTS:
                raise InvalidInputError("Placement must be `end`, `next` or `now`.")
            record = store.get_guild(ctx.guild_id)
            require_adding(ctx, record)
            if placement == "now":
                require_interrupt(ctx, record)
            fields["placement"] = placement
    job = PlaylistJob(kind=kind, **ctx.job_envelope(), scope=owner.scope, name=name, **fields)
    dispatcher.dispatch(job.to_dict())
    _log.info("playlist job %s (%s) dispatched for guild %s", ctx.interaction_id, kind.value, ctx.guild_id)
    return Reply.deferred(ephemeral=kind is not JobKind.LOAD)


def _checked_query(ctx: CommandContext, query: str) -> str:
    if len(query) > QUERY_MAX_LENGTH:
        raise InvalidInputError(f"That's too long: a search or link can be at most {QUERY_MAX_LENGTH} characters.")
    from timmybot.sources.policy import classify_query  # noqa: PLC0415 - paid by these commands only

    classify_query(query, ctx.settings.source_settings())
    return query


def _import_source(ctx: CommandContext) -> dict[str, Any]:
    """The import's file (its link and size checked, nothing fetched) or playlist link."""
    file_id, url = ctx.options.get("file"), ctx.options.get("url")
    if (file_id is None) == (url is None):
        raise InvalidInputError("Give either `file` (an exported playlist) or `url` (a playlist link), not both.")
    if isinstance(url, str):
        return {"query": _checked_query(ctx, url)}
    attachment = ctx.attachments.get(str(file_id))
    if attachment is None:
        raise InvalidInputError("I can't see that file. Attach it again.")
    size = attachment.get("size")
    checked = transfer.check_attachment(
        str(attachment.get("url") or ""),
        size if isinstance(size, int) else -1,
        host=ctx.settings.attachment_host,
        max_bytes=ctx.settings.playlist_import_max_bytes,
    )
    return {"attachment_url": checked, "attachment_size": size}


# ---------------------------------------------------------------------- components
def page_click(ctx: CommandContext, store: Store) -> Reply:
    """◀ ▶ under /playlist show: another page (type 7), of the clicker's own or this guild's playlist."""
    if not isinstance(ctx.custom_id, SavedPlaylistPageId):
        raise InvalidCustomIdError()
    book = book_for(store, ctx.settings)
    owner = owner_of(ctx, ctx.custom_id.scope)
    header = book.by_id(owner, ctx.custom_id.playlist_id)
    if header is None:
        raise InvalidInputError("That playlist is gone (deleted, or not yours). Run /playlist list.")
    reply = _show_reply(book, owner, header, ctx.custom_id.page, clamp=True)
    return Reply.update(embeds=reply.embeds, components=reply.components)


def delete_confirm(ctx: CommandContext, store: Store) -> Reply:
    if not isinstance(ctx.custom_id, SavedPlaylistDeleteId):
        raise InvalidCustomIdError()
    owner = owner_of(ctx, ctx.custom_id.scope)
    require_manage(ctx, store, owner)
    gone = book_for(store, ctx.settings).delete(owner, ctx.custom_id.playlist_id)
    if gone is None:
        return Reply.update("That playlist was already deleted.", components=())
    return Reply.update(f"🗑 Deleted {gone.shown} ({_count(gone.count)}).", components=())


# ---------------------------------------------------------------------- autocomplete
def name_choices(store: Store, settings: Any, *, user_id: str, guild_id: str, typed: str) -> list[dict[str, str]]:
    """Names of the user's and the guild's playlists matching ``typed`` (store reads only)."""
    book = book_for(store, settings)
    wanted = names.name_key(typed)
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for scope, owner_id in (("personal", user_id), ("server", guild_id)):
        for header in book.headers(Owner(scope, owner_id)):
            if wanted in header.key and header.key not in seen:
                seen.add(header.key)
                label = "" if scope == "personal" else " (server)"
                out.append({"name": text.cap(header.name + label, 100), "value": header.name})
    return out[:25]


# ---------------------------------------------------------------------- the schema
def _name(description: str = "The playlist's name") -> Option:
    return Option("name", description, OptionType.STRING, min_length=1, max_length=names.NAME_MAX, autocomplete=True)


def _new_name(name: str, description: str) -> Option:
    return Option(name, description, OptionType.STRING, min_length=1, max_length=names.NAME_MAX)


_SCOPE = Option(
    "scope",
    "Your personal playlists (default) or this server's",
    OptionType.STRING,
    required=False,
    choices=(Choice("personal", "personal"), Choice("server", "server")),
)

COMMANDS: tuple[Command, ...] = (
    Command(
        "playlist",
        "Saved playlists: yours in every server, or this server's.",
        playlist,
        (
            subcommand("save", "Save the queue (with the playing track) as a new playlist.",
                       _new_name("name", "A name for the new playlist"), _SCOPE),
            subcommand("add", "Add the playing track, or a search or link, to a playlist.", _name(),
                       Option("query", "A search or link (default: the playing track)", OptionType.STRING,
                              required=False, min_length=1, max_length=QUERY_MAX_LENGTH), _SCOPE),
            subcommand("load", "Queue a saved playlist.", _name(),
                       Option("placement", "Where it goes: the end of the queue (default), next, or now",
                              OptionType.STRING, required=False,
                              choices=(Choice("end of the queue", "end"), Choice("play next", "next"),
                                       Choice("play now", "now"))), _SCOPE),
            subcommand("show", "Show a playlist's tracks.", _name(),
                       Option("page", "Which page", OptionType.INTEGER, required=False, min_value=1,
                              max_value=100), _SCOPE),
            subcommand("list", "List your playlists and this server's."),
            subcommand("remove", "Remove a track from a playlist.", _name(),
                       Option("index", "Its number in /playlist show", OptionType.INTEGER, min_value=1,
                              max_value=1000), _SCOPE),
            subcommand("rename", "Rename a playlist.", _name(), _new_name("new_name", "Its new name"), _SCOPE),
            subcommand("delete", "Delete a playlist (asks first).", _name(), _SCOPE),
            subcommand("export", "Get a playlist as a JSON file.", _name(), _SCOPE),
            subcommand("import", "A new playlist from an exported file or a playlist link.",
                       _new_name("name", "A name for the new playlist"),
                       Option("file", "A file from /playlist export", OptionType.ATTACHMENT, required=False),
                       Option("url", "A YouTube, SoundCloud or Spotify playlist link", OptionType.STRING,
                              required=False, min_length=1, max_length=QUERY_MAX_LENGTH), _SCOPE),
        ),
        rate="play",
    ),
)  # fmt: skip
