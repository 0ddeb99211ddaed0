"""GIVEN a guild's queue WHEN queue commands and buttons arrive THEN the stored order and replies follow."""

from __future__ import annotations

import pytest

from tests.support.handler_kit import HandlerApi
from tests.support.signing import (
    EPHEMERAL,
    GUILD_ID,
    command,
    component,
    modal_submit,
    seed_playing,
    seed_queue,
)


def _queue(api: HandlerApi) -> tuple[str, ...]:
    return api.store.get_guild(GUILD_ID).queue


def _content(body: dict) -> str:  # type: ignore[type-arg]
    return str(body["data"].get("content", ""))


def _is_private(body: dict) -> bool:  # type: ignore[type-arg]
    return body["type"] == 4 and body["data"].get("flags") == EPHEMERAL


def _button_ids(body: dict) -> list[tuple[str, bool]]:  # type: ignore[type-arg]
    return [(c["custom_id"], c["disabled"]) for row in body["data"]["components"] for c in row["components"]]


# ------------------------------------------------------------------------------ /queue and paging
def test_queue_shows_ten_per_page_total_duration_and_page_buttons(api: HandlerApi) -> None:
    seed_queue(api.store, 23, duration_s=100)
    body = api.post(command("queue")).json_body
    embed = body["data"]["embeds"][0]
    lines = [line for line in embed["description"].splitlines() if line.startswith("`")]
    assert len(lines) == 10
    assert lines[0].startswith("`1.`")
    assert "Page 1/3" in embed["footer"]["text"]
    assert "23 tracks · total 38:20" in embed["footer"]["text"]
    assert _button_ids(body) == [("v1:queue:page:1", True), ("v1:queue:page:2", False)]


def test_queue_page_button_updates_the_message_with_type_7(api: HandlerApi) -> None:
    seed_queue(api.store, 23)
    body = api.post(component("v1:queue:page:3")).json_body
    assert body["type"] == 7
    embed = body["data"]["embeds"][0]
    assert "`21.`" in embed["description"]
    assert "`23.`" in embed["description"]
    assert "Page 3/3" in embed["footer"]["text"]
    assert _button_ids(body) == [("v1:queue:page:2", False), ("v1:queue:page:3", True)]


def test_stale_page_button_after_the_queue_shrank_shows_the_last_page(api: HandlerApi) -> None:
    seed_queue(api.store, 12)
    body = api.post(component("v1:queue:page:9")).json_body
    assert body["type"] == 7
    assert "Page 2/2" in body["data"]["embeds"][0]["footer"]["text"]


def test_queue_with_a_page_beyond_the_end_gives_the_range(api: HandlerApi) -> None:
    seed_queue(api.store, 12)
    body = api.post(command("queue", {"page": 5})).json_body
    assert _is_private(body)
    assert "between 1 and 2" in _content(body)


def test_empty_queue_says_so_and_shows_no_buttons(api: HandlerApi) -> None:
    body = api.post(command("queue")).json_body
    assert "queue is empty" in body["data"]["embeds"][0]["description"]
    assert "components" not in body["data"]


def test_queue_shows_the_playing_track_and_unknown_lengths(api: HandlerApi) -> None:
    seed_playing(api.store)
    seed_queue(api.store, 2, duration_s=None)
    embed = api.post(command("queue")).json_body["data"]["embeds"][0]
    assert "Now playing:" in embed["description"]
    assert "(+2 of unknown length)" in embed["footer"]["text"]


# ------------------------------------------------------------------------------ reordering
def test_remove_takes_out_the_entry_at_that_position(api: HandlerApi) -> None:
    ids = seed_queue(api.store, 3)
    body = api.post(command("remove", {"position": 2})).json_body
    assert "removed **Track q002** (was #2)" in _content(body)
    assert _queue(api) == (ids[0], ids[2])


@pytest.mark.parametrize("position", [0, 4, 99])
def test_remove_out_of_range_gives_the_range(api: HandlerApi, position: int) -> None:
    ids = seed_queue(api.store, 3)
    body = api.post(command("remove", {"position": position})).json_body
    assert _is_private(body)
    assert "between 1 and 3" in _content(body)
    assert _queue(api) == tuple(ids)


def test_move_puts_the_entry_at_its_new_place(api: HandlerApi) -> None:
    ids = seed_queue(api.store, 4)
    body = api.post(command("move", {"from": 4, "to": 1})).json_body
    assert "from #4 to #1" in _content(body)
    assert _queue(api) == (ids[3], ids[0], ids[1], ids[2])


def test_move_out_of_range_names_the_option_and_range(api: HandlerApi) -> None:
    ids = seed_queue(api.store, 2)
    body = api.post(command("move", {"from": 1, "to": 7})).json_body
    assert _is_private(body)
    assert "`to` must be between 1 and 2" in _content(body)
    assert _queue(api) == tuple(ids)


def test_shuffle_keeps_every_entry_exactly_once(api: HandlerApi) -> None:
    ids = seed_queue(api.store, 30)
    body = api.post(command("shuffle")).json_body
    assert "shuffled 30 tracks" in _content(body)
    assert sorted(_queue(api)) == sorted(ids)


def test_clear_empties_the_queue(api: HandlerApi) -> None:
    seed_queue(api.store, 5)
    body = api.post(command("clear")).json_body
    assert "cleared the queue (5 tracks)" in _content(body)
    assert _queue(api) == ()


@pytest.mark.parametrize(
    "payload",
    [command("remove", {"position": 1}), command("move", {"from": 1, "to": 1}), command("shuffle"), command("clear")],
    ids=["remove", "move", "shuffle", "clear"],
)
def test_queue_edits_on_an_empty_queue_say_it_is_empty(api: HandlerApi, payload: dict) -> None:  # type: ignore[type-arg]
    body = api.post(payload).json_body
    assert _is_private(body)
    assert "empty" in _content(body)


def test_unknown_command_gets_an_ephemeral_sentence(api: HandlerApi) -> None:
    body = api.post(command("teleport")).json_body
    assert _is_private(body)
    assert "don't know that command" in _content(body)


# ------------------------------------------------------------------------------ forged custom ids
FORGED = [
    "v1:queue:page:-1",
    "v1:queue:page:0",
    "v1:queue:page:1000000000",
    "v1:queue:page:01",
    "v1:queue:page:3:extra",
    "v1:queue:page",
    "v2:queue:page:1",
    "v1:np:dance",
    "v1:np:pause:1",
    "v1:queue:page:３",
    "v1:queue:page:1" + "0" * 120,
    "",
    "garbage",
    None,
    12345,
]


@pytest.mark.parametrize("custom_id", FORGED, ids=[repr(c)[:30] for c in FORGED])
def test_forged_custom_id_gets_an_ephemeral_error_not_a_crash(api: HandlerApi, custom_id: object) -> None:
    ids = seed_queue(api.store, 3)
    seed_playing(api.store)
    response = api.post(component(custom_id))
    assert response.status_code == 200
    body = response.json_body
    assert _is_private(body)
    assert "no longer works" in _content(body)
    record = api.store.get_guild(GUILD_ID)
    assert record.queue == tuple(ids)
    assert record.desired.skip_seq == record.desired.stop_seq == 0


def test_modal_submit_without_any_form_is_refused_politely(api: HandlerApi) -> None:
    body = api.post(modal_submit("v1:np:stop")).json_body
    assert _is_private(body)
    assert "no longer works" in _content(body)
