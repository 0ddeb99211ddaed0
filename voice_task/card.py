"""The one editor of the now-playing card, which every card feature goes through.

- A new track posts the card (or edits the one already there); a state change (pause, resume,
  reconnecting) edits it; while a track plays, its progress bar is refreshed every ``refresh_s``
  (15 s), never while paused or idle.
- However often it is asked, it edits at most once every ``min_edit_s`` (5 s): a request inside
  that window is held and sent, once, with the latest body when the window ends (a request made
  while that edit is on its way is held again, not dropped). The window runs
  from the end of the previous write, so Discord never sees two closer together.
- A card someone deleted (404, code 10008 Unknown Message) is never edited again; the next track
  gets a new one.
- 429s: the REST client waits ``retry_after`` and retries (``timmybot.discord.rest``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voice_task.background import report_failure

_log = logging.getLogger(__name__)

REFRESH_S = 15.0
MIN_EDIT_S = 5.0


@dataclass
class CardState:
    channel_id: str | None = None
    message_id: str | None = None
    entry_id: str | None = None  # the track the card shows
    gone_for: str | None = None  # the track whose card was deleted: no card until the next one
    last_edit: float = float("-inf")  # when the last write was sent: the refresh cadence counts from it
    last_done: float = float("-inf")  # when it was answered: the edit window counts from it


class CardEditor:
    """``send(channel_id, message_id or None)`` posts (None) or edits; it returns the message id,
    ``GONE`` when the message no longer exists, or None when nothing could be sent."""

    GONE = "gone"

    def __init__(
        self,
        send: Callable[[str, str | None], Awaitable[str | None]],
        clock: Callable[[], float],
        *,
        refresh_s: float = REFRESH_S,
        min_edit_s: float = MIN_EDIT_S,
    ) -> None:
        self._send = send
        self._clock = clock
        self.refresh_s = refresh_s
        self.min_edit_s = min_edit_s
        self.state = CardState()
        self._held: asyncio.Task[None] | None = None
        self._pending: tuple[str, str] | None = None  # (channel, track) of the request held
        self._lock = asyncio.Lock()

    def adopt(self, channel_id: str | None, message_id: str | None) -> None:
        """The card a previous task (or this one, before a restart) left: edit it rather than post."""
        self.state.channel_id, self.state.message_id = channel_id, message_id

    def due(self, *, playing: bool, paused: bool) -> bool:
        """A progress refresh is due (the tick asks; nothing is due while paused or idle)."""
        if not playing or paused or self.state.message_id is None or self.state.gone_for is not None:
            return False
        return self._clock() - self.state.last_edit >= self.refresh_s

    async def show(self, channel_id: str, entry_id: str) -> None:
        """Show the card for ``entry_id`` now, or as soon as the edit window allows."""
        if self.state.gone_for is not None and self.state.gone_for == entry_id:
            return  # deleted while this track plays: the next track gets a new card
        if entry_id != self.state.entry_id:
            self.state.gone_for = None
        wait = max(self.state.last_edit, self.state.last_done) + self.min_edit_s - self._clock()
        if wait > 0 and self.state.message_id is not None and channel_id == self.state.channel_id:
            self._pending = (channel_id, entry_id)  # the latest request wins
            if self._held is None or self._held.done():
                self._held = asyncio.get_running_loop().create_task(self._later(), name="held card edit")
                self._held.add_done_callback(report_failure(_log, "held card edit"))
            return
        await self._now(channel_id, entry_id)

    async def _later(self) -> None:
        # A request made while the held edit is being sent is sent after it, not dropped.
        while self._pending is not None:
            wait = max(self.state.last_edit, self.state.last_done) + self.min_edit_s - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            channel_id, entry_id = self._pending
            self._pending = None
            if self.state.gone_for != entry_id:
                await self._now(channel_id, entry_id)

    async def _now(self, channel_id: str, entry_id: str) -> None:
        async with self._lock:
            state = self.state
            message_id = state.message_id if state.channel_id == channel_id else None
            # The window runs from the end of the previous write, not its start: a write that took
            # long to arrive never lets the next one land within ``min_edit_s`` of it.
            wait = state.last_done + self.min_edit_s - self._clock()
            if message_id is not None and wait > 0:
                await asyncio.sleep(wait)
            self.state.last_edit = self._clock()
            result = await self._send(channel_id, message_id)
            finished = self._clock()
            if result == self.GONE:
                _log.info("the now-playing card %s was deleted: no card until the next track", message_id)
                self.state = CardState(gone_for=entry_id, last_edit=self.state.last_edit, last_done=finished)
                return
            self.state.last_done = finished
            if result is not None:
                self.state.channel_id, self.state.message_id, self.state.entry_id = channel_id, result, entry_id

    def close(self) -> None:
        if self._held is not None:
            self._held.cancel()
