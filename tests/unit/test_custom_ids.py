"""GIVEN the one custom-id module WHEN ids are built and parsed THEN only ids we build come back."""

from __future__ import annotations

import pytest

from timmybot.discord import custom_ids
from timmybot.discord.custom_ids import (
    MAX_LENGTH,
    MAX_PAGE,
    InvalidCustomIdError,
    LyricsPageId,
    NowPlayingAction,
    NowPlayingId,
    QueuePageId,
    SearchPickId,
)
from timmybot.errors import InvalidInputError


@pytest.mark.parametrize(
    "value",
    [
        QueuePageId(1),
        QueuePageId(3),
        QueuePageId(MAX_PAGE),
        *(NowPlayingId(a) for a in NowPlayingAction),
        SearchPickId("99999999999999999999", "now", "0123abcd"),
        LyricsPageId("0123456789abcdef" * 2, 1),
        LyricsPageId("f" * 32, MAX_PAGE),
    ],
)
def test_every_id_round_trips_and_fits_discords_limit(value: custom_ids.CustomId) -> None:
    raw = custom_ids.build(value)
    assert raw.startswith("v1:")
    assert len(raw) <= MAX_LENGTH
    assert raw.isascii()
    assert custom_ids.parse(raw) == value


def test_documented_formats() -> None:
    assert custom_ids.queue_page(3) == "v1:queue:page:3"
    assert custom_ids.now_playing(NowPlayingAction.PAUSE) == "v1:np:pause"
    assert custom_ids.now_playing(NowPlayingAction.SKIP) == "v1:np:skip"
    assert custom_ids.now_playing(NowPlayingAction.STOP) == "v1:np:stop"
    owner = "423456789012345678"
    assert custom_ids.build(SearchPickId(owner, "next", "0123abcd")) == f"v1:search:{owner}:next:0123abcd"
    assert custom_ids.build(LyricsPageId("ab" * 16, 2)) == f"v1:lyrics:{'ab' * 16}:2"


@pytest.mark.parametrize("value", [LyricsPageId("ab" * 16, 0), LyricsPageId("AB" * 16, 1), LyricsPageId("ab", 1)])
def test_building_a_bad_lyrics_page_is_a_programming_error(value: LyricsPageId) -> None:
    with pytest.raises(ValueError, match="invalid lyrics page"):
        custom_ids.build(value)


@pytest.mark.parametrize("page", [0, -1, MAX_PAGE + 1])
def test_building_an_out_of_range_page_is_a_programming_error(page: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        custom_ids.queue_page(page)


@pytest.mark.parametrize(
    "raw",
    [
        "v1:queue:page:-1",
        "v1:queue:page:0",
        "v1:queue:page:007",
        f"v1:queue:page:{MAX_PAGE + 1}",
        "v1:queue:page:1000000000",
        "v1:queue:page:1:2",
        "v1:queue:page:",
        "v1:queue:page",
        "v1:queue",
        "v1:np",
        "v1:np:rewind",
        "v1:np:skip:now",
        "v1:NP:skip",
        "v2:np:skip",
        "V1:np:skip",
        ":v1:np:skip",
        "v1::np:skip",
        "v1:np:ski\u0440",
        "v1:queue:page:\u0663",
        "v1:np:skip" + " " * 100,
        "x" * 101,
        "",
        None,
        7,
        ["v1:np:skip"],
        "v1:search:123:end:0123abcd",
        "v1:search:423456789012345678:later:0123abcd",
        "v1:search:423456789012345678:end:0123ABCD",
        "v1:search:423456789012345678:end:0123abcd:x",
        "v1:search:423456789012345678:end",
        f"v1:lyrics:{'ab' * 16}:0",
        f"v1:lyrics:{'ab' * 16}:{MAX_PAGE + 1}",
        f"v1:lyrics:{'AB' * 16}:1",
        f"v1:lyrics:{'ab' * 15}:1",
        f"v1:lyrics:{'ab' * 16}",
        f"v1:lyrics:{'ab' * 16}:1:2",
        f"v1:lyrics:{'zz' * 16}:1",
    ],
)
def test_forged_or_foreign_ids_raise_the_domain_error(raw: object) -> None:
    with pytest.raises(InvalidCustomIdError) as caught:
        custom_ids.parse(raw)
    assert isinstance(caught.value, InvalidInputError)
    assert "Run the command again" in caught.value.user_message
