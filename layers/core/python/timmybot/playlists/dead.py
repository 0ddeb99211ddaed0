"""Dead tracks: a track that a load queued and that failed to play is marked dead in its playlist.

The voice task calls ``mark_failed`` from its failure handling, for failures that will happen
again (``is_lasting``: the track is gone, unavailable or refused; not a timeout or a resting
source). A load notes which playlist it queued under its interaction id
(``keys.playlist_load_pk``), and entry ids start with that id (``timmybot.worker.jobs.PlayJob.entry_id``),
so a failed entry finds its playlist without any field of its own. The mark goes to the
playlist's dead-marks record (``keys.playlist_dead_pk``); loads skip marked tracks, and /playlist
show flags them, so a stale playlist doesn't trip the pause-after-failures rule again.
"""

from __future__ import annotations

from typing import Any

from timmybot import text
from timmybot.errors import (
    SourceError,
    SourceLoginRequiredError,
    SourceRateLimitedError,
    SourceRestingError,
    SourceServerError,
    SourceTimeoutError,
    SourceUnreachableError,
    StreamForbiddenError,
)
from timmybot.models import QueueEntry
from timmybot.playlists.book import entry_track, track_key
from timmybot.store import keys
from timmybot.store.base import Store

DEAD_MAX = 1000  # marks kept per playlist (more than its tracks can be)

#: Failures that say nothing about the track itself (the source, the network, the operator's login):
#: the track may play next time, so it is not marked dead.
PASSING = (
    SourceTimeoutError,
    SourceRestingError,
    SourceUnreachableError,
    SourceRateLimitedError,
    SourceServerError,
    StreamForbiddenError,
    SourceLoginRequiredError,
)


def is_lasting(error: BaseException) -> bool:
    """A resolve failure that will happen again (gone, unavailable, blocked, too long…)."""
    return isinstance(error, SourceError) and not isinstance(error, PASSING)


def mark_failed(store: Store, entry: QueueEntry) -> str | None:
    """Mark ``entry``'s track dead when a playlist load queued it; the notice for its owner, or None."""
    interaction, sep, _index = entry.entry_id.partition("-")
    if not sep or not interaction.isdigit():
        return None
    load = store.get_record(keys.playlist_load_pk(interaction), keys.PLAYLIST_LOAD_SK)
    if not load or not load.get("owner_pk") or not load.get("playlist_id"):
        return None
    track = entry_track(entry)
    key = track_key(track)

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        marked = [str(k) for k in (current or {}).get("keys") or ()]
        if key in marked:
            return current
        return {"keys": [*marked, key][-DEAD_MAX:]}

    store.update_record(keys.playlist_dead_pk(str(load["owner_pk"]), str(load["playlist_id"])),
                        keys.PLAYLIST_DEAD_SK, change)  # fmt: skip
    owner = str(load.get("owner_user") or "")
    whose = f"<@{owner}>'s" if owner.isdigit() else "the"
    return text.fit(
        "Marked **{title}** as dead in " + whose + " playlist **{name}**: loading it skips that track from now on.",
        text.IN_LINE,
        title=str(track.get("title") or "that track"),
        name=str(load.get("name") or ""),
    )
