"""The worker's saved-playlist jobs: load, add a query, import, export.

The api checks names, scopes and rights and answers "thinking…"; the job does what needs the
network or the voice checks, then edits the response. Loading reuses the /play worker
(``timmybot.worker.play``): the member's voice channel and the bot's permissions, entry ids from the
interaction id (a redelivered job adds nothing twice), the launcher. Its tracks are queued from
their stored metadata, with no search; a Spotify track is matched to its mirror at play time, as
any queued Spotify track. A load notes which playlist it queued (``keys.playlist_load_pk``), so the
voice task can mark a track that fails to play as dead (``dead``); later loads skip dead tracks.

Importing resolves every link through /play's URL policy and the source chain, as /play would:
nothing in a file is trusted as an already-resolved track. Like /play, each job is claimed on its
marker (``timmybot.worker.answer``).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from timmybot import text
from timmybot.errors import InvalidInputError, QueueFullError, TimmyError, TrackNotFoundError
from timmybot.library.paging import ListWalk, StopReason
from timmybot.models import Track
from timmybot.playlists import transfer
from timmybot.playlists.book import SCOPES, Header, Owner, PlaylistBook, book_for, track_key
from timmybot.store import keys
from timmybot.worker.answer import Once, answer, sentence
from timmybot.worker.jobs import PLACEMENTS, PlayJob, envelope_from_dict, envelope_to_dict
from timmybot.worker.play import added_body, enqueue_tracks, prepare_play, resolve_tracks, start_playback

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.discord.rest import DiscordRest
    from timmybot.launcher import Launcher
    from timmybot.sources.chain import SourceChain
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

JOB_TAG = "saved_playlist"
LOAD_TTL_S = 7 * 24 * 3600
PROGRESS_EVERY = 25
APOLOGY = "Sorry, something went wrong on my side with that playlist. Please try again in a moment."
QUERY_MAX = 200  # /play's limit on a search or link
IMPORT_BUDGET_S = 80.0  # resolving a file's links stops here: the worker's timeout is 120 s


class JobKind(enum.StrEnum):
    LOAD = "load"
    ADD = "add"  # add a query's tracks to a playlist
    IMPORT = "import"  # a new playlist from a file or a playlist link
    EXPORT = "export"


@dataclass(frozen=True)
class PlaylistJob:
    kind: JobKind
    interaction_id: str
    application_id: str
    guild_id: str
    user_id: str
    scope: str
    name: str
    channel_id: str | None = None
    roles: tuple[str, ...] = ()
    permissions: int = 0
    placement: str = "end"
    query: str | None = None  # ADD: what to search; IMPORT: a playlist link
    attachment_url: str | None = None  # IMPORT: the file's CDN link
    attachment_size: int = -1
    token: str = field(default="", repr=False)  # the interaction token: never log it

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": JOB_TAG,
            "kind": self.kind.value,
            **envelope_to_dict(self),
            "scope": self.scope,
            "name": self.name,
            "placement": self.placement,
            "query": self.query,
            "attachment_url": self.attachment_url,
            "attachment_size": self.attachment_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlaylistJob:
        """Parse a job; ``ValueError`` names what is wrong (never the token's value)."""
        envelope = envelope_from_dict(data, what="playlist job", also_required=("scope", "name"))
        scope = str(data["scope"])
        if scope not in SCOPES:
            raise ValueError("playlist job: unknown scope")
        size = data.get("attachment_size")
        placement = data.get("placement")
        return cls(
            kind=JobKind(str(data.get("kind"))),
            **envelope,
            scope=scope,
            name=str(data["name"]),
            placement=placement if placement in PLACEMENTS else "end",
            query=str(data["query"]) if data.get("query") else None,
            attachment_url=str(data["attachment_url"]) if data.get("attachment_url") else None,
            attachment_size=size if isinstance(size, int) and not isinstance(size, bool) else -1,
        )

    @property
    def marker(self) -> str:
        return f"saved-playlist:{self.interaction_id}"

    @property
    def owner(self) -> Owner:
        return Owner(self.scope, self.user_id if self.scope == "personal" else self.guild_id)

    def as_play_job(self, query: str) -> PlayJob:
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
            placement=self.placement,
        )


def is_playlist_job(event: Mapping[str, Any]) -> bool:
    return event.get("job") == JOB_TAG


@dataclass
class PlaylistPorts:
    store: Store
    rest: DiscordRest
    launcher: Launcher
    sources: SourceChain
    settings: Settings
    clock: Callable[[], float] = time.time

    @property
    def book(self) -> PlaylistBook:
        return book_for(self.store, self.settings)


def run_playlist_job(job: PlaylistJob, ports: PlaylistPorts) -> None:
    """Handle one job end to end; its reply and errors as every worker job's (``timmybot.worker.answer``)."""
    answer(
        job,
        ports.rest,
        lambda: HANDLERS[job.kind](job, ports),
        what=f"playlist job ({job.kind.value})",
        apology=APOLOGY,
        once=Once.for_worker(ports.store, job.marker, ports.settings),
        send=job.kind is not JobKind.EXPORT,  # the export's own edit carried the file
    )


# ---------------------------------------------------------------------- the jobs
def _load(job: PlaylistJob, ports: PlaylistPorts) -> dict[str, Any]:
    owner = job.owner
    header = ports.book.get(owner, job.name)
    stored = ports.book.tracks(owner, header)
    dead = ports.book.dead_keys(owner, header)
    live = [t for t in stored if track_key(t) not in dead]
    skipped = len(stored) - len(live)
    if not live:
        reason = f" ({skipped} marked dead after failing to play)" if skipped else ""
        raise TrackNotFoundError(f"{header.shown} has no tracks I can play{reason}.")
    play_job = job.as_play_job(f"saved playlist {header.id}")
    now = ports.clock()
    placement = prepare_play(play_job, store=ports.store, rest=ports.rest, settings=ports.settings, now=now)
    room = ports.settings.queue_cap - len(ports.store.get_guild(job.guild_id).queue)
    if room <= 0:
        raise QueueFullError(f"The queue is full ({ports.settings.queue_cap} tracks at most).")
    tracks = [Track.from_dict(t) for t in live[:room]]
    _note_load(ports, job, owner, header)
    queued, entries = enqueue_tracks(play_job, tracks, store=ports.store, settings=ports.settings, now=now,
                                     placement=job.placement)  # fmt: skip
    launch = start_playback(play_job, placement, store=ports.store, launcher=ports.launcher)
    first = entries[0].entry_id
    position = queued.queue.index(first) + 1 if first in queued.queue else None
    body = added_body(play_job, tracks, position=position, launch=launch, post=placement.post)
    notes = [f"Loaded {header.shown}: {len(tracks)} of its {len(stored)} tracks."]
    if skipped:
        notes.append(f"Skipped {skipped} marked dead (they failed to play); /playlist show lists them.")
    if len(live) > room:
        notes.append(f"{len(live) - room} didn't fit: the queue is full.")
    body["content"] = "\n".join(filter(None, [*notes, body.get("content")]))
    _log.info("playlist job %s loaded %s track(s) in guild %s", job.interaction_id, len(tracks), job.guild_id)
    return body


def _note_load(ports: PlaylistPorts, job: PlaylistJob, owner: Owner, header: Header) -> None:
    """Which playlist this load queued, for the voice task's dead marks (best effort)."""
    record = {"owner_pk": owner.pk, "playlist_id": header.id, "name": header.name,
              "owner_user": job.user_id if owner.scope == "personal" else header.created_by}  # fmt: skip
    try:
        ports.store.update_record(keys.playlist_load_pk(job.interaction_id), keys.PLAYLIST_LOAD_SK,
                                  lambda _current: record, ttl_s=LOAD_TTL_S)  # fmt: skip
    except Exception:
        _log.warning("could not note playlist load %s", job.interaction_id, exc_info=True)


def _add(job: PlaylistJob, ports: PlaylistPorts) -> dict[str, Any]:
    book, owner = ports.book, job.owner
    header = book.get(owner, job.name)
    room = book.max_tracks - header.count
    if room <= 0:
        raise InvalidInputError(f"{header.shown} is full: a playlist holds at most {book.max_tracks} tracks.")
    walk = ListWalk.for_queue(playlist_cap=room, free=room, page_cap=ports.settings.list_page_cap)
    tracks = resolve_tracks(job.query or "", store=ports.store, sources=ports.sources, settings=ports.settings,
                            walk=walk, guild_id=job.guild_id)  # fmt: skip
    header, added, left_out = book.append(owner, job.name, [t.to_dict() for t in tracks])
    first = text.quote(tracks[0].title, text.IN_SENTENCE) if tracks else ""
    what = f"**{first}**" if added == 1 else f"{added} tracks"
    more = f" {left_out} more didn't fit (at most {book.max_tracks} tracks)." if left_out else ""
    return sentence(f"Added {what} to {header.shown} ({header.count} tracks).{more}")


def _import(job: PlaylistJob, ports: PlaylistPorts) -> dict[str, Any]:
    book, owner, settings = ports.book, job.owner, ports.settings
    cap = book.max_tracks
    book.check_new(owner, job.name)  # the name's and the playlist cap's sentences before any download
    walk_note = ""
    if job.attachment_url:
        url = transfer.check_attachment(job.attachment_url, job.attachment_size, host=settings.attachment_host,
                                        max_bytes=settings.playlist_import_max_bytes)  # fmt: skip
        raw = transfer.fetch_attachment(url, max_bytes=settings.playlist_import_max_bytes)
        links, beyond = transfer.parse_document(raw, max_entries=cap)
        check_links(links, ports)
        tracks: list[Track] = []
        missing = 0
        deadline = ports.clock() + IMPORT_BUDGET_S
        for n, link in enumerate(links, start=1):
            if ports.clock() > deadline:
                walk_note = (f"I stopped after {n - 1} of its {len(links)} links: resolving more takes longer than "
                             "one import may. Import the rest as a second playlist.")  # fmt: skip
                break
            found = _resolve_one(link, ports, job.guild_id)
            if found is None:
                missing += 1
            else:
                tracks.append(found)
            if n % PROGRESS_EVERY == 0 and n < len(links):
                _edit(ports, job, sentence(f"Importing… Added {len(tracks)}/{len(links)}"))
        total = len(links) + beyond
    elif job.query:
        walk = ListWalk.for_queue(playlist_cap=cap, free=cap, page_cap=settings.list_page_cap)
        tracks = resolve_tracks(job.query, store=ports.store, sources=ports.sources, settings=settings, walk=walk,
                                guild_id=job.guild_id)  # fmt: skip
        beyond, missing = max(0, len(tracks) - cap) + (1 if walk.stopped is StopReason.ITEM_CAP else 0), 0
        total = max(walk.total or 0, len(tracks))
        if walk.stopped not in (None, StopReason.ITEM_CAP):
            walk_note = walk.left_out() or ""
    else:
        raise InvalidInputError("Attach an exported playlist file, or give a playlist link.")
    if not tracks:
        raise TrackNotFoundError("I found no tracks I can play in that import; nothing was saved.")
    header, left_out = book.create(owner, job.name, [t.to_dict() for t in tracks], created_by=job.user_id)
    notes = [f"Imported {header.shown}: added {header.count}/{max(total, header.count)}."]
    if beyond or left_out:
        notes.append(f"It stopped at the cap: a playlist holds at most {cap} tracks.")
    if missing:
        notes.append(f"{missing} links found nothing I can play.")
    if walk_note:
        notes.append(walk_note)
    return sentence(" ".join(notes))


def check_links(links: list[str], ports: PlaylistPorts) -> None:
    """Every imported link through /play's URL policy first: one refused link refuses the file,
    naming it by number, before anything is resolved or fetched."""
    from timmybot.sources.models import QueryKind  # noqa: PLC0415
    from timmybot.sources.policy import classify_query  # noqa: PLC0415

    for n, link in enumerate(links, start=1):
        try:
            if (
                not link
                or len(link) > QUERY_MAX
                or classify_query(link, ports.sources.settings).kind is QueryKind.SEARCH
            ):
                raise InvalidInputError("not a link")
        except TimmyError:
            raise InvalidInputError(
                f"Entry {n} of that file isn't a link /play accepts, so I imported nothing. "
                "Only YouTube, SoundCloud and Spotify links can be imported."
            ) from None


def _resolve_one(link: str, ports: PlaylistPorts, guild_id: str) -> Track | None:
    """One imported link (policy-checked by ``check_links``) resolved as /play resolves it."""
    try:
        found = resolve_tracks(link, store=ports.store, sources=ports.sources, settings=ports.settings,
                               guild_id=guild_id)  # fmt: skip
    except TimmyError:
        return None
    return found[0] if len(found) == 1 else None


def _export(job: PlaylistJob, ports: PlaylistPorts) -> dict[str, Any]:
    owner = job.owner
    header = ports.book.get(owner, job.name)
    tracks = ports.book.tracks(owner, header)
    data = transfer.export_document(header.name, tracks)
    body = sentence(f"{header.shown}: {header.count} tracks. Import the file with /playlist import.")
    ports.rest.edit_original_with_file(job.application_id, job.token, body,
                                       filename=transfer.export_filename(header.name), data=data)  # fmt: skip
    return body


HANDLERS: dict[JobKind, Callable[[PlaylistJob, PlaylistPorts], dict[str, Any]]] = {
    JobKind.LOAD: _load,
    JobKind.ADD: _add,
    JobKind.IMPORT: _import,
    JobKind.EXPORT: _export,
}


def _edit(ports: PlaylistPorts, job: PlaylistJob, body: Mapping[str, Any]) -> None:
    ports.rest.edit_original(job.application_id, job.token, body)
