"""/settings for managers only, and vote-skip with three or more listeners."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.handler_kit import HandlerApi
from tests.support.signing import (
    DJ_ROLE_ID,
    EPHEMERAL,
    MANAGE_GUILD,
    command,
    seed_playing,
)

LISTENERS = ("111111111111111111", "222222222222222222", "333333333333333333")


def _content(response) -> str:  # type: ignore[no-untyped-def]
    return str(response.json_body["data"].get("content") or "")


def _ephemeral(response) -> bool:  # type: ignore[no-untyped-def]
    return response.json_body["data"].get("flags") == EPHEMERAL


def test_settings_is_refused_without_manage_server(api: HandlerApi) -> None:
    response = api.post(command("settings", {"enabled": False}, sub="vote-skip"))

    assert _ephemeral(response) and "Manage Server" in _content(response)
    assert api.store.get_guild("123456789012345678").settings.vote_skip is True


def test_a_manager_sets_the_dj_role_vote_skip_24_7_and_idle_timeout(api: HandlerApi) -> None:
    for sub, options in [
        ("dj role", {"role": DJ_ROLE_ID}),
        ("vote-skip", {"percent": 66}),
        ("playback 24-7", {"enabled": True}),
        ("playback idle-timeout", {"minutes": 10}),
    ]:
        response = api.post(command("settings", options, sub=sub, permissions=MANAGE_GUILD))
        assert _ephemeral(response) and "Settings saved" in _content(response), sub
    settings = api.store.get_guild("123456789012345678").settings

    assert settings.dj_role_id == DJ_ROLE_ID
    assert settings.vote_skip_percent == 66
    assert settings.twenty_four_seven is True
    assert settings.idle_timeout_s == 600


def test_an_idle_timeout_outside_the_operator_limits_is_refused_with_the_range(api: HandlerApi) -> None:
    response = api.post(command("settings", {"minutes": 600}, sub="playback idle-timeout", permissions=MANAGE_GUILD))

    assert _ephemeral(response) and "between 1 and 60 minutes" in _content(response)


def test_24_7_is_refused_when_the_operator_forbids_it(make_api: Callable[..., HandlerApi]) -> None:
    api = make_api(allow_24_7=False)
    response = api.post(command("settings", {"enabled": True}, sub="playback 24-7", permissions=MANAGE_GUILD))

    assert _ephemeral(response) and "operator" in _content(response)
    assert api.store.get_guild("123456789012345678").settings.twenty_four_seven is False


def test_settings_show_shows_the_current_settings(api: HandlerApi) -> None:
    response = api.post(command("settings", sub="show", permissions=MANAGE_GUILD))

    assert "Current settings" in _content(response) and "Vote-skip: on" in _content(response)


def test_with_three_listeners_a_skip_needs_a_majority(api: HandlerApi) -> None:
    seed_playing(api.store, listener_ids=LISTENERS)

    first = api.post(command("skip", user_id=LISTENERS[0]))
    again = api.post(command("skip", user_id=LISTENERS[0]))  # the same member twice counts once
    after_one = api.store.get_guild("123456789012345678")
    second = api.post(command("skip", user_id=LISTENERS[1]))
    after_two = api.store.get_guild("123456789012345678")

    assert "1/2 votes" in _content(first) and "1/2 votes" in _content(again)
    assert after_one.desired.skip_seq == 0
    assert "Vote passed (2/2)" in _content(second)
    assert after_two.desired.skip_seq == 1
    assert after_two.skip_votes == ()


def test_a_dj_skips_alone_even_with_three_listeners(api: HandlerApi) -> None:
    api.store.update_settings("123456789012345678", dj_role_id=DJ_ROLE_ID)
    seed_playing(api.store, listener_ids=LISTENERS)

    response = api.post(command("skip", user_id=LISTENERS[2], roles=[DJ_ROLE_ID]))

    assert "skipped" in _content(response)
    assert api.store.get_guild("123456789012345678").desired.skip_seq == 1


def test_with_fewer_than_three_listeners_a_skip_is_immediate(api: HandlerApi) -> None:
    seed_playing(api.store, listener_ids=LISTENERS[:2])

    api.post(command("skip", user_id=LISTENERS[0]))

    assert api.store.get_guild("123456789012345678").desired.skip_seq == 1


def test_vote_skip_off_skips_at_once(api: HandlerApi) -> None:
    api.store.update_settings("123456789012345678", vote_skip=False)
    seed_playing(api.store, listener_ids=LISTENERS)

    api.post(command("skip", user_id=LISTENERS[0]))

    assert api.store.get_guild("123456789012345678").desired.skip_seq == 1
