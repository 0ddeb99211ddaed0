"""Bounded walks over external lists: Spotify playlists, albums and libraries, YouTube
playlists, liked videos and the playlists lists.

A ``ListWalk`` is handed to the client that pages through a list. It bounds the walk four ways:

- a page cap (``Settings.list_page_cap``): at most that many page requests, whatever the list says;
- an item cap: at most that many items are read, and items the bot can't play (episodes, local
  files, unavailable or deleted videos) count toward it like the rest, so a list of 10,000 episodes
  costs as many requests as a list of 10,000 tracks: the cap's worth;
- a ``next`` link (or page token) already fetched ends the walk, so a page pointing at itself, or a
  ring of pages, is read once;
- ``room``, when given, is the queue's free space now; it is asked before each further page, so a
  walk that fills the queue stops fetching.

It also counts what it read (``kept``, ``skipped``, the list's own ``total``) so the reply can say
what was left out and why (``left_out``): "Added 500 of 2,000: the queue is full."

Plain data and arithmetic: no network, cheap to import anywhere.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

DEFAULT_PAGE_CAP = 10  # ``Settings.list_page_cap``'s default: 500 items at 50 a page


class StopReason(enum.StrEnum):
    """Why a walk ended before the list did."""

    ITEM_CAP = "item_cap"  # the item cap (the playlist cap) was reached
    QUEUE_FULL = "queue_full"  # the queue had no room for more
    PAGE_CAP = "page_cap"  # the page cap was reached
    LOOP = "loop"  # a next link pointed at a page already read


@dataclass
class ListWalk:
    """The bounds of one walk over an external list, and what it read (see the module docstring)."""

    item_cap: int
    page_cap: int = DEFAULT_PAGE_CAP
    #: The item cap is the queue's free space (smaller than the playlist cap): reaching it means "full".
    queue_limited: bool = False
    #: The queue's free space now, asked before each page after the first; None: not checked.
    room: Callable[[], int] | None = None
    pages: int = 0
    seen: int = 0
    kept: int = 0
    total: int | None = None
    stopped: StopReason | None = None
    _fetched: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        if self.item_cap < 0:
            raise ValueError("item_cap must not be negative")
        if self.page_cap < 1:
            raise ValueError("page_cap must be at least 1")

    @classmethod
    def for_queue(
        cls,
        *,
        playlist_cap: int,
        free: int,
        page_cap: int = DEFAULT_PAGE_CAP,
        room: Callable[[], int] | None = None,
    ) -> ListWalk:
        """A walk that adds to a queue with ``free`` places left: at most ``min(playlist_cap, free)`` items."""
        free = max(0, free)
        return cls(
            item_cap=min(playlist_cap, free),
            page_cap=page_cap,
            queue_limited=free < playlist_cap,
            room=room,
        )

    @property
    def skipped(self) -> int:
        """Items read that could not be played."""
        return self.seen - self.kept

    @property
    def complete(self) -> bool:
        """The walk read the whole list."""
        return self.stopped is None

    def may_fetch(self, link: str) -> bool:
        """Ask before requesting the page ``link`` (the first page too): False ends the walk, the
        reason noted in ``stopped``. ``link`` names the page: its URL, or its page token."""
        if self.stopped is not None:
            return False
        if link in self._fetched:
            return self._stop(StopReason.LOOP)
        if self.pages >= self.page_cap:
            return self._stop(StopReason.PAGE_CAP)
        if self.seen >= self.item_cap:
            return self._stop(self._cap_reason())
        if self.pages and self.room is not None and self.room() <= 0:
            return self._stop(StopReason.QUEUE_FULL)
        self._fetched.add(link)
        self.pages += 1
        return True

    def mark(self, link: object) -> None:
        """Note a page's own address (Spotify's ``href``) as read, so a ``next`` link back to it ends the walk."""
        if isinstance(link, str) and link:
            self._fetched.add(link)

    def admit(self, items: Sequence[T]) -> list[T]:
        """The items of a page the walk may read: the item cap's remainder, in order."""
        left = max(0, self.item_cap - self.seen)
        if len(items) > left:
            self._stop(self._cap_reason())
        admitted = list(items[:left])
        self.seen += len(admitted)
        return admitted

    def keep(self, count: int) -> None:
        """Note that ``count`` of the admitted items became playable tracks."""
        self.kept += count

    def take(self, items: Sequence[T]) -> list[T]:
        """A list some other code already read whole (yt-dlp's playlists): the part within the caps,
        all of it counted as kept."""
        self.note_total(len(items))
        admitted = self.admit(items)
        self.keep(len(admitted))
        return admitted

    def note_total(self, total: object) -> None:
        """The list's own count of its items, from its first page that gives one."""
        if self.total is None and isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            self.total = total

    def left_out(self, where: str = "") -> str | None:
        """A sentence on what was left out, or None when the whole list was added.

        ``where`` follows the count (" from **Road trip**"): "Added 500 of 2,000 from **Road trip**:
        the queue is full."
        """
        reasons: list[str] = []
        if self.stopped is not None:
            reasons.append(self._reason_text())
        if self.skipped:
            reasons.append(f"{self.skipped:,} can't be played here (episodes, local files or unavailable)")
        if not reasons:
            return None
        total = self.total
        if total is not None and total > self.kept:
            head = f"Added {self.kept:,} of {total:,}{where}"
        else:
            head = f"Added {self.kept:,}{where}"
        return f"{head}: {'; '.join(reasons)}."

    def _cap_reason(self) -> StopReason:
        return StopReason.QUEUE_FULL if self.queue_limited else StopReason.ITEM_CAP

    def _stop(self, reason: StopReason) -> bool:
        if self.stopped is None:
            self.stopped = reason
        return False

    def _reason_text(self) -> str:
        match self.stopped:
            case StopReason.QUEUE_FULL:
                return "the queue is full"
            case StopReason.ITEM_CAP:
                return f"I add at most {self.item_cap:,} from one list"
            case StopReason.PAGE_CAP:
                return f"I read at most {self.page_cap:,} pages of one list"
            case _:
                return "the list's pages lead back to a page I already read"
