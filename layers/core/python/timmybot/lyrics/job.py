"""/lyrics in the worker: the api deferred (ephemeral "thinking…") and handed over a ``LyricsJob``.

``run_lyrics_job`` looks up the words typed (``query``) or the guild's current track, through the
cache (``service.lookup``), and edits the reply into the first page (``pages.body``). A domain
error becomes its sentence; anything else gets an apology and propagates (the job is harmless to
run twice: the cache answers the second time).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from timmybot import text
from timmybot.errors import InvalidInputError
from timmybot.worker.answer import answer
from timmybot.worker.jobs import envelope_from_dict, envelope_to_dict

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.discord.rest import DiscordRest
    from timmybot.lyrics.base import LyricsSource
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

JOB_TAG = "lyrics"
QUERY_MAX = 200
NOTHING_PLAYING = "Nothing is playing. Name a song instead: `/lyrics query: Artist - Song`."
GENERIC_APOLOGY = "Sorry, something went wrong on my side while looking for lyrics. Please try again in a moment."


@dataclass(frozen=True)
class LyricsJob:
    """What the api hands the worker for /lyrics (a plain dict on the wire)."""

    interaction_id: str
    application_id: str
    guild_id: str
    user_id: str
    query: str | None = None  # the user's words; None: the guild's current track
    channel_id: str | None = None
    roles: tuple[str, ...] = ()
    permissions: int = 0
    token: str = field(default="", repr=False)  # the interaction token: never log it

    def to_dict(self) -> dict[str, Any]:
        return {"job": JOB_TAG, **envelope_to_dict(self), "query": self.query}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LyricsJob:
        """Parse a job; ``ValueError`` names what is wrong (never the token's value)."""
        query = data.get("query")
        if query is not None and (not isinstance(query, str) or not query.strip() or len(query) > QUERY_MAX):
            raise ValueError("lyrics job has an unusable query")
        return cls(**envelope_from_dict(data, what="lyrics job"), query=query)


def is_lyrics_job(event: Mapping[str, Any]) -> bool:
    return event.get("job") == JOB_TAG


def default_source(settings: Settings) -> LyricsSource:
    """The configured lyrics database (LRCLIB at ``lyrics_api_url``)."""
    from timmybot.lyrics.lrclib import LrclibClient  # noqa: PLC0415

    return LrclibClient(settings.lyrics_api_url, timeout_s=settings.lyrics_timeout_s)


def run_lyrics_job(
    job: LyricsJob, *, store: Store, rest: DiscordRest, settings: Settings, source: LyricsSource | None = None
) -> None:
    """Look up, cache, and edit the reply into the first page (or the sentence): ``timmybot.worker.answer``."""
    answer(
        job,
        rest,
        lambda: _answer(job, store=store, settings=settings, source=source or default_source(settings)),
        what="lyrics job",
        apology=GENERIC_APOLOGY,
    )


def _answer(job: LyricsJob, *, store: Store, settings: Settings, source: LyricsSource) -> dict[str, Any]:
    from timmybot.lyrics import pages, service  # noqa: PLC0415
    from timmybot.lyrics.names import lyrics_query, query_from_text  # noqa: PLC0415

    if job.query is not None:
        if not text.is_encodable(job.query):
            raise InvalidInputError(text.UNREADABLE)
        query = query_from_text(job.query)
        digest = service.text_digest(job.query)
    else:
        entry = store.get_guild(job.guild_id).actual.now_playing
        if entry is None:
            raise InvalidInputError(NOTHING_PLAYING)
        track = entry.track
        query = lyrics_query(track)
        digest = service.track_digest(track)
    result = service.lookup(
        store,
        source,
        digest,
        query,
        hit_ttl_s=settings.lyrics_cache_ttl_s,
        miss_ttl_s=settings.lyrics_miss_ttl_s,
        slack_s=settings.lyrics_duration_slack_s,
    )
    _log.info("lyrics job %s for guild %s: %s", job.interaction_id, job.guild_id, result.how or "none found")
    return pages.body(result)
