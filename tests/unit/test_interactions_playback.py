"""GIVEN a guild's stored state WHEN playback commands and buttons arrive THEN desired state and replies follow."""

from __future__ import annotations

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
    component,
    seed_playing,
    seed_queue,
)
from timmybot.models import GuildRecord, LoopMode


def _record(api: HandlerApi) -> GuildRecord:
    return api.store.get_guild(GUILD_ID)


def _content(body: dict) -> str:  # type: ignore[type-arg]
    return str(body["data"].get("content", ""))


def _is_private(body: dict) -> bool:  # type: ignore[type-arg]
    return body["type"] == 4 and body["data"].get("flags") == EPHEMERAL


# ------------------------------------------------------------------------------ nothing playing
@pytest.mark.parametrize(
    "payload",
    [
        command("skip"),
        command("pause"),
        command("resume"),
        command("stop"),
        command("seek", {"position": "1:00"}),
        command("nowplaying"),
        component("v1:np:pause"),
        component("v1:np:skip"),
        component("v1:np:stop"),
    ],
    ids=["skip", "pause", "resume", "stop", "seek", "nowplaying", "btn-pause", "btn-skip", "btn-stop"],
)
def test_playback_controls_while_nothing_plays_say_so_and_change_nothing(api: HandlerApi, payload: dict) -> None:  # type: ignore[type-arg]
    # GIVEN a queue but nothing playing
    seed_queue(api.store, 2)
    before = _record(api)
    # WHEN a control arrives
    body = api.post(payload).json_body
    # THEN an ephemeral "nothing is playing" and the record is untouched
    assert _is_private(body)
    assert _content(body) == "Nothing is playing right now."
    after = _record(api)
    assert after.desired == before.desired
    assert after.queue == before.queue


def test_volume_while_nothing_plays_is_stored_and_says_it_applies_later(api: HandlerApi) -> None:
    body = api.post(command("volume", {"level": 80})).json_body
    assert not _is_private(body)
    assert "80%" in _content(body)
    assert "will apply when music plays" in _content(body)
    assert _record(api).desired.volume == 80


def test_loop_while_nothing_plays_is_stored(api: HandlerApi) -> None:
    body = api.post(command("loop", {"mode": "queue"})).json_body
    assert "will apply when music plays" in _content(body)
    assert _record(api).desired.loop is LoopMode.QUEUE


# ------------------------------------------------------------------------------ while playing
def test_skip_bumps_the_skip_counter_and_names_the_track(api: HandlerApi) -> None:
    seed_playing(api.store)
    body = api.post(command("skip")).json_body
    assert body["type"] == 4
    assert "skipped **Now Song**" in _content(body)
    assert body["data"]["allowed_mentions"] == {"parse": []}
    assert _record(api).desired.skip_seq == 1


def test_pause_then_resume_flip_desired_paused(api: HandlerApi) -> None:
    seed_playing(api.store)
    assert "paused" in _content(api.post(command("pause")).json_body)
    assert _record(api).desired.paused is True
    assert "resumed" in _content(api.post(command("resume")).json_body)
    assert _record(api).desired.paused is False


def test_pause_when_already_paused_explains_and_writes_nothing(api: HandlerApi) -> None:
    seed_playing(api.store)
    api.post(command("pause"))
    version = _record(api).version
    body = api.post(command("pause")).json_body
    assert _is_private(body)
    assert "already paused" in _content(body)
    assert _record(api).version == version


def test_resume_when_not_paused_explains_and_writes_nothing(api: HandlerApi) -> None:
    seed_playing(api.store)
    version = _record(api).version
    body = api.post(command("resume")).json_body
    assert _is_private(body)
    assert "not paused" in _content(body)
    assert _record(api).version == version


def test_stop_bumps_the_stop_counter_and_clears_the_queue(api: HandlerApi) -> None:
    seed_playing(api.store)
    seed_queue(api.store, 3)
    body = api.post(command("stop")).json_body
    assert "stopped the music and cleared the queue (3 tracks)" in _content(body)
    record = _record(api)
    assert record.desired.stop_seq == 1
    assert record.queue == ()


@pytest.mark.parametrize(("text", "expected_ms"), [("1:30", 90_000), ("0:00:05", 5_000), ("75", 75_000)])
def test_seek_accepts_mm_ss_h_mm_ss_and_seconds(api: HandlerApi, text: str, expected_ms: int) -> None:
    seed_playing(api.store)
    body = api.post(command("seek", {"position": text})).json_body
    assert not _is_private(body)
    desired = _record(api).desired
    assert desired.seek_ms == expected_ms
    assert desired.seek_seq == 1


@pytest.mark.parametrize("text", ["abc", "1:75", "1:2:3:4", "-5", "1.5", "", "99:99:99"])
def test_seek_with_a_bad_time_shows_examples_and_changes_nothing(api: HandlerApi, text: str) -> None:
    seed_playing(api.store)
    body = api.post(command("seek", {"position": text})).json_body
    assert _is_private(body)
    assert "mm:ss" in _content(body)
    assert _record(api).desired.seek_seq == 0


def test_seek_past_the_end_of_the_track_is_refused_with_its_length(api: HandlerApi) -> None:
    seed_playing(api.store)  # a 4:00 track
    body = api.post(command("seek", {"position": "4:00"})).json_body
    assert _is_private(body)
    assert "past the end" in _content(body)
    assert "4:00 long" in _content(body)
    assert _record(api).desired.seek_seq == 0


@pytest.mark.parametrize("level", [-1, 151, 1000])
def test_volume_out_of_bounds_says_what_is_allowed(api: HandlerApi, level: int) -> None:
    body = api.post(command("volume", {"level": level})).json_body
    assert _is_private(body)
    assert "between 0 and 150" in _content(body)
    assert _record(api).desired.volume == 100


def test_volume_while_playing_sets_desired_volume(api: HandlerApi) -> None:
    seed_playing(api.store)
    body = api.post(command("volume", {"level": 150})).json_body
    assert "150%" in _content(body)
    assert "will apply" not in _content(body)
    assert _record(api).desired.volume == 150


@pytest.mark.parametrize("mode", ["off", "track", "queue"])
def test_loop_sets_each_mode(api: HandlerApi, mode: str) -> None:
    seed_playing(api.store)
    api.post(command("loop", {"mode": mode}))
    assert _record(api).desired.loop is LoopMode(mode)


def test_loop_with_an_unknown_mode_lists_the_modes(api: HandlerApi) -> None:
    body = api.post(command("loop", {"mode": "forever"})).json_body
    assert _is_private(body)
    assert "off, track, queue" in _content(body)


def test_nowplaying_shows_progress_requester_thumbnail_and_buttons(api: HandlerApi) -> None:
    seed_playing(api.store, position_s=60)
    body = api.post(command("nowplaying")).json_body
    embed = body["data"]["embeds"][0]
    assert "Now Song" in embed["description"]
    assert "🔘" in embed["description"]
    assert "/ 4:00" in embed["description"]
    assert f"<@{USER_ID}>" in embed["description"]
    assert embed["thumbnail"]["url"].startswith("https://")
    ids = [c["custom_id"] for c in body["data"]["components"][0]["components"]]
    assert ids == ["v1:np:back", "v1:np:pause", "v1:np:skip", "v1:np:stop"]


# ------------------------------------------------------------------------------ buttons
def test_pause_button_toggles_pause_and_resume(api: HandlerApi) -> None:
    seed_playing(api.store)
    api.post(component("v1:np:pause"))
    assert _record(api).desired.paused is True
    api.post(component("v1:np:pause"))
    assert _record(api).desired.paused is False


def test_skip_and_stop_buttons_act_like_the_commands(api: HandlerApi) -> None:
    seed_playing(api.store)
    api.post(component("v1:np:skip"))
    api.post(component("v1:np:stop"))
    desired = _record(api).desired
    assert (desired.skip_seq, desired.stop_seq) == (1, 1)


# ------------------------------------------------------------------------------ who may control
def test_member_outside_the_voice_channel_is_refused_with_the_reason(api: HandlerApi) -> None:
    seed_playing(api.store, listener_ids=[OTHER_USER_ID])
    body = api.post(command("skip", user_id=USER_ID)).json_body
    assert _is_private(body)
    assert "listening in my voice channel" in _content(body)
    assert _record(api).desired.skip_seq == 0


def test_listener_may_control(api: HandlerApi) -> None:
    seed_playing(api.store, listener_ids=[USER_ID])
    api.post(command("skip", user_id=USER_ID))
    assert _record(api).desired.skip_seq == 1


def test_dj_role_may_control_from_outside_the_channel(api: HandlerApi) -> None:
    api.store.update_settings(GUILD_ID, dj_role_id=DJ_ROLE_ID)
    seed_playing(api.store, listener_ids=[OTHER_USER_ID])
    api.post(command("skip", roles=[DJ_ROLE_ID]))
    assert _record(api).desired.skip_seq == 1


def test_manage_guild_may_control_from_outside_the_channel(api: HandlerApi) -> None:
    seed_playing(api.store, listener_ids=[OTHER_USER_ID])
    api.post(command("volume", {"level": 10}, permissions=MANAGE_GUILD))
    assert _record(api).desired.volume == 10


def test_refused_member_may_not_change_volume_or_queue_either(api: HandlerApi) -> None:
    seed_playing(api.store, listener_ids=[OTHER_USER_ID])
    seed_queue(api.store, 3)
    for payload in (
        command("volume", {"level": 5}),
        command("shuffle"),
        command("clear"),
        command("remove", {"position": 1}),
    ):
        assert _is_private(api.post(payload).json_body)
    record = _record(api)
    assert record.desired.volume == 100
    assert len(record.queue) == 3
