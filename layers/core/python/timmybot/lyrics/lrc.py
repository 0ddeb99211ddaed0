"""The LRC format (synced lyrics) as LRCLIB serves it: parsed into timed lines.

Handled: one or several timestamps on a line (``[00:12.00][01:30.50]chorus``), ``mm:ss``,
``mm:ss.xx``, ``mm:ss.xxx`` and ``mm:ss:xx``; ID tags (``[ar:]``, ``[ti:]``, ``[al:]``, ``[by:]``,
``[length:]``...) skipped; ``[offset:±ms]`` applied (positive: the words come sooner, as the
format says); word timestamps of "enhanced" LRC (``<00:12.50>``) removed from the text. Lines
without a timestamp are ignored. Pure functions, no I/O.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_TIME = re.compile(r"\[(\d{1,3}):(\d{1,2})(?:[.:](\d{1,3}))?\]")
_TAG = re.compile(r"^\[([A-Za-z#]+):(.*)\]\s*$")
_WORD_TIME = re.compile(r"<\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?>")
LINES_MAX = 2000


@dataclass(frozen=True, slots=True)
class LrcLine:
    time_ms: int
    text: str  # may be "" (an instrumental break the file marks)


def parse(lrc: str) -> list[LrcLine]:
    """The timed lines of ``lrc``, in time order (lines at the same time keep the file's order)."""
    offset_ms = 0
    timed: list[LrcLine] = []
    for raw in lrc.splitlines():
        line = raw.strip()
        tag = _TAG.match(line)
        if tag is not None and not _TIME.match(line):
            if tag.group(1).lower() == "offset":
                offset_ms = _offset(tag.group(2))
            continue
        times: list[int] = []
        position = 0
        while (match := _TIME.match(line, position)) is not None:
            times.append(_ms(match))
            position = match.end()
        if not times:
            continue
        words = " ".join(_WORD_TIME.sub("", line[position:]).split())
        timed.extend(LrcLine(t, words) for t in times)
        if len(timed) >= LINES_MAX:
            break
    shifted = [LrcLine(max(0, line.time_ms - offset_ms), line.text) for line in timed[:LINES_MAX]]
    return sorted(shifted, key=lambda line: line.time_ms)


def plain_text(lrc: str) -> str:
    """The words of ``lrc`` without timestamps (for a record that has no plain lyrics)."""
    return "\n".join(line.text for line in parse(lrc))


def index_at(lines: list[LrcLine], position_ms: int) -> int | None:
    """The index of the line sung at ``position_ms`` (the last one started); None before the first."""
    if not lines:
        return None
    index = bisect.bisect_right([line.time_ms for line in lines], position_ms) - 1
    return index if index >= 0 else None


def window(lines: list[LrcLine], position_ms: int) -> tuple[str, str, str]:
    """(previous, current, next) line texts at ``position_ms``; "" where there is none."""
    index = index_at(lines, position_ms)
    if index is None:
        return "", "", lines[0].text if lines else ""
    previous = lines[index - 1].text if index > 0 else ""
    following = lines[index + 1].text if index + 1 < len(lines) else ""
    return previous, lines[index].text, following


def next_change_ms(lines: list[LrcLine], position_ms: int) -> int | None:
    """When the next line starts after ``position_ms``; None after the last."""
    index = bisect.bisect_right([line.time_ms for line in lines], position_ms)
    return lines[index].time_ms if index < len(lines) else None


def _ms(match: re.Match[str]) -> int:
    minutes, seconds, fraction = match.group(1), match.group(2), match.group(3) or "0"
    # ".5" is half a second, ".05" five hundredths, ".005" five thousandths.
    fraction_ms = int(fraction.ljust(3, "0")[:3])
    return (int(minutes) * 60 + int(seconds)) * 1000 + fraction_ms


def _offset(value: str) -> int:
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        return 0
