"""The worker's personal-music jobs, and the messages they and their buttons show.

The api answers a personal command or component at once (type 5 "thinking…", or type 7 for a menu
choice) and dispatches a ``PersonalJob``; ``run_personal_job`` does the slow part — the user's
tokens, the Spotify / YouTube Data API calls, the source chain — then edits the original response.

Queueing reuses the /play worker (``timmybot.worker.play``): the same voice-channel and permission checks,
entry ids derived from the interaction id (a redelivered job adds nothing twice), the same launcher.
A playlist is queued page by page and the message shows progress ("Added 37/50"); playback starts
with the first page. Every list is walked within a ``ListWalk`` (``timmybot.library.paging``): the page cap,
the playlist cap and the queue's free space, asked again before each page; the final message says
what was left out ("Added 500 of 2,000 from **Road trip**: the queue is full."). Like /play, a job
is claimed on its marker (``timmybot.worker.answer``): a finished one leaves its last edit, which a
redelivery repeats, and a failed one releases its claim for Lambda's retry.

Rendering (``playlist_menu``, ``history_menu``) is pure and cheap: the api's page buttons use it too.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from timmybot import text
from timmybot.discord import custom_ids, ui
from timmybot.discord.types import ButtonStyle, ComponentPayload, ComponentType
from timmybot.errors import TrackNotFoundError
from timmybot.library import personal
from timmybot.library.paging import StopReason
from timmybot.library.personal import Library, PlaylistRef
from timmybot.models import Track
from timmybot.worker.answer import Once, answer, sentence
from timmybot.worker.jobs import PlayJob, envelope_from_dict, envelope_to_dict
from timmybot.worker.play import (
    Placement,
    added_body,
    enqueue_tracks,
    prepare_play,
    queue_walk,
    start_playback,
)

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.discord.rest import DiscordRest
    from timmybot.launcher import Launcher
    from timmybot.sources.chain import SourceChain
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

JOB_TAG = "personal"  # the ``job`` field that tells the worker this is not a /play job
MENU_PAGE_SIZE = 25  # Discord's limit of options in one select menu
HISTORY_SHOWN = 25  # 5 rows of 5 buttons: Discord's limit of buttons in one message
LABEL_MAX = 80  # Discord's limit for button labels
APOLOGY = "Sorry, something went wrong on my side while doing that. Please try the command again in a moment."
OPTION_LABEL_MAX = 100
TITLE_MAX = 90


class JobKind(enum.StrEnum):
    MY_PLAYLISTS = "my_playlists"  # list the user's playlists (menu)
    PLAYLIST = "playlist"  # queue one playlist (from the menu), with progress
    LIKED = "liked"  # queue liked songs
    HISTORY = "history"  # show the history with re-queue buttons
    REQUEUE = "requeue"  # queue one track from the history
    RECOMMEND = "recommend"  # queue a YouTube mix of the user's (or guild's) last track


@dataclass(frozen=True)
class PersonalJob:
    """What the api hands the worker for a personal command (a plain dict on the wire)."""

    kind: JobKind
    interaction_id: str
    application_id: str
    guild_id: str
    user_id: str
    channel_id: str | None = None
    roles: tuple[str, ...] = ()
    permissions: int = 0
    platform: str | None = None
    item_id: str | None = None  # the playlist id
    title: str | None = None  # the playlist's name, as the menu showed it
    track: dict[str, Any] | None = None  # REQUEUE: the track the button named
    token: str = field(default="", repr=False)  # the interaction token: never log it

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": JOB_TAG,
            "kind": self.kind.value,
            **envelope_to_dict(self),
            "platform": self.platform,
            "item_id": self.item_id,
            "title": self.title,
            "track": self.track,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PersonalJob:
        """Parse a job; ``ValueError`` names what is wrong (never the token's value)."""
        envelope = envelope_from_dict(data, what="personal job")
        track = data.get("track")
        return cls(
            kind=JobKind(str(data.get("kind"))),
            **envelope,
            platform=_opt(data.get("platform")),
            item_id=_opt(data.get("item_id")),
            title=_opt(data.get("title")),
            track=dict(track) if isinstance(track, dict) else None,
        )

    @property
    def marker(self) -> str:
        return f"personal:{self.interaction_id}"

    def as_play_job(self, query: str) -> PlayJob:
        """The /play worker's view of this job (same checks, entry ids and edits)."""
        return PlayJob(
            interaction_id=self.interaction_id,
            application_id=self.application_id,
            token=self.token,
            guild_id=self.guild_id,
            channel_id=self.channel_id,
            user_id=self.user_id,
            roles=self.roles,
            permissions=self.permissions,
            query=query,
        )


def is_personal_job(event: Mapping[str, Any]) -> bool:
    return event.get("job") == JOB_TAG


@dataclass
class PersonalPorts:
    store: Store
    rest: DiscordRest
    launcher: Launcher
    sources: SourceChain
    settings: Settings
    library: Library
    clock: Callable[[], float] = time.time


def run_personal_job(job: PersonalJob, ports: PersonalPorts) -> None:
    """Handle one personal job end to end; its reply and errors as every worker job's (``timmybot.worker.answer``)."""
    answer(
        job,
        ports.rest,
        lambda: HANDLERS[job.kind](job, ports),
        what=f"personal job ({job.kind.value})",
        apology=APOLOGY,
        once=Once.for_worker(ports.store, job.marker, ports.settings),
    )


# ---------------------------------------------------------------------- the jobs
def _my_playlists(job: PersonalJob, ports: PersonalPorts) -> dict[str, Any]:
    playlists = ports.library.playlists(job.user_id)
    if not playlists:
        raise TrackNotFoundError("Your linked accounts have no playlists I can see.")
    personal.save_playlists(ports.store, job.user_id, playlists)
    return playlist_menu(playlists, 1)


def _playlist(job: PersonalJob, ports: PersonalPorts) -> dict[str, Any]:
    if job.platform not in personal.PLATFORMS or not job.item_id:
        raise TrackNotFoundError("That playlist choice is incomplete; run /my-playlists again.")
    name = job.title or "your playlist"
    cap = ports.settings.playlist_cap
    play_job = job.as_play_job(f"{job.platform} playlist {job.item_id}")
    now = ports.clock()
    placement = prepare_play(play_job, store=ports.store, rest=ports.rest, settings=ports.settings, now=now)
    walk = queue_walk(ports.store, job.guild_id, ports.settings, cap=cap)
    pages = ports.library.playlist_pages(job.user_id, job.platform, job.item_id, cap, walk)
    expected = _expected_total(ports, job, cap)
    added: list[Track] = []
    launch = None
    for batch in pages:
        enqueue_tracks(play_job, batch, store=ports.store, settings=ports.settings, now=now, offset=len(added))
        added.extend(batch)
        if launch is None:
            launch = start_playback(play_job, placement, store=ports.store, launcher=ports.launcher)
        total = max(expected or 0, len(added))
        _edit(ports, job, sentence(f"Adding **{text.quote(name, text.IN_SENTENCE)}**… Added {len(added)}/{total}"))
    shown = f"**{text.quote(name, text.IN_SENTENCE)}**"
    if not added or launch is None:
        among = f" among the first {walk.seen:,} I read" if walk.stopped is not None and walk.seen else ""
        raise TrackNotFoundError(f"{shown} has no tracks I can play{among}.")
    total = max(expected or 0, len(added))
    body = added_body(play_job, added, position=None, launch=launch, post=placement.post)
    done = walk.left_out(f" from {shown}") or f"Added {len(added)}/{total} from {shown}."
    body["content"] = "\n".join(filter(None, [done, body["content"]]))
    body["components"] = []
    _log.info("personal job %s queued %s track(s) of a %s playlist", job.interaction_id, len(added), job.platform)
    return body


def _liked(job: PersonalJob, ports: PersonalPorts) -> dict[str, Any]:
    play_job = job.as_play_job("liked songs")
    now = ports.clock()
    placement = prepare_play(play_job, store=ports.store, rest=ports.rest, settings=ports.settings, now=now)
    cap = min(personal.LIKED_MAX, ports.settings.playlist_cap)
    walk = queue_walk(ports.store, job.guild_id, ports.settings, cap=cap)
    platform, tracks = ports.library.liked(job.user_id, personal.check_platform(job.platform), cap, walk)
    if not tracks:
        label = personal.PLATFORM_LABELS[platform]
        raise TrackNotFoundError(f"You have no liked songs on {label} that I can play.")
    lead = f"Your liked songs on {_label(platform)}:"
    if walk.stopped is StopReason.QUEUE_FULL or walk.skipped:  # the cap itself is the command's promise
        lead = "\n".join(filter(None, [lead, walk.left_out()]))
    return _queue(job, play_job, placement, tracks, ports=ports, now=now, lead=lead)


def _history(job: PersonalJob, ports: PersonalPorts) -> dict[str, Any]:
    own = personal.history(ports.store, job.user_id)
    recent = ports.library.recently_played(job.user_id)
    shown = personal.combined_history(own, recent, HISTORY_SHOWN)
    if not shown:
        raise TrackNotFoundError("You have no play history yet: /play something first.")
    personal.save_history_view(ports.store, job.user_id, shown)
    return history_menu(job.user_id, shown, with_spotify=bool(recent))


def _requeue(job: PersonalJob, ports: PersonalPorts) -> dict[str, Any]:
    if job.track is None:
        raise TrackNotFoundError("That track is no longer in your history. Run /play-history again.")
    track = Track.from_dict(job.track)
    play_job = job.as_play_job(track.url)
    now = ports.clock()
    placement = prepare_play(play_job, store=ports.store, rest=ports.rest, settings=ports.settings, now=now)
    return _queue(job, play_job, placement, [track], ports=ports, now=now, lead="From your history:")


def _recommend(job: PersonalJob, ports: PersonalPorts) -> dict[str, Any]:
    play_job = job.as_play_job("recommendations")
    now = ports.clock()
    placement = prepare_play(play_job, store=ports.store, rest=ports.rest, settings=ports.settings, now=now)
    seed = personal.mix_seed(ports.store, job.user_id, job.guild_id)
    tracks = personal.recommendations(seed, ports.sources, guild_id=job.guild_id)
    lead = f"A mix based on **{text.quote(seed.title, text.IN_SENTENCE)}**:"
    return _queue(job, play_job, placement, tracks, ports=ports, now=now, lead=lead)


HANDLERS: dict[JobKind, Callable[[PersonalJob, PersonalPorts], dict[str, Any]]] = {
    JobKind.MY_PLAYLISTS: _my_playlists,
    JobKind.PLAYLIST: _playlist,
    JobKind.LIKED: _liked,
    JobKind.HISTORY: _history,
    JobKind.REQUEUE: _requeue,
    JobKind.RECOMMEND: _recommend,
}


def _queue(
    job: PersonalJob,
    play_job: PlayJob,
    placement: Placement,
    tracks: Sequence[Track],
    *,
    ports: PersonalPorts,
    now: float,
    lead: str,
) -> dict[str, Any]:
    queued, entries = enqueue_tracks(play_job, tracks, store=ports.store, settings=ports.settings, now=now)
    launch = start_playback(play_job, placement, store=ports.store, launcher=ports.launcher)
    first = entries[0].entry_id
    position = queued.queue.index(first) + 1 if first in queued.queue else None
    body = added_body(play_job, tracks, position=position, launch=launch, post=placement.post)
    body["content"] = "\n".join(filter(None, [lead, body["content"]]))
    _log.info("personal job %s (%s) queued %s track(s)", job.interaction_id, job.kind.value, len(entries))
    return body


def _expected_total(ports: PersonalPorts, job: PersonalJob, cap: int) -> int | None:
    listed = personal.saved_playlists(ports.store, job.user_id) or []
    for ref in listed:
        if ref.platform == job.platform and ref.id == job.item_id and ref.total is not None:
            return min(ref.total, cap)
    return None


# ---------------------------------------------------------------------- messages
def playlist_menu(playlists: Sequence[PlaylistRef], page: int) -> dict[str, Any]:
    """Page ``page`` of the user's playlists: a select menu of ≤ 25 and ◀ ▶ buttons."""
    pages = max(1, -(-len(playlists) // MENU_PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = playlists[(page - 1) * MENU_PAGE_SIZE : page * MENU_PAGE_SIZE]
    options = []
    for ref in shown:
        count = f" · {ref.total} tracks" if ref.total is not None else ""
        options.append(
            {
                "label": text.cap(ref.name, OPTION_LABEL_MAX),  # plain text: no markdown in a select
                "value": custom_ids.playlist_choice(ref.platform, ref.id),
                "description": f"{ref.label}{count}",
            }
        )
    select: ComponentPayload = {
        "type": ComponentType.STRING_SELECT,
        "custom_id": custom_ids.build(custom_ids.MyPlaylistsPickId()),
        "placeholder": "Choose a playlist to queue",
        "options": options,
        "min_values": 1,
        "max_values": 1,
    }
    rows: list[ComponentPayload] = [{"type": ComponentType.ACTION_ROW, "components": [select]}]
    if pages > 1:
        rows.append(
            {
                "type": ComponentType.ACTION_ROW,
                "components": [
                    _button("◀ Previous", custom_ids.MyPlaylistsPageId(max(1, page - 1)), disabled=page <= 1),
                    _button("Next ▶", custom_ids.MyPlaylistsPageId(min(pages, page + 1)), disabled=page >= pages),
                ],
            }
        )
    content = f"Your playlists ({len(playlists)}) — page {page}/{pages}. Choose one to queue it."
    return {"content": content, "embeds": [], "components": rows}


def history_menu(owner_id: str, tracks: Sequence[Track], *, with_spotify: bool = False) -> dict[str, Any]:
    """The user's recent tracks, numbered, with one re-queue button each (owner-only)."""
    lines = [f"`{n}.` {text.quote(personal.describe(t), TITLE_MAX)}" for n, t in enumerate(tracks, start=1)]
    note = " (with your Spotify recently played)" if with_spotify else ""
    rows: list[ComponentPayload] = []
    for start in range(0, len(tracks), 5):
        buttons = [
            _button(
                f"{n + 1}. {text.cap(t.title, LABEL_MAX - 5)}",  # a button label is plain text
                custom_ids.HistoryReplayId(owner_id, n, personal.track_digest(t)),
            )
            for n, t in enumerate(tracks[start : start + 5], start=start)
        ]
        rows.append({"type": ComponentType.ACTION_ROW, "components": buttons})
    embed = {
        "title": "Your play history",
        "description": "\n".join(lines)[: ui.DESCRIPTION_MAX],
        "color": ui.COLOR,
        "footer": {"text": f"Newest first{note}. Press a button to queue that track again."},
    }
    return {"content": "", "embeds": [embed], "components": rows}


def _button(label: str, custom_id: custom_ids.CustomId, *, disabled: bool = False) -> ComponentPayload:
    return {
        "type": ComponentType.BUTTON,
        "style": ButtonStyle.SECONDARY,
        "label": label,
        "custom_id": custom_ids.build(custom_id),
        "disabled": disabled,
    }


def _label(platform: str) -> str:
    return personal.PLATFORM_LABELS.get(platform, platform)


def _opt(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def _edit(ports: PersonalPorts, job: PersonalJob, body: Mapping[str, Any]) -> None:
    ports.rest.edit_original(job.application_id, job.token, body)
