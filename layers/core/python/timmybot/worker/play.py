"""The /play worker: plain functions over ports (store, Discord REST, launcher, settings).

The api Lambda answered "thinking…" (type 5) and handed over a ``PlayJob``; ``run_play_job`` finds
the member's voice channel, checks the bot's permissions there and in the text channel, applies
the same-channel rule, resolves the query, enqueues, asks the launcher for a voice task and edits
the original response.

Idempotent (Lambda async invoke delivers at least once and retries failures twice): entry ids
derive from the interaction id, so ``append_entries`` adds nothing twice, and the job is claimed on
its marker: a finished job leaves the reply it sent, which a redelivery only repeats; a redelivery
while it still runs does nothing (the first one edits); a job that failed released its claim, so
Lambda's retry runs it again.

Errors: a domain error (``TimmyError``) becomes its sentence in the original response and the job
ends normally. Anything else edits the original to a generic apology, is logged with the
interaction id, and is re-raised so Lambda's retry can run. ``timmybot.worker.answer`` is where
that flow is written, for every worker job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from timmybot import preferences, text, track_cache
from timmybot.discord import ui
from timmybot.discord.permissions import (
    POST_REQUIREMENTS,
    THREAD_POST_REQUIREMENTS,
    VOICE_REQUIREMENTS,
    ChannelInfo,
    GuildRoles,
    channel_permissions,
    missing,
)
from timmybot.discord.rest import DiscordHTTPError
from timmybot.errors import (
    BotPermissionError,
    InvalidInputError,
    NotInVoiceError,
    PlayingElsewhereError,
    QueueFullError,
    StageChannelError,
    TrackNotFoundError,
)
from timmybot.library.paging import ListWalk
from timmybot.models import GuildRecord, QueueEntry, Track, replay_id, source_label
from timmybot.sources import QueryKind, classify_query, resolve_query
from timmybot.worker.answer import Once, answer
from timmybot.worker.jobs import PlayJob

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.discord.rest import DiscordRest
    from timmybot.launcher import Launcher, LaunchResult
    from timmybot.sources.chain import SourceChain
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

GENERIC_APOLOGY = "Sorry, something went wrong on my side while adding that. Please try /play again in a moment."
STARTING_TEXT = "Starting the player…"
MAX_LISTED = 5  # playlist titles shown in the reply
EMBED_TITLE_MAX = 256
UNPOSTABLE_STATUSES = frozenset({403, 404})

_VOICE_SENTENCES: dict[str, str] = {
    "View Channel": "I can't see <#{channel}>: give me the **View Channel** permission there.",
    "Connect": "I can't join <#{channel}>: I need the **Connect** permission there.",
    "Speak": "I can join <#{channel}> but not play in it: I need the **Speak** permission there.",
}
CANT_POST_TEXT = "I can't post in <#{channel}>, so now-playing cards will only show here."


@dataclass(frozen=True)
class PostRights:
    channel_id: str | None
    can_post: bool


def run_play_job(
    job: PlayJob,
    *,
    store: Store,
    rest: DiscordRest,
    launcher: Launcher,
    sources: SourceChain,
    settings: Settings,
    clock: Callable[[], float] = time.time,
) -> None:
    """Handle one /play job end to end (see the module docstring for errors and idempotency)."""
    answer(
        job,
        rest,
        lambda: _play(job, store=store, rest=rest, launcher=launcher, sources=sources, settings=settings, now=clock()),
        what="play job",
        apology=GENERIC_APOLOGY,
        once=Once.for_worker(store, job.marker, settings),
    )


def _play(
    job: PlayJob,
    *,
    store: Store,
    rest: DiscordRest,
    launcher: Launcher,
    sources: SourceChain,
    settings: Settings,
    now: float,
) -> dict[str, Any]:
    if not text.is_encodable(job.query):  # a lone surrogate from JSON: nothing could store or send it
        raise InvalidInputError(text.UNREADABLE)
    placement = prepare_play(job, store=store, rest=rest, settings=settings, now=now)
    walk = queue_walk(store, job.guild_id, settings)
    prefs = preferences.touch(store, job.user_id, now=now)
    chain = sources.preferring(prefs.platform if prefs is not None else None)
    tracks = resolve_tracks(job.query, store=store, sources=chain, settings=settings, walk=walk, guild_id=job.guild_id)
    if walk.seen == 0 and len(tracks) > 1:  # a list read whole elsewhere (yt-dlp): cut to the room left
        tracks = walk.take(tracks)
    queued, entries = enqueue_tracks(
        job, tracks, store=store, settings=settings, now=now, placement=job.placement, prefs=prefs
    )
    launch = start_playback(job, placement, store=store, launcher=launcher)
    if launch.started:
        preferences.start_session(store, job.guild_id, prefs)
    position = queued.queue.index(entries[0].entry_id) + 1 if entries[0].entry_id in queued.queue else None
    _log.info(
        "play job %s queued %s track(s) in guild %s (launcher: %s)",
        job.interaction_id,
        len(entries),
        job.guild_id,
        launch.outcome.value,
    )
    body = added_body(job, tracks, position=position, launch=launch, post=placement.post, total=len(queued.queue))
    note = walk.left_out()
    if note:
        body["content"] = "\n".join(filter(None, [note, body["content"]]))
    return body


def queue_walk(store: Store, guild_id: str, settings: Settings, *, cap: int | None = None) -> ListWalk:
    """The bounds of a list about to be queued in ``guild_id`` (``timmybot.library.paging``): at most ``cap``
    (default ``playlist_cap``) items and the queue's free space, asked again before each further
    page, and ``list_page_cap`` pages. ``QueueFullError`` at once when the queue has no room."""

    def room() -> int:
        return settings.queue_cap - len(store.get_guild(guild_id).queue)

    free = room()
    if free <= 0:
        queued = settings.queue_cap - free
        raise QueueFullError(f"The queue is full ({settings.queue_cap} tracks at most, {queued} queued now).")
    limit = settings.playlist_cap if cap is None else cap
    return ListWalk.for_queue(playlist_cap=limit, free=free, page_cap=settings.list_page_cap, room=room)


@dataclass(frozen=True)
class Placement:
    """Where the job's music plays (the member's voice channel) and whether cards may be posted."""

    voice_id: str
    post: PostRights


def prepare_play(job: PlayJob, *, store: Store, rest: DiscordRest, settings: Settings, now: float) -> Placement:
    """The checks before anything is queued: in voice, not a stage, the bot's permissions, same channel."""
    voice_id = member_voice_channel(rest, job.guild_id, job.user_id)
    voice = _channel(rest, voice_id)
    if voice.is_stage:
        raise StageChannelError()
    guild = GuildRoles.from_payload(_get(rest, f"/guilds/{job.guild_id}", "/guilds/{guild}"))
    bot_id = settings.bot_id
    bot_roles = _member_roles(rest, job.guild_id, bot_id)
    check_voice_permissions(guild, bot_id, bot_roles, voice)
    post = post_rights(rest, guild, bot_id, bot_roles, job.channel_id)
    record = store.get_guild(job.guild_id)
    if record.lease.is_live(now) and record.voice_channel_id and record.voice_channel_id != voice_id:
        raise PlayingElsewhereError(record.voice_channel_id)
    return Placement(voice_id, post)


def enqueue_tracks(
    job: PlayJob,
    tracks: Sequence[Track],
    *,
    store: Store,
    settings: Settings,
    now: float,
    offset: int = 0,
    placement: str = "end",
    prefs: preferences.Preferences | None = None,
) -> tuple[GuildRecord, list[QueueEntry]]:
    """Queue ``tracks`` (entry ids from the interaction id, from ``offset``) at the end, next, or
    now (skipping the current track, which comes back after them as ``play_now_interrupted``
    says), in their order; and note them in the requester's play history and as the guild's last track."""
    entries = [
        QueueEntry(entry_id=job.entry_id(offset + n), track=t, requester_id=job.user_id, added_at=now)
        for n, t in enumerate(tracks)
    ]
    entries = preferences.stamp(entries, prefs)
    if placement == "next":
        queued = store.insert_entries(job.guild_id, entries, cap=settings.queue_cap)
    elif placement == "now":
        comeback = _comeback(job, store.get_guild(job.guild_id), settings, now)
        queued = store.insert_entries(job.guild_id, entries, cap=settings.queue_cap, now_play=True, comeback=comeback)
    else:
        queued = store.append_entries(job.guild_id, entries, cap=settings.queue_cap)
    if tracks:
        try:
            from timmybot import controls  # noqa: PLC0415 - its source imports stay off the api's path
            from timmybot.library import personal  # noqa: PLC0415 - its source imports stay off the api's path

            personal.record_history(store, job.user_id, tracks, now)
            controls.remember_guild(store, job.user_id, job.guild_id)
            personal.remember_guild_track(store, job.guild_id, tracks[-1], now)
        except Exception:
            _log.warning("could not record the play history of job %s", job.interaction_id, exc_info=True)
    return queued, entries


def _comeback(job: PlayJob, record: GuildRecord, settings: Settings, now: float) -> tuple[str, QueueEntry] | None:
    """What replays the track "play now" interrupts: a copy from where it was (``resume``), from
    the start (``restart``), or nothing (``drop``)."""
    playing = record.actual.now_playing
    if playing is None or settings.play_now_interrupted == "drop":
        return None
    start_ms = record.actual.position_at(now) if settings.play_now_interrupted == "resume" else 0
    copy = replace(playing, entry_id=replay_id(playing.entry_id, job.interaction_id, "-back"), start_ms=start_ms,
                   added_at=now)  # fmt: skip
    return playing.entry_id, copy


def start_playback(job: PlayJob, placement: Placement, *, store: Store, launcher: Launcher) -> LaunchResult:
    """Remember the channels, clear a pause and make sure a voice task runs."""
    post = placement.post
    store.set_channels(
        job.guild_id, voice_channel_id=placement.voice_id, text_channel_id=post.channel_id if post.can_post else None
    )
    store.resume(job.guild_id)
    return launcher.ensure_running(job.guild_id)


# ---------------------------------------------------------------------- Discord lookups
def member_voice_channel(rest: DiscordRest, guild_id: str, user_id: str) -> str:
    state = rest.get_voice_state(guild_id, user_id)
    channel = state.get("channel_id") if state else None
    if not channel:
        raise NotInVoiceError()
    return str(channel)


def check_voice_permissions(guild: GuildRoles, bot_id: str, bot_roles: Sequence[str], voice: ChannelInfo) -> None:
    """View Channel, Connect and Speak in the voice channel; one sentence per missing permission."""
    permissions = channel_permissions(guild, bot_id, bot_roles, voice.overwrites)
    lacking = missing(permissions, VOICE_REQUIREMENTS)
    if lacking:
        raise BotPermissionError("\n".join(_VOICE_SENTENCES[name].format(channel=voice.id) for name in lacking))


def post_rights(
    rest: DiscordRest, guild: GuildRoles, bot_id: str, bot_roles: Sequence[str], channel_id: str | None
) -> PostRights:
    """Whether the now-playing card may be posted in the channel /play was typed in."""
    if channel_id is None:
        return PostRights(None, can_post=False)
    try:
        channel = _channel(rest, channel_id)
        requirements = POST_REQUIREMENTS
        overwrites = channel.overwrites
        if channel.is_thread and channel.parent_id:
            overwrites = _channel(rest, channel.parent_id).overwrites
            requirements = THREAD_POST_REQUIREMENTS
    except DiscordHTTPError as error:
        if error.status not in UNPOSTABLE_STATUSES:
            raise
        return PostRights(channel_id, can_post=False)
    permissions = channel_permissions(guild, bot_id, bot_roles, overwrites)
    return PostRights(channel_id, can_post=not missing(permissions, requirements))


def _channel(rest: DiscordRest, channel_id: str) -> ChannelInfo:
    return ChannelInfo.from_payload(_get(rest, f"/channels/{channel_id}", "/channels/{channel}"))


def _member_roles(rest: DiscordRest, guild_id: str, user_id: str) -> list[str]:
    member = _get(rest, f"/guilds/{guild_id}/members/{user_id}", "/guilds/{guild}/members/{user}")
    roles = member.get("roles") or []
    return [str(r) for r in roles]


def _get(rest: DiscordRest, path: str, route: str) -> dict[str, Any]:
    result = rest.request("GET", path, route=route)
    if not isinstance(result, dict):
        raise DiscordHTTPError("GET", route, 200, message="expected a JSON object")
    return result


# ---------------------------------------------------------------------- sources
def resolve_tracks(
    query: str,
    *,
    store: Store,
    sources: SourceChain,
    settings: Settings,
    walk: ListWalk | None = None,
    guild_id: str | None = None,
) -> list[Track]:
    """The query's tracks: from the track cache (``timmybot.track_cache``) for a link or search answered
    within 7 days, else from the sources.

    A Spotify album or playlist (or a spotify.link leading to one) is walked within ``walk``, which
    then tells what was left out. ``guild_id`` (the guild that asks) goes to the sources' breakers:
    a per-track failure counts against a source only when it spreads across guilds."""
    source_settings = sources.settings
    classified = classify_query(query, source_settings)
    order = [source.name for source in sources.sources] if classified.kind is QueryKind.SEARCH else []
    cached = track_cache.lookup(store, classified, order)
    if cached is not None:
        return [cached]
    if classified.kind.is_spotify and classified.source_id and walk is not None:
        from timmybot.library.spotify_links import resolve_link  # noqa: PLC0415 - spotipy only where a link needs it

        kind = classified.kind.value.removeprefix("spotify_")
        tracks = resolve_link(kind, classified.source_id, source_settings, walk)
    else:
        tracks = resolve_query(query, sources, guild_id=guild_id)
    if not tracks:
        raise TrackNotFoundError()
    if len(tracks) == 1:
        track_cache.remember(store, classified, order, tracks[0], ttl_s=settings.track_cache_ttl_s)
    return tracks


# ---------------------------------------------------------------------- replies
def added_body(
    job: PlayJob,
    tracks: Sequence[Track],
    *,
    position: int | None,
    launch: LaunchResult,
    post: PostRights,
    total: int | None = None,
) -> dict[str, Any]:
    """The edit of the original response after a successful enqueue."""
    lines: list[str] = []
    if launch.started:
        lines.append(STARTING_TEXT)
    elif launch.message:
        lines.append(launch.message)
    if not post.can_post and post.channel_id is not None:
        lines.append(CANT_POST_TEXT.format(channel=post.channel_id))
    stand_in = next((t for t in tracks if t.fallback_from), None)
    if stand_in is not None and stand_in.fallback_from is not None:
        lines.append(
            f"{source_label(stand_in.fallback_from)} refused to serve it right now, "
            f"so this plays from {stand_in.label}."
        )
    if len(tracks) == 1:
        embed = _track_embed(job, tracks[0], position, total)
    else:
        embed = _playlist_embed(job, tracks, position, total)
    return {"content": "\n".join(lines), "embeds": [embed]}


PLACED_TEXT = {"end": "Added to the queue", "next": "Playing next", "now": "Playing now"}
PLAYLIST_PLACED = {"next": ", playing next", "now": ", playing now"}


def _where(position: int | None, total: int | None) -> str:
    if not position:
        return "—"
    return f"#{position} of {total}" if total else f"#{position}"


def _track_embed(job: PlayJob, track: Track, position: int | None, total: int | None = None) -> dict[str, Any]:
    embed: dict[str, Any] = {
        "title": text.quote(track.title, EMBED_TITLE_MAX),
        "description": PLACED_TEXT.get(job.placement, PLACED_TEXT["end"]),
        "color": ui.COLOR,
        "fields": [
            {"name": "Duration", "value": ui.format_duration(track.duration_s), "inline": True},
            {"name": "Position", "value": "now" if job.placement == "now" else _where(position, total), "inline": True},
            {"name": "Requested by", "value": f"<@{job.user_id}>", "inline": True},
        ],
    }
    if track.url.startswith(("https://", "http://")):
        embed["url"] = track.url
    if track.thumbnail and track.thumbnail.startswith("https://"):
        embed["thumbnail"] = {"url": track.thumbnail}
    return embed


def _playlist_embed(
    job: PlayJob, tracks: Sequence[Track], position: int | None, total: int | None = None
) -> dict[str, Any]:
    known = [t.duration_s for t in tracks if t.duration_s is not None]
    listed = [f"`{n}.` {text.quote(t.title, 80)}" for n, t in enumerate(tracks[:MAX_LISTED], start=1)]
    if len(tracks) > MAX_LISTED:
        listed.append(f"…and {len(tracks) - MAX_LISTED} more")
    last = position + len(tracks) - 1 if position else None
    where = f"#{position}–#{last}" + (f" of {total}" if total else "") if position else "—"
    return {
        "title": f"Added {len(tracks)} tracks" + PLAYLIST_PLACED.get(job.placement, ""),
        "description": "\n".join(listed),
        "color": ui.COLOR,
        "fields": [
            {"name": "Total duration", "value": ui.format_duration(sum(known)), "inline": True},
            {"name": "Positions", "value": where, "inline": True},
            {"name": "Requested by", "value": f"<@{job.user_id}>", "inline": True},
        ],
    }
