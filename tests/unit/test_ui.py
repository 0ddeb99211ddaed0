"""GIVEN store data WHEN the ui renders embeds and buttons THEN Discord gets readable, valid payloads."""

from __future__ import annotations

import pytest

from timmybot.discord import ui
from timmybot.filters import FilterPreset
from timmybot.models import Actual, Desired, GuildRecord, QueueEntry, QueuePage, Track


def _entry(entry_id: str, duration_s: int | None = 200, title: str | None = None) -> QueueEntry:
    return QueueEntry(
        entry_id=entry_id,
        track=Track.from_stored(
            {"title": title or f"Song {entry_id}", "url": f"https://youtu.be/{entry_id}", "duration_s": duration_s}
        ),
        requester_id="111111111111111111",
        added_at=0.0,
    )


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (7, "0:07"), (65, "1:05"), (3600, "1:00:00"), (3723, "1:02:03"), (None, "?:??")]
)
def test_format_duration(seconds: int | None, text: str) -> None:
    assert ui.format_duration(seconds) == text


def test_progress_bar_places_the_knob_by_position() -> None:
    start = ui.progress_bar(0, 100)
    middle = ui.progress_bar(50_000, 100)
    end = ui.progress_bar(100_000, 100)
    assert start.startswith(ui.BAR_KNOB)
    assert middle.index(ui.BAR_KNOB) == ui.BAR_WIDTH // 2
    assert end.split(" ")[0].endswith(ui.BAR_KNOB)
    assert middle.endswith("0:50 / 1:40")
    for bar in (start, middle, end):
        assert len(bar.split(" ")[0]) == ui.BAR_WIDTH


def test_progress_bar_never_runs_past_the_end_or_breaks_on_unknown_length() -> None:
    assert ui.progress_bar(500_000, 100).endswith("1:40 / 1:40")
    assert "unknown length" in ui.progress_bar(42_000, None)
    assert "0:42" in ui.progress_bar(42_000, None)


@pytest.mark.parametrize(("total", "pages"), [(0, 1), (1, 1), (10, 1), (11, 2), (500, 50)])
def test_page_count(total: int, pages: int) -> None:
    assert ui.page_count(total) == pages


@pytest.mark.parametrize(("page", "total"), [(1, 11), (2, 30), (3, 30), (1, 500), (50, 500)])
def test_queue_buttons_have_unique_ids_and_disable_at_the_ends(page: int, total: int) -> None:
    (row,) = ui.queue_buttons(page, total)
    buttons = row["components"]
    ids = [b["custom_id"] for b in buttons]
    assert len(set(ids)) == len(ids)
    assert buttons[0]["disabled"] is (page == 1)
    assert buttons[1]["disabled"] is (page == ui.page_count(total))


def test_single_page_queue_has_no_buttons() -> None:
    assert ui.queue_buttons(1, 10) == ()


def test_queue_embed_numbers_entries_from_the_page_start_and_sums_durations() -> None:
    page = QueuePage(
        entries=[_entry(f"e{i}") for i in range(10, 15)], total=15, total_duration_s=3000, unknown_durations=0, number=2
    )
    embed = ui.queue_embed(page)
    assert embed["description"].startswith("`11.` [Song e10](https://youtu.be/e10)")
    assert embed["footer"]["text"] == "Page 2/2 · 15 tracks · total 50:00"


def test_queue_embed_neutralises_markdown_link_breakers_in_titles() -> None:
    page = QueuePage(
        entries=[_entry("x", title="a](https://evil)[b")], total=1, total_duration_s=200, unknown_durations=0
    )
    description = ui.queue_embed(page)["description"]
    assert "](https://evil)" not in description


def test_now_playing_embed_shows_state_requester_and_settings() -> None:
    entry = _entry("np", duration_s=240)
    record = GuildRecord(guild_id="1", actual=Actual(now_playing=entry, started_at=1000.0), queue=("a", "b"))
    embed = ui.now_playing_embed(record, now=1060.0)
    assert "▶ Playing" in embed["title"]
    assert "1:00 / 4:00" in embed["description"]
    assert "<@111111111111111111>" in embed["description"]
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Volume": "100%",
        "Loop": "off",
        "Up next": "2 in queue",
    }


def test_now_playing_embed_uses_the_frozen_position_while_paused() -> None:
    entry = _entry("np", duration_s=240)
    record = GuildRecord(
        guild_id="1", actual=Actual(now_playing=entry, started_at=0.0, position_ms=90_000, paused=True)
    )
    embed = ui.now_playing_embed(record, now=10_000.0)
    assert "⏸ Paused" in embed["title"]
    assert "1:30 / 4:00" in embed["description"]


def test_now_playing_shows_wall_time_at_the_speed_and_the_active_filters() -> None:
    # GIVEN a 3:00 track 90 s in (track time) at 1.5× with nightcore off and speed 1.5
    entry = _entry("sped", duration_s=180)
    record = GuildRecord(
        "1",
        desired=Desired(speed=1.5, filter=FilterPreset.KARAOKE),
        actual=Actual(now_playing=entry, started_at=1000.0, rate=1.5),
    )

    # WHEN the card is built 60 s of wall time after the start
    embed = ui.now_playing_embed(record, 1060.0)

    # THEN the bar reads in wall time (1:00 of 2:00) and the filters are named
    assert "1:00 / 2:00 at 1.5×" in embed["description"]
    assert {"name": "Filters", "value": "Karaoke · 1.5× speed", "inline": True} in embed["fields"]


def test_now_playing_has_no_filters_field_when_none_is_on() -> None:
    record = GuildRecord("1", actual=Actual(now_playing=_entry("plain"), started_at=1000.0))
    embed = ui.now_playing_embed(record, 1010.0)
    assert all(field["name"] != "Filters" for field in embed["fields"])
    assert "0:10 / 3:20" in embed["description"]
