"""The LRC parser: timestamps, ID tags, offsets, word times; and the line sung at a position."""

from __future__ import annotations

from tests.support.fake_lrclib import SIGNAL_LRC
from timmybot.lyrics import lrc
from timmybot.lyrics.lrc import LrcLine


def test_several_timestamps_tags_offset_and_word_times_are_read() -> None:
    # GIVEN LRC with ID tags, [offset:+500], a line with two timestamps and word timestamps
    lines = lrc.parse(SIGNAL_LRC)
    # THEN tags are skipped, the offset brings every line 500 ms sooner, the chorus appears twice
    assert lines == [
        LrcLine(500, "First line of the signal"),
        LrcLine(3000, "Chorus comes twice"),
        LrcLine(5500, "Third line with word times"),
        LrcLine(7500, ""),
        LrcLine(8500, "Fourth line after a break"),
        LrcLine(10700, "Fifth line"),
        LrcLine(13000, "Chorus comes twice"),
    ]


def test_fractions_of_one_two_and_three_digits_and_a_colon_separator() -> None:
    lines = lrc.parse("[00:01.5]a\n[00:02.05]b\n[00:03.005]c\n[01:04:20]d\n[1:05]e")
    assert [line.time_ms for line in lines] == [1500, 2050, 3005, 64200, 65000]


def test_a_negative_offset_delays_and_no_line_goes_before_zero() -> None:
    assert lrc.parse("[offset:-250]\n[00:01.00]x") == [LrcLine(1250, "x")]
    assert lrc.parse("[offset:+5000]\n[00:01.00]x") == [LrcLine(0, "x")]


def test_lines_without_a_timestamp_are_ignored_and_garbage_offsets_too() -> None:
    assert lrc.parse("plain words\n[offset:soon]\n[00:02.00]timed") == [LrcLine(2000, "timed")]


def test_the_window_gives_previous_current_and_next() -> None:
    lines = lrc.parse(SIGNAL_LRC)
    assert lrc.window(lines, 0) == ("", "", "First line of the signal")
    assert lrc.window(lines, 3000) == ("First line of the signal", "Chorus comes twice", "Third line with word times")
    assert lrc.window(lines, 20_000) == ("Fifth line", "Chorus comes twice", "")
    assert lrc.index_at(lines, 499) is None
    assert lrc.next_change_ms(lines, 3000) == 5500
    assert lrc.next_change_ms(lines, 13_000) is None


def test_plain_text_of_synced_lyrics() -> None:
    assert lrc.plain_text("[ti:x]\n[00:01.00]one\n[00:02.00]two") == "one\ntwo"
