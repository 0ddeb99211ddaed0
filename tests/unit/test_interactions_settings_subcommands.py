"""/settings in subcommands and groups (issue 18, Build 4): every setting reachable and a sentence for
each mistake (the registration on the emulator: tests/e2e/test_settings_registration.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import commands
from tests.support.handler_kit import HandlerApi
from tests.support.signing import DJ_ROLE_ID, EPHEMERAL, GUILD_ID, MANAGE_GUILD, command


def _answer(api: HandlerApi, sub: str, options: dict[str, Any] | None = None) -> tuple[str, int]:
    body = api.post(command("settings", options, sub=sub, permissions=MANAGE_GUILD)).json_body
    return str(body["data"].get("content") or ""), int(body["data"].get("flags") or 0)


def settings_schema() -> dict[str, Any]:
    return next(dict(c) for c in commands.schema() if c["name"] == "settings")


def _leaves(options: list[Any], path: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every subcommand path ("dj only") with its option names."""
    found: dict[str, list[str]] = {}
    for option in options:
        if option["type"] in (1, 2):
            inner = option.get("options", [])
            if option["type"] == 1:
                found[" ".join((*path, option["name"]))] = [o["name"] for o in inner]
            else:
                found.update(_leaves(inner, (*path, option["name"])))
    return found


def test_every_level_stays_far_within_discords_25_options_and_every_setting_has_its_subcommand() -> None:
    schema = settings_schema()

    def widths(options: list[Any]) -> Iterator[int]:
        yield len(options)
        for option in options:
            yield from widths(option.get("options", []))

    assert max(widths(schema["options"])) <= 5
    assert _leaves(schema["options"]) == {
        "show": [],
        "dj role": ["role"],
        "dj clear-role": [],
        "dj only": ["enabled", "adding"],
        "vote-skip": ["enabled", "percent"],
        "playback 24-7": ["enabled"],
        "playback idle-timeout": ["minutes"],
        "playback lyrics": ["enabled"],
    }


def test_each_subcommand_saves_its_part(api: HandlerApi) -> None:
    for sub, options in [
        ("dj role", {"role": DJ_ROLE_ID}),
        ("dj only", {"enabled": True, "adding": True}),
        ("vote-skip", {"enabled": False, "percent": 75}),
        ("playback 24-7", {"enabled": True}),
        ("playback idle-timeout", {"minutes": 7}),
        ("playback lyrics", {"enabled": True}),
    ]:
        content, flags = _answer(api, sub, options)
        assert flags == EPHEMERAL and content.startswith("Settings saved:"), (sub, content)
    settings = api.store.get_guild(GUILD_ID).settings
    assert (settings.dj_role_id, settings.dj_only, settings.dj_only_adding) == (DJ_ROLE_ID, True, True)
    assert (settings.vote_skip, settings.vote_skip_percent) == (False, 75)
    assert (settings.twenty_four_seven, settings.idle_timeout_s) == (True, 420)
    assert settings.lyrics_in_card

    _answer(api, "dj only", {"enabled": False})  # `adding` left out: it keeps its value
    _answer(api, "dj clear-role")
    settings = api.store.get_guild(GUILD_ID).settings
    assert (settings.dj_role_id, settings.dj_only, settings.dj_only_adding) == (None, False, True)
    content, _ = _answer(api, "show")
    assert content.startswith("Current settings:") and "DJ role: none" in content and "Idle timeout: 7 min" in content
    assert "Lyrics in the now-playing card: on" in content


@pytest.mark.parametrize(
    ("sub", "options", "sentence"),
    [
        ("", {"vote_skip": False}, "Choose what to change: `/settings show`"),  # the old flat form
        ("dj", {}, "Choose what to change: `/settings show`"),  # a group without its subcommand
        ("vote-skip", {}, "Give `enabled`, `percent` or both: `/settings vote-skip enabled:False`."),
        ("vote-skip", {"percent": 0}, "`percent` must be between 1 and 100 (you gave 0)."),
        ("dj only", {}, "`enabled` must be true or false."),
        ("dj only", {"enabled": "yes"}, "`enabled` must be true or false."),
        ("dj role", {"role": "everyone"}, "Pick the DJ role from the list (`role`)."),
        ("playback idle-timeout", {"minutes": 600}, "The idle timeout must be between 1 and 60 minutes"),
        ("playback idle-timeout", {}, "`minutes` must be a whole number."),
    ],
)
def test_each_mistake_gets_an_ephemeral_sentence_and_changes_nothing(
    api: HandlerApi, sub: str, options: dict[str, Any], sentence: str
) -> None:
    before = api.store.get_guild(GUILD_ID).settings
    content, flags = _answer(api, sub, options)
    assert flags == EPHEMERAL and content.startswith(sentence), content
    assert api.store.get_guild(GUILD_ID).settings == before


def test_without_manage_server_every_subcommand_is_refused(api: HandlerApi) -> None:
    for sub in ("show", "dj clear-role", "playback 24-7"):
        body = api.post(command("settings", {"enabled": True}, sub=sub)).json_body
        assert body["data"]["flags"] == EPHEMERAL
        assert "Manage Server" in body["data"]["content"]
