"""Autoplay: when the queue runs out, queue the next tracks of the YouTube mix of the last one played.

It remembers the last tracks played (not picked again) and gives up after a few batches in a row
that never played, so a broken mix cannot keep the task busy.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from timmybot.errors import SourceError
from timmybot.library import personal
from timmybot.models import QueueEntry, Track
from timmybot.sources.chain import SourceChain

_log = logging.getLogger(__name__)

MAX_MISSES = 3  # batches in a row that never started playing before autoplay gives up
MEMORY = 50  # tracks autoplay will not pick again
REQUESTER = "autoplay"


@dataclass(frozen=True)
class Refill:
    """What autoplay found: entries to queue, or the sentence saying why there are none."""

    entries: tuple[QueueEntry, ...] = ()
    notice: str | None = None


@dataclass
class Autoplay:
    sources: SourceChain
    run_blocking: Callable[..., Awaitable[list[Track]]]  # runs personal.autoplay_tracks off the loop
    guild_id: str | None = None  # the guild it plays for: named to the sources' breakers
    _played: collections.deque[tuple[str, str]] = field(default_factory=lambda: collections.deque(maxlen=MEMORY))
    _last: Track | None = None
    _misses: int = 0
    _seq: int = 0

    def note_played(self, entry: QueueEntry) -> None:
        """A track started: the seed for the next mix, and one not to pick again."""
        track = entry.track
        if not track.identified:
            return
        self._last = track
        self._misses = 0
        if track.cache_key not in self._played:
            self._played.append(track.cache_key)

    async def refill(self, finished: QueueEntry, *, generation: int, now: float) -> Refill:
        if self._misses >= MAX_MISSES:
            _log.info("autoplay: %s batches in a row did not play; waiting for a track to play", MAX_MISSES)
            return Refill()
        self._misses += 1
        try:
            seed = self._last or _seed(finished)
            tracks = await self.run_blocking(personal.autoplay_tracks, seed, self.sources,
                                             exclude=frozenset(self._played), guild_id=self.guild_id)  # fmt: skip
        except (SourceError, KeyError, ValueError) as exc:
            _log.info("autoplay found nothing after %s: %s", finished.entry_id, type(exc).__name__)
            why = exc.user_message if isinstance(exc, SourceError) else "that track can't seed a mix"
            return Refill(notice=why)
        if not tracks:
            return Refill(notice="its mix has nothing new.")
        self._seq += 1
        entries = tuple(
            QueueEntry(
                entry_id=f"autoplay-{generation}-{int(now * 1000)}-{self._seq}-{n}",
                track=track,
                requester_id=REQUESTER,
                added_at=now,
            )
            for n, track in enumerate(tracks)
        )
        return Refill(entries=entries)


def _seed(entry: QueueEntry) -> Track:
    if not entry.track.identified:
        raise ValueError("the track names no source")
    return entry.track
