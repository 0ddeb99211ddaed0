"""/search: the worker finds up to ten results, ranks them and shows an owner-only select menu.

The api answered "thinking…" (ephemeral) and handed over a ``SearchJob``; ``run_search_job``
searches through the source chain (``timmybot.sources.router.search_results``: the first source
that finds any, or the one the user named), ranks them (``timmybot.sources.ranking``), caches each
result like /play's search (so a pick of a YouTube result needs no second lookup) and edits the
reply into the menu.

The menu's state is the store's "search menu" record (``timmybot.store.keys``) under the user's
partition, for 15 minutes — the interaction token's life — never process memory, so a pick still
works after the api restarts. The menu's custom id names its owner, the placement and the search
(8 hex of its interaction id): another user's pick is refused, and a menu whose record expired or
was replaced by a newer /search says so. A pick is queued by the /play worker with the result's
link (``chalicelib.commands.search``), so it follows every /play rule.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from timmybot import preferences, text
from timmybot.discord import custom_ids, ui
from timmybot.discord.types import ComponentPayload, ComponentType
from timmybot.errors import InvalidInputError
from timmybot.library.personal import track_digest
from timmybot.models import Track, source_label
from timmybot.store.keys import SEARCH_MENU_SK, user_pk
from timmybot.worker.answer import answer
from timmybot.worker.jobs import PLACEMENTS, envelope_from_dict, envelope_to_dict

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.discord.rest import DiscordRest
    from timmybot.sources.chain import SourceChain
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

JOB_TAG = "search"
RESULTS_MAX = 10  # results searched for and shown (Discord's menu takes 25)
MENU_TTL_S = 15 * 60  # the interaction token's life: the menu cannot be edited after it anyway
OPTION_TEXT_MAX = 100  # Discord's limit for an option's label and description
PLACEHOLDER_MAX = 150
TITLE_SHOWN = 80
#: The sources /search may be asked to use (the option's choices); the chain must have them too.
SEARCH_SOURCES = ("youtube", "ytmusic", "soundcloud")
PLACEMENT_WORDS = {"end": "at the end of the queue", "next": "next", "now": "now"}
GENERIC_APOLOGY = "Sorry, something went wrong on my side while searching. Please try /search again in a moment."
EXPIRED = "That search has expired (results last 15 minutes). Run /search again."
NOT_YOURS = "That menu belongs to someone else's search. Run /search to pick from your own."
STALE = "That result is no longer in your search. Run /search again."


@dataclass(frozen=True)
class SearchJob:
    """What the api hands the worker for /search (a plain dict on the wire)."""

    interaction_id: str
    application_id: str
    guild_id: str
    user_id: str
    query: str
    channel_id: str | None = None
    roles: tuple[str, ...] = ()
    permissions: int = 0
    placement: str = "end"
    source: str | None = None  # one of SEARCH_SOURCES, or None: the chain's order
    token: str = field(default="", repr=False)  # the interaction token: never log it

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": JOB_TAG,
            **envelope_to_dict(self),
            "query": self.query,
            "placement": self.placement,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchJob:
        """Parse a job; ``ValueError`` names what is wrong (never the token's value)."""
        placement = data.get("placement")
        source = data.get("source")
        if placement not in PLACEMENTS:
            raise ValueError("search job has no valid placement")
        if source is not None and source not in SEARCH_SOURCES:
            raise ValueError("search job names an unknown source")
        return cls(
            **envelope_from_dict(data, what="search job", also_required=("query",)),
            query=str(data["query"]),
            placement=str(placement),
            source=source,
        )


def is_search_job(event: Mapping[str, Any]) -> bool:
    return event.get("job") == JOB_TAG


def menu_id(interaction_id: str) -> str:
    """8 hex naming one search (its menu's custom id carries it)."""
    return hashlib.sha256(f"search\x00{interaction_id}".encode()).hexdigest()[:8]


# ---------------------------------------------------------------------- the menu's record
def save_menu(store: Store, user_id: str, menu: str, tracks: Sequence[Track]) -> None:
    data = {"menu": menu, "items": [t.to_dict() for t in tracks[:RESULTS_MAX]]}
    store.update_record(user_pk(user_id), SEARCH_MENU_SK, lambda _current: data, ttl_s=MENU_TTL_S)


def menu_tracks(store: Store, user_id: str, menu: str) -> list[Track] | None:
    """The results menu ``menu`` of ``user_id`` shows, or None once expired or replaced."""
    record = store.get_record(user_pk(user_id), SEARCH_MENU_SK)
    if record is None or record.get("menu") != menu:
        return None
    tracks: list[Track] = []
    for item in record.get("items") or ():
        try:
            tracks.append(Track.from_dict(item))
        except (KeyError, TypeError, ValueError):
            _log.warning("skipping a malformed search result of user %s", user_id)
    return tracks


def picked(tracks: Sequence[Track], index: int, digest: str) -> Track:
    """The result a menu option names (its index, checked by its digest); ``STALE`` otherwise."""
    if 0 <= index < len(tracks) and track_digest(tracks[index]) == digest:
        return tracks[index]
    raise InvalidInputError(STALE)


# ---------------------------------------------------------------------- rendering
def menu_body(owner_id: str, menu: str, placement: str, query: str, tracks: Sequence[Track]) -> dict[str, Any]:
    """The edited reply: the results numbered, and the owner-only select menu."""
    shown = tracks[:RESULTS_MAX]
    lines = [
        f"`{n}.` {text.quote(t.title, TITLE_SHOWN)} · {text.quote(t.artist or '', 40) or 'unknown'}"
        f" · {ui.format_duration(t.duration_s)}"
        for n, t in enumerate(shown, start=1)
    ]
    options = [
        {
            "label": text.cap(f"{n}. {' '.join(t.title.split())}", OPTION_TEXT_MAX) or f"{n}.",
            "value": custom_ids.history_choice(n - 1, track_digest(t)),
            "description": text.cap(
                f"{' '.join((t.artist or 'unknown').split())} · {ui.format_duration(t.duration_s)}"
                f" · {source_label(t.source)}",
                OPTION_TEXT_MAX,
            ),
        }
        for n, t in enumerate(shown, start=1)
    ]
    select: ComponentPayload = {
        "type": ComponentType.STRING_SELECT,
        "custom_id": custom_ids.build(custom_ids.SearchPickId(owner_id, placement, menu)),
        "placeholder": text.cap(f"Choose a result to play {PLACEMENT_WORDS[placement]}", PLACEHOLDER_MAX),
        "options": options,
        "min_values": 1,
        "max_values": 1,
    }
    head = f"Results for {text.quote(query, 100)} (best match first):"
    return {
        "content": "\n".join([head, *lines]),
        "embeds": [],
        "components": [{"type": ComponentType.ACTION_ROW, "components": [select]}],
    }


# ---------------------------------------------------------------------- the worker's job
def run_search_job(
    job: SearchJob,
    *,
    store: Store,
    rest: DiscordRest,
    sources: SourceChain,
    settings: Settings,
    clock: Callable[[], float] = time.time,
) -> None:
    """Search, rank, save the menu, edit the reply. A domain error becomes its sentence."""
    started = clock()
    body = answer(
        job,
        rest,
        lambda: _search(job, store=store, sources=sources, settings=settings, now=started),
        what="search job",
        apology=GENERIC_APOLOGY,
    )
    if body is not None:
        _log.info("search job %s answered in %.1f s", job.interaction_id, max(0.0, clock() - started))


def _search(job: SearchJob, *, store: Store, sources: SourceChain, settings: Settings, now: float) -> dict[str, Any]:
    from timmybot.sources.ranking import rank_tracks  # noqa: PLC0415 - the worker's, not the api's
    from timmybot.sources.router import search_results  # noqa: PLC0415

    if not text.is_encodable(job.query):
        raise InvalidInputError(text.UNREADABLE)
    only = _chain_name(job.source, sources.settings.source_chain)
    prefs = preferences.touch(store, job.user_id, now=now)
    chain = sources.preferring(prefs.platform if prefs is not None else None)
    found = search_results(job.query, chain, limit=RESULTS_MAX, only=only, guild_id=job.guild_id)
    ranked = rank_tracks(job.query, _unique(found))[:RESULTS_MAX]
    for track in ranked:
        try:
            store.put_cached_track(track, ttl_s=settings.track_cache_ttl_s)
        except Exception:
            _log.warning("could not cache search result %s/%s", track.source, track.source_id, exc_info=True)
    menu = menu_id(job.interaction_id)
    save_menu(store, job.user_id, menu, ranked)
    _log.info("search job %s: %s result(s) for guild %s", job.interaction_id, len(ranked), job.guild_id)
    return menu_body(job.user_id, menu, job.placement, job.query, ranked)


def _chain_name(source: str | None, chain: Sequence[str]) -> str | None:
    """The chain's name for the asked source; a source the chain lacks is the user's sentence."""
    if source is None:
        return None
    if source not in chain:
        raise InvalidInputError(
            f"I don't search {source_label(source)} here. Leave `source` out to use the usual ones."
        )
    return source


def _unique(tracks: Sequence[Track]) -> list[Track]:
    seen: set[tuple[str, str]] = set()
    out: list[Track] = []
    for track in tracks:
        if track.cache_key not in seen:
            seen.add(track.cache_key)
            out.append(track)
    return out
