"""Who may control (BRIEF §5): the now-playing buttons go through the same check as the commands."""

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
    component,
    seed_playing,
)


@pytest.mark.parametrize("custom_id", ["v1:np:skip", "v1:np:pause", "v1:np:stop"], ids=["skip", "pause", "stop"])
def test_a_non_listener_pressing_a_now_playing_button_is_refused(api: HandlerApi, custom_id: str) -> None:
    # GIVEN music plays to a channel where only someone else listens
    seed_playing(api.store, listener_ids=[OTHER_USER_ID])
    before = api.store.get_guild(GUILD_ID).desired
    # WHEN a member who is not listening presses the button
    body = api.post(component(custom_id, user_id=USER_ID)).json_body
    # THEN they get an ephemeral refusal that says why, and nothing changes
    assert body["type"] == 4
    assert body["data"]["flags"] == EPHEMERAL
    assert "listening in my voice channel" in body["data"]["content"]
    assert api.store.get_guild(GUILD_ID).desired == before


def test_a_listener_may_press_skip(api: HandlerApi) -> None:
    seed_playing(api.store, listener_ids=[USER_ID])
    body = api.post(component("v1:np:skip", user_id=USER_ID)).json_body
    assert body["data"].get("flags") != EPHEMERAL
    assert api.store.get_guild(GUILD_ID).desired.skip_seq == 1


def test_dj_and_manager_may_press_skip_from_outside(api: HandlerApi) -> None:
    api.store.update_settings(GUILD_ID, dj_role_id=DJ_ROLE_ID)
    seed_playing(api.store, listener_ids=[OTHER_USER_ID])
    api.post(component("v1:np:skip", roles=[DJ_ROLE_ID]))
    api.post(component("v1:np:skip", permissions=MANAGE_GUILD))
    assert api.store.get_guild(GUILD_ID).desired.skip_seq == 2
