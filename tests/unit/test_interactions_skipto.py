"""/skipto N over signed HTTP: who may skip over which tracks, what the reply says, and what the
queue becomes (the voice task's side, heard by ear, is in test_voice_playback.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.handler_kit import HandlerApi
from tests.support.signing import (
    DJ_ROLE_ID,
    EPHEMERAL,
    GUILD_ID,
    MANAGE_GUILD,
    OTHER_USER_ID,
    USER_ID,
    command,
    seed_playing,
    track_entry,
)
from timmybot.models import LoopMode

LISTENERS = (USER_ID, OTHER_USER_ID, "444444444444444444")


@pytest.fixture
def api(make_api: Callable[..., HandlerApi]) -> HandlerApi:
    """USER_ID is playing a track and queued q1 and q2; OTHER_USER_ID queued q3."""
    made = make_api(launcher="none")
    entries = [track_entry("q1"), track_entry("q2"), track_entry("q3", requester_id=OTHER_USER_ID)]
    made.store.append_entries(GUILD_ID, entries, cap=500)
    seed_playing(made.store, listener_ids=LISTENERS)
    return made


def _content(body: dict[str, Any]) -> str:
    return str(body["data"].get("content") or "")


def test_skipping_over_only_your_own_tracks_needs_no_dj(api: HandlerApi) -> None:
    body = api.post(command("skipto", {"position": 3})).json_body
    assert _content(body) == f"⏭ <@{USER_ID}> skipped to **Track q3** and dropped 2 tracks."
    record = api.store.get_guild(GUILD_ID)
    assert record.queue == ("q3",)
    assert record.desired.skip_seq == 1


def test_skipping_over_someone_elses_track_is_refused_without_a_vote(api: HandlerApi) -> None:
    api.store.skip_to(GUILD_ID, 1)  # nothing skipped over; the current one stays USER_ID's
    body = api.post(command("skipto", {"position": 2}, user_id=OTHER_USER_ID)).json_body
    assert body["data"]["flags"] == EPHEMERAL
    assert "only skip over tracks you added yourself" in _content(body)
    record = api.store.get_guild(GUILD_ID)
    assert record.queue == ("q1", "q2", "q3")
    assert record.skip_votes == ()


@pytest.mark.parametrize(
    ("roles", "permissions"), [((DJ_ROLE_ID,), "0"), ((), MANAGE_GUILD)], ids=["dj-role", "manage-server"]
)
def test_a_dj_skips_over_anyones_tracks(api: HandlerApi, roles: tuple[str, ...], permissions: str) -> None:
    api.post(command("settings", {"role": DJ_ROLE_ID}, sub="dj role", permissions=MANAGE_GUILD))
    body = api.post(command("skipto", {"position": 2}, user_id=OTHER_USER_ID, roles=roles, permissions=permissions))
    assert "skipped to **Track q2** and dropped 1 track." in _content(body.json_body)
    assert api.store.get_guild(GUILD_ID).queue == ("q2", "q3")


def test_under_loop_queue_the_reply_says_the_skipped_go_to_the_end(api: HandlerApi) -> None:
    api.store.set_loop(GUILD_ID, LoopMode.QUEUE)
    body = api.post(command("skipto", {"position": 3}, permissions=MANAGE_GUILD)).json_body
    assert _content(body).endswith("skipped to **Track q3** and moved 2 tracks to the end (loop queue).")
    assert api.store.get_guild(GUILD_ID).queue == ("q3", "q1", "q2")


@pytest.mark.parametrize("position", [0, 4, 99])
def test_an_out_of_range_position_gets_the_range(api: HandlerApi, position: int) -> None:
    body = api.post(command("skipto", {"position": position}, permissions=MANAGE_GUILD)).json_body
    assert body["data"]["flags"] == EPHEMERAL
    assert _content(body) == "`position` must be between 1 and 3 (the queue has 3 tracks)."


def test_nothing_playing_says_so(make_api: Callable[..., HandlerApi]) -> None:
    body = make_api().post(command("skipto", {"position": 1})).json_body
    assert _content(body) == "Nothing is playing right now."


# ---------------------------------------------------------------------------------------------- play now
def _play(api: HandlerApi, placement: str, **kwargs: Any) -> dict[str, Any]:
    body: dict[str, Any] = api.post(
        command("play", {"query": "never gonna", "placement": placement}, **kwargs)
    ).json_body
    return body


@pytest.fixture
def play_api(make_api: Callable[..., HandlerApi]) -> HandlerApi:
    """The current track was added by USER_ID; /play jobs run inline against a closed port."""
    made = make_api(launcher="none", dispatcher="inline", discord_api_base="http://127.0.0.1:9", rate_play_user="off")
    seed_playing(made.store, listener_ids=LISTENERS)
    return made


def test_play_now_is_for_djs_and_whoever_added_the_current_track(play_api: HandlerApi) -> None:
    assert _play(play_api, "now")["type"] == 5  # USER_ID added it
    refused = _play(play_api, "now", user_id=OTHER_USER_ID)
    assert refused["type"] == 4 and refused["data"]["flags"] == EPHEMERAL
    assert "can cut it with `play now`. Use `play next` instead." in _content(refused)
    assert _play(play_api, "next", user_id=OTHER_USER_ID)["type"] == 5
    assert _play(play_api, "now", user_id=OTHER_USER_ID, permissions=MANAGE_GUILD)["type"] == 5


def test_in_dj_only_mode_play_now_is_for_djs_only(play_api: HandlerApi) -> None:
    play_api.post(command("settings", {"role": DJ_ROLE_ID}, sub="dj role", permissions=MANAGE_GUILD))
    play_api.post(command("settings", {"enabled": True}, sub="dj only", permissions=MANAGE_GUILD))
    refused = _play(play_api, "now")  # USER_ID added the current track, but is no DJ
    assert _content(refused) == (
        f"DJ-only mode is on: only members with the <@&{DJ_ROLE_ID}> role or Manage Server can cut the current track."
    )
    assert _play(play_api, "now", roles=(DJ_ROLE_ID,))["type"] == 5


def test_an_unknown_placement_gets_a_sentence(play_api: HandlerApi) -> None:
    body = _play(play_api, "sideways")
    assert _content(body) == "Placement must be `end`, `next` or `now`."


# ---------------------------------------------------------------------------------------------- back
def test_back_plays_the_previous_track_now_and_the_current_one_next(play_api: HandlerApi) -> None:
    store = play_api.store
    previous = track_entry("prev", title="Earlier Song")
    store.record_played(GUILD_ID, previous, now=1.0, seq=0)
    store.record_played(GUILD_ID, store.get_guild(GUILD_ID).actual.now_playing, now=2.0, seq=1)  # type: ignore[arg-type]
    body = play_api.post(command("back")).json_body
    assert _content(body) == f"⏮ <@{USER_ID}> went back to **Earlier Song**; **Now Song** plays after it."
    record = store.get_guild(GUILD_ID)
    assert [e.title for e in store.get_entries(GUILD_ID, record.queue)] == ["Earlier Song", "Now Song"]
    assert record.desired.skip_seq == 1


def test_back_with_no_history_says_so(play_api: HandlerApi) -> None:
    body = play_api.post(command("back")).json_body
    assert _content(body) == "There's no earlier track in this server's history to go back to."
    assert play_api.store.get_guild(GUILD_ID).desired.skip_seq == 0


def test_back_is_refused_to_a_listener_who_did_not_add_the_current_track(play_api: HandlerApi) -> None:
    play_api.store.record_played(GUILD_ID, track_entry("prev"), now=1.0, seq=0)
    body = play_api.post(command("back", user_id=OTHER_USER_ID)).json_body
    assert body["data"]["flags"] == EPHEMERAL
    assert _content(body).endswith("or whoever added the current track can go back from it.")
