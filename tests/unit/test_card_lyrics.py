"""The card's synced line (``voice_task.card_lyrics``) over an in-memory store and a fake lyrics
source (a second adapter of the port): what it follows, when a new line is due, and when not."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from timmybot.config import Settings
from timmybot.discord import ui
from timmybot.lyrics.base import LyricsSource
from timmybot.lyrics.models import Lyrics, LyricsQuery, LyricsUnavailableError
from timmybot.models import QueueEntry, Track
from timmybot.store.memory import MemoryStore
from voice_task.card_lyrics import CardLyrics

T = TypeVar("T")
LRC = "[00:01.00]one\n[00:03.00]two\n[00:05.00]three"
TRACK = Track("youtube", "sIgNaLtOp01", "Signal Song", "https://www.youtube.com/watch?v=sIgNaLtOp01", 180, None,
              "Test Signals - Topic")  # fmt: skip


class FixedSource(LyricsSource):
    """Answers every signature with one record (or raises, when ``down``)."""

    def __init__(self, duration_s: float, *, down: bool = False) -> None:
        self.record = Lyrics("Signal Song", "Test Signals", None, duration_s, False, "one\ntwo\nthree", LRC)
        self.down = down
        self.asked: list[LyricsQuery] = []

    def get(self, query: LyricsQuery) -> Lyrics | None:
        self.asked.append(query)
        if self.down:
            raise LyricsUnavailableError()
        return (
            self.record
            if query.duration_s is not None and abs(query.duration_s - self.record.duration_s) <= 2
            else None
        )

    def search(self, query: LyricsQuery) -> list[Lyrics]:
        return [self.record]


async def _inline(fn: Callable[..., T], *args: Any) -> T:
    return functools.partial(fn, *args)()


def _follow(source: FixedSource, *, enabled: bool = True) -> CardLyrics:
    async def run() -> CardLyrics:
        card = CardLyrics(Settings(), MemoryStore(), _inline, source=source)
        card.follow(QueueEntry("e1", TRACK, "1", 0.0), enabled=enabled)
        await asyncio.sleep(0.01)
        return card

    return asyncio.run(run())


def test_a_record_that_fits_is_followed_line_by_line() -> None:
    card = _follow(FixedSource(180))
    assert card.due(500, paused=False) is False  # before the first line: nothing to show yet
    assert card.due(1500, paused=False)
    assert card.window("e1", 1500) == ("", "one", "two")
    assert not card.due(2900, paused=False)  # still the line shown
    assert card.due(3100, paused=False)
    assert not card.due(3100, paused=True)  # never while paused


def test_a_record_matched_by_search_with_another_length_gives_no_synced_line() -> None:
    card = _follow(FixedSource(160))  # a 20 s intro: found by search, but its times would be early
    assert card.lines == [] and card.window("e1", 3000) is None and not card.due(3000, paused=False)


def test_the_previous_tracks_lines_never_go_on_the_next_tracks_card() -> None:
    card = _follow(FixedSource(180))
    assert card.window("e2", 1500) is None  # the next track's card, before the tick that follows it
    assert card.window("e1", 1500) == ("", "one", "two")


def test_the_setting_off_or_lrclib_down_gives_no_line_and_no_crash() -> None:
    off = FixedSource(180)
    assert _follow(off, enabled=False).lines == [] and off.asked == []
    assert _follow(FixedSource(180, down=True)).lines == []


def test_the_cards_lyrics_field_stays_within_a_fields_limit() -> None:
    value = ui.lyrics_field(("x" * 2000, "*bold?*", ""))
    assert len(value) <= 1024
    assert value.endswith("**\\*bold?\\***")
    assert ui.lyrics_field(("", "", "next")) == "♪\nnext"
