"""Embeds and buttons: pure functions from store data to Discord payloads (no I/O)."""

from __future__ import annotations

from timmybot import text
from timmybot.discord import custom_ids
from timmybot.discord.custom_ids import NowPlayingAction
from timmybot.discord.types import ButtonStyle, ComponentPayload, ComponentType, EmbedPayload
from timmybot.filters import FilterPreset
from timmybot.models import GuildRecord, QueueEntry, QueuePage

PAGE_SIZE = 10
BAR_WIDTH = 16
BAR_FILLED = "▬"
BAR_EMPTY = "─"
BAR_KNOB = "🔘"
COLOR = 0x5865F2
TITLE_MAX = 80
DESCRIPTION_MAX = 4096


def format_duration(seconds: int | None) -> str:
    """``3:07``, ``1:02:03``; ``?:??`` when unknown."""
    if seconds is None:
        return "?:??"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_bar(position_ms: int, duration_s: int | None, width: int = BAR_WIDTH) -> str:
    """A text bar such as ``▬▬▬▬🔘────────── 1:02 / 3:30``; just the position when the length is unknown."""
    position_s = max(0, position_ms // 1000)
    if not duration_s:
        return f"{BAR_KNOB} {format_duration(position_s)} (live or unknown length)"
    position_s = min(position_s, duration_s)
    filled = min(width - 1, position_s * width // duration_s)
    bar = BAR_FILLED * filled + BAR_KNOB + BAR_EMPTY * (width - filled - 1)
    return f"{bar} {format_duration(position_s)} / {format_duration(duration_s)}"


def _wall_progress(position_ms: int, duration_s: int | None, rate: float) -> str:
    """The bar in wall-clock time: positions are in track time, and a 3:00 track at 1.5× plays for 2:00."""
    if rate <= 0 or rate == 1.0:
        return progress_bar(position_ms, duration_s)
    wall_duration = round(duration_s / rate) if duration_s else duration_s
    return progress_bar(round(position_ms / rate), wall_duration) + f" at {rate:g}×"


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def _title_link(entry: QueueEntry) -> str:
    """The title, escaped and shortened, as a link to the track's own page (never a link the title
    itself could make)."""
    title = text.quote(entry.title, TITLE_MAX)
    url = entry.url
    if url.startswith(("https://", "http://")) and not any(ch in url for ch in " ()<>"):
        return f"[{title}]({url})"
    return f"**{title}**"


def _requester(entry: QueueEntry) -> str:
    """A mention of who queued the entry; autoplay's own entries say so instead."""
    return "autoplay" if entry.requester_id == "autoplay" else f"<@{entry.requester_id}>"


def _total_line(page: QueuePage) -> str:
    total = format_duration(page.total_duration_s)
    if page.unknown_durations:
        total += f" (+{page.unknown_durations} of unknown length)"
    noun = "track" if page.total == 1 else "tracks"
    return f"{page.total} {noun} · total {total}"


def queue_embed(page: QueuePage) -> EmbedPayload:
    lines: list[str] = []
    page_number = page.number
    current = page.now_playing
    if current is not None:
        lines.append(f"**Now playing:** {_title_link(current)} · {format_duration(current.duration_s)}")
        lines.append("")
    if not page.entries:
        lines.append("The queue is empty. Add music with /play.")
    start = (page_number - 1) * PAGE_SIZE
    for index, entry in enumerate(page.entries, start=start + 1):
        lines.append(f"`{index}.` {_title_link(entry)} · {format_duration(entry.duration_s)} · {_requester(entry)}")
    return {
        "title": "Queue",
        "description": "\n".join(lines)[:DESCRIPTION_MAX],
        "color": COLOR,
        "footer": {"text": f"Page {page_number}/{page_count(page.total)} · {_total_line(page)}"},
    }


def queue_buttons(page_number: int, total: int) -> tuple[ComponentPayload, ...]:
    """◀ ▶ for the neighbouring pages; a disabled button keeps the current page's id (ids stay unique)."""
    pages = page_count(total)
    if pages <= 1:
        return ()
    previous = _button("◀", custom_ids.queue_page(max(1, page_number - 1)), disabled=page_number <= 1)
    following = _button("▶", custom_ids.queue_page(min(pages, page_number + 1)), disabled=page_number >= pages)
    return ({"type": ComponentType.ACTION_ROW, "components": [previous, following]},)


LYRIC_LINE_MAX = 300  # each of the three lines the card shows (a field's value holds 1024)


def lyrics_field(lines: tuple[str, str, str]) -> str:
    """The card's lyrics: the previous line, the current one in bold, the next one (escaped)."""
    previous, current, following = (text.quote(line, LYRIC_LINE_MAX) for line in lines)
    shown = [previous, f"**{current}**" if current else "♪", following]
    return "\n".join(line for line in shown if line)


def now_playing_embed(
    record: GuildRecord, now: float, *, status: str | None = None, lyrics: tuple[str, str, str] | None = None
) -> EmbedPayload:
    actual = record.actual
    entry = actual.now_playing
    if entry is None:
        return {"title": "Nothing is playing", "color": COLOR}
    state = status or ("⏸ Paused" if actual.paused else "▶ Playing")
    lines = [
        _title_link(entry),
        f"`{_wall_progress(actual.position_at(now), entry.duration_s, actual.rate)}`",
        f"Requested by {_requester(entry)}" if entry.requester_id else "",
    ]
    embed: EmbedPayload = {
        "title": f"Now playing · {state}",
        "description": "\n".join(line for line in lines if line),
        "color": COLOR,
        "fields": [
            {"name": "Volume", "value": f"{record.desired.volume}%", "inline": True},
            {"name": "Loop", "value": record.desired.loop.value, "inline": True},
            {"name": "Up next", "value": f"{len(record.queue)} in queue", "inline": True},
        ],
    }
    filters = record.desired.filters
    if not filters.is_off or filters.preset is not FilterPreset.OFF:
        embed["fields"].append({"name": "Filters", "value": filters.describe(), "inline": True})
    if lyrics is not None:
        embed["fields"] = [*embed["fields"], {"name": "Lyrics", "value": lyrics_field(lyrics), "inline": False}]
    if entry.thumbnail and entry.thumbnail.startswith("https://"):
        embed["thumbnail"] = {"url": entry.thumbnail}
    return embed


def now_playing_buttons() -> tuple[ComponentPayload, ...]:
    return (
        {
            "type": ComponentType.ACTION_ROW,
            "components": [
                _button("⏮", custom_ids.now_playing(NowPlayingAction.BACK)),
                _button("⏯", custom_ids.now_playing(NowPlayingAction.PAUSE)),
                _button("⏭", custom_ids.now_playing(NowPlayingAction.SKIP)),
                _button("⏹", custom_ids.now_playing(NowPlayingAction.STOP), style=ButtonStyle.DANGER),
            ],
        },
    )


def _button(
    emoji: str, custom_id: str, *, disabled: bool = False, style: ButtonStyle = ButtonStyle.SECONDARY
) -> ComponentPayload:
    return {
        "type": ComponentType.BUTTON,
        "style": style,
        "emoji": {"name": emoji},
        "custom_id": custom_id,
        "disabled": disabled,
    }
