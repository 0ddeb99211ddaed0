"""DJ-only mode: with it on, only the DJ role, Manage Server and a member alone with the bot control
playback (no votes), and with ``dj_only_adding`` only they add tracks; each refusal names the role."""

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
    component,
    seed_playing,
    seed_queue,
)
from timmybot.models import GuildRecord

THIRD_USER_ID = "444444444444444444"
LISTENERS = (USER_ID, OTHER_USER_ID, THIRD_USER_ID)

#: Every control a non-DJ loses in DJ-only mode, as (command, options) or a now-playing button.
CONTROLS: list[tuple[str, dict[str, Any]]] = [
    ("skip", {}),
    ("stop", {}),
    ("pause", {}),
    ("seek", {"position": "1:00"}),
    ("volume", {"level": 80}),
    ("loop", {"mode": "track"}),
    ("remove", {"position": 1}),
    ("move", {"from": 1, "to": 2}),
    ("shuffle", {}),
    ("clear", {}),
]


@pytest.fixture
def api(make_api: Callable[..., HandlerApi]) -> HandlerApi:
    # /play jobs run inline against a closed port: the fast path's answer is what these tests read
    made = make_api(launcher="none", dispatcher="inline", discord_api_base="http://127.0.0.1:9", rate_play_user="off")
    seed_queue(made.store, 3)
    seed_playing(made.store, listener_ids=LISTENERS)
    return made


def _dj_only(api: HandlerApi, *, role: str | None = DJ_ROLE_ID, adding: bool = False) -> None:
    if role:
        response = api.post(command("settings", {"role": role}, sub="dj role", permissions=MANAGE_GUILD))
        assert "Settings saved" in response.json_body["data"]["content"]
    options = {"enabled": True, "adding": adding}
    response = api.post(command("settings", options, sub="dj only", permissions=MANAGE_GUILD))
    assert "Settings saved" in response.json_body["data"]["content"]


def _content(body: dict[str, Any]) -> str:
    return str(body["data"].get("content") or "")


def _snapshot(api: HandlerApi) -> GuildRecord:
    return api.store.get_guild(GUILD_ID)


@pytest.mark.parametrize(("name", "options"), CONTROLS, ids=[name for name, _ in CONTROLS])
def test_a_listening_non_dj_is_refused_every_control_with_the_role_named(
    api: HandlerApi, name: str, options: dict[str, Any]
) -> None:
    _dj_only(api)
    before = _snapshot(api)
    body = api.post(command(name, options, user_id=OTHER_USER_ID)).json_body
    assert body["data"]["flags"] == EPHEMERAL
    assert _content(body) == (
        f"DJ-only mode is on: only members with the <@&{DJ_ROLE_ID}> role or Manage Server can control playback."
    )
    after = _snapshot(api)
    assert (after.desired, after.queue) == (before.desired, before.queue)


def test_the_now_playing_buttons_are_refused_too(api: HandlerApi) -> None:
    _dj_only(api)
    body = api.post(component("v1:np:skip", user_id=OTHER_USER_ID)).json_body
    assert "DJ-only mode is on" in _content(body)
    assert _snapshot(api).desired.skip_seq == 0


@pytest.mark.parametrize(
    ("roles", "permissions"), [((DJ_ROLE_ID,), "0"), ((), MANAGE_GUILD)], ids=["dj-role", "manage-server"]
)
def test_the_dj_and_a_manager_skip_at_once_without_a_vote(
    api: HandlerApi, roles: tuple[str, ...], permissions: str
) -> None:
    _dj_only(api)
    body = api.post(command("skip", user_id=OTHER_USER_ID, roles=roles, permissions=permissions)).json_body
    assert "skipped" in _content(body)
    assert _snapshot(api).desired.skip_seq == 1
    assert _snapshot(api).skip_votes == ()


def test_a_member_alone_with_the_bot_controls_it(make_api: Callable[..., HandlerApi]) -> None:
    api = make_api(launcher="none")
    seed_playing(api.store, listener_ids=(OTHER_USER_ID,))
    _dj_only(api)
    body = api.post(command("pause", user_id=OTHER_USER_ID)).json_body
    assert "paused" in _content(body)
    assert _snapshot(api).desired.paused is True


def test_with_no_dj_role_only_manage_server_controls_and_the_refusal_says_so(api: HandlerApi) -> None:
    _dj_only(api, role=None)
    body = api.post(command("skip", user_id=OTHER_USER_ID, roles=(DJ_ROLE_ID,))).json_body
    assert _content(body) == (
        "DJ-only mode is on and no DJ role is set, so only members with Manage Server can control playback."
    )
    managed = api.post(command("skip", user_id=OTHER_USER_ID, permissions=MANAGE_GUILD)).json_body
    assert "skipped" in _content(managed)


def test_vote_skip_is_off_in_dj_only_mode(api: HandlerApi) -> None:
    # Before DJ-only, a listener's skip with three listeners is a vote
    vote = api.post(command("skip", user_id=OTHER_USER_ID)).json_body
    assert "voted to skip" in _content(vote)
    _dj_only(api)
    refused = api.post(command("skip", user_id=THIRD_USER_ID)).json_body
    assert "DJ-only mode is on" in _content(refused)
    assert _snapshot(api).desired.skip_seq == 0


def test_adding_stays_open_unless_dj_only_adding_is_on(api: HandlerApi) -> None:
    _dj_only(api, adding=False)
    open_body = api.post(command("play", {"query": "never gonna give you up"}, user_id=OTHER_USER_ID)).json_body
    assert open_body["type"] == 5  # deferred: dispatched to the worker
    _dj_only(api, adding=True)
    refused = api.post(command("play", {"query": "never gonna give you up"}, user_id=OTHER_USER_ID)).json_body
    assert refused["type"] == 4
    assert _content(refused) == (
        f"DJ-only mode is on: only members with the <@&{DJ_ROLE_ID}> role or Manage Server can add tracks."
    )
    dj = api.post(command("play", {"query": "never gonna"}, user_id=OTHER_USER_ID, roles=(DJ_ROLE_ID,)))
    assert dj.json_body["type"] == 5


def test_settings_shows_dj_only(api: HandlerApi) -> None:
    _dj_only(api, adding=True)
    body = api.post(command("settings", sub="show", permissions=MANAGE_GUILD)).json_body
    assert f"DJ-only: on: only <@&{DJ_ROLE_ID}> controls playback, no votes (adding too)" in _content(body)


def test_an_older_writer_keeps_the_fields_it_does_not_know() -> None:
    """A voice task of this release rewrites the whole record; a newer release's fields survive."""
    stored = GuildRecord(guild_id=GUILD_ID).to_dict()
    stored["settings"]["future_setting"] = "kept"
    stored["desired"]["future_seq"] = 3
    stored["future_part"] = {"a": 1}
    record = GuildRecord.from_dict(stored)
    rewritten = record.evolve(last_active=5.0).to_dict()
    assert rewritten["settings"]["future_setting"] == "kept"
    assert rewritten["desired"]["future_seq"] == 3
    assert rewritten["future_part"] == {"a": 1}
    assert rewritten["last_active"] == 5.0
