"""The synced lyrics line in the now-playing card (the guild's ``lyrics_in_card`` setting).

Where the lyrics come from: the lyrics cache the worker fills for /lyrics (``timmybot.lyrics``,
keyed by the track); on a miss the task looks them up itself, by signature then search, through
the network guard, and fills the cache for the next reader. A failed look-up (LRCLIB down) is
logged and the card simply has no lyrics for that track.

Only a record whose duration fits the track within ``SYNC_TOLERANCE_S`` is followed (a music
video's intro would put every line early); others give no synced line. The task asks ``due``
on every tick: a new line is due when the line at the position is not the one last shown, and
never while paused. The edit itself goes through the one card editor (``voice_task.card``): at most
one edit every ``card_min_edit_s`` (5 s), a held edit showing the latest line, 429s waited out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from timmybot.lyrics import lrc
from timmybot.lyrics.lrc import LrcLine
from timmybot.lyrics.models import LyricsUnavailableError
from voice_task.background import report_failure

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.lyrics.base import LyricsSource
    from timmybot.lyrics.service import LyricsResult
    from timmybot.models import QueueEntry
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)


class CardLyrics:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        run_blocking: Callable[..., Awaitable[Any]],
        *,
        source: LyricsSource | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._run_blocking = run_blocking
        self._source = source
        self._entry_id: str | None = None
        self._lines: list[LrcLine] = []
        self._loading: asyncio.Task[None] | None = None
        self.shown: int | None = None  # the index of the line the card shows now

    @property
    def lines(self) -> list[LrcLine]:
        return self._lines

    def follow(self, entry: QueueEntry | None, *, enabled: bool) -> None:
        """Called on every tick with what plays: a new track starts its look-up (in the background)."""
        wanted = entry.entry_id if entry is not None and enabled else None
        if wanted == self._entry_id:
            return
        self.close()
        self._entry_id, self._lines, self.shown = wanted, [], None
        if entry is None or wanted is None:
            return
        self._loading = asyncio.get_running_loop().create_task(self._load(entry), name="card lyrics")
        self._loading.add_done_callback(report_failure(_log, "card lyrics"))

    def window(self, entry_id: str, position_ms: int) -> tuple[str, str, str] | None:
        """(previous, current, next) of ``entry_id``'s lyrics at ``position_ms``, noted as shown; None
        without synced lyrics, or while the lines are still the previous track's (a new track's card
        can go out before the tick that follows it)."""
        if not self._lines or entry_id != self._entry_id:
            return None
        self.shown = lrc.index_at(self._lines, position_ms)
        return lrc.window(self._lines, position_ms)

    def due(self, position_ms: int, *, paused: bool) -> bool:
        """The card should show another line (never while paused, never without synced lyrics)."""
        if paused or not self._lines:
            return False
        return lrc.index_at(self._lines, position_ms) != self.shown

    def close(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None

    async def _load(self, entry: QueueEntry) -> None:
        result = await self._run_blocking(self._lookup, entry)
        if entry.entry_id != self._entry_id or result is None:
            return
        lyrics = result.lyrics
        if lyrics is None or lyrics.synced is None or not result.in_time:
            _log.info("no synced lyrics to follow for entry %s (%s)", entry.entry_id, result.how or "none found")
            return
        self._lines = lrc.parse(lyrics.synced)
        _log.info("following %s synced lyric lines for entry %s", len(self._lines), entry.entry_id)

    def _lookup(self, entry: QueueEntry) -> LyricsResult | None:
        """The cached answer, or the task's own look-up (cached for the next reader). Blocking."""
        from timmybot.lyrics import service  # noqa: PLC0415
        from timmybot.lyrics.job import default_source  # noqa: PLC0415
        from timmybot.lyrics.names import lyrics_query  # noqa: PLC0415

        try:
            track = entry.track
        except (KeyError, TypeError, ValueError):
            return None
        settings = self._settings
        try:
            return service.lookup(
                self._store,
                self._source or default_source(settings),
                service.track_digest(track),
                lyrics_query(track),
                hit_ttl_s=settings.lyrics_cache_ttl_s,
                miss_ttl_s=settings.lyrics_miss_ttl_s,
                slack_s=settings.lyrics_duration_slack_s,
            )
        except LyricsUnavailableError:
            _log.warning("LRCLIB unreachable: no lyrics in the card for entry %s", entry.entry_id)
            return None
