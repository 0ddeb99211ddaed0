"""GIVEN the command registry WHEN its schema is produced THEN Discord's limits and our rules hold."""

from __future__ import annotations

import re

import pytest

from chalicelib import commands
from timmybot.discord.types import OptionType

NAME_RE = re.compile(r"^[-_0-9a-z]{1,32}$")  # lowercase, as Discord requires for chat commands
FAST_PATH = {
    "queue", "nowplaying", "skip", "pause", "resume", "stop", "remove", "move", "shuffle", "clear", "loop", "volume",
    "seek",
    "skipto", "back", "history", "filter", "speed", "pitch",
}  # fmt: skip


DEFERRED = {"play", "search", "lyrics"}  # answered with type 5; a worker finishes them
ADMIN = {"settings"}
ACCOUNTS = {"link", "check-auth", "unlink", "forget-me"}  # ephemeral; the vault is built only for these
PREFERENCES = {"preferences"}  # ephemeral, on the store alone
PERSONAL = {"my-playlists", "liked-songs", "play-history", "recommendations", "autoplay"}  # worker, except /autoplay
SAVED = {"playlist"}  # store-only subcommands here; load, add by query, import and export in the worker


def test_schema_holds_exactly_the_commands_we_serve() -> None:
    names = [c["name"] for c in commands.schema()]
    assert len(names) == len(set(names))
    assert set(names) == FAST_PATH | DEFERRED | ADMIN | ACCOUNTS | PERSONAL | PREFERENCES | SAVED


def test_settings_is_hidden_from_members_without_manage_server() -> None:
    schema = next(c for c in commands.schema() if c["name"] == "settings")
    assert schema["default_member_permissions"] == str(1 << 5)


@pytest.mark.parametrize("schema", commands.schema(), ids=lambda s: s["name"])
def test_each_command_is_guild_only_and_within_discords_limits(schema: dict) -> None:  # type: ignore[type-arg]
    assert NAME_RE.match(schema["name"])
    assert 1 <= len(schema["description"]) <= 100
    assert schema["type"] == 1
    assert schema["contexts"] == [0]
    assert schema["integration_types"] == [0]
    assert schema["dm_permission"] is False
    _check_options(schema.get("options", []))


def _check_options(options: list) -> None:  # type: ignore[type-arg]
    """Each level of options (a command's, a group's, a subcommand's) within Discord's limits."""
    assert len(options) <= 25
    required_seen_optional = False
    for option in options:
        if option["type"] in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
            assert NAME_RE.match(option["name"])
            assert 1 <= len(option["description"]) <= 100
            assert "required" not in option
            _check_options(option.get("options", []))
            continue
        assert NAME_RE.match(option["name"])
        assert 1 <= len(option["description"]) <= 100
        assert option["type"] in {t.value for t in OptionType}
        if not option["required"]:
            required_seen_optional = True
        else:
            assert not required_seen_optional, "required options must come before optional ones"
        for choice in option.get("choices", []):
            assert 1 <= len(str(choice["name"])) <= 100


def test_volume_and_positions_carry_discord_side_bounds() -> None:
    by_name = {c["name"]: c for c in commands.schema()}
    (level,) = by_name["volume"]["options"]
    assert (level["min_value"], level["max_value"]) == (0, 150)
    assert all(o["min_value"] == 1 for o in by_name["move"]["options"])
    assert [c["value"] for c in by_name["loop"]["options"][0]["choices"]] == ["off", "track", "queue"]


def test_filter_speed_and_pitch_carry_discord_side_bounds() -> None:
    by_name = {c["name"]: c for c in commands.schema()}
    (preset,) = by_name["filter"]["options"]
    values = [c["value"] for c in preset["choices"]]
    assert values[0] == "off" and {"nightcore", "vaporwave", "8d", "karaoke", "bass_high", "eq_vocal"} <= set(values)
    (speed,) = by_name["speed"]["options"]
    assert (speed["type"], speed["min_value"], speed["max_value"]) == (OptionType.NUMBER, 0.5, 2.0)
    (pitch,) = by_name["pitch"]["options"]
    assert (pitch["type"], pitch["min_value"], pitch["max_value"]) == (OptionType.INTEGER, -12, 12)


def test_every_command_has_a_handler_registered_by_name() -> None:
    for command in commands.COMMANDS:
        assert commands.BY_NAME[command.name].handler is command.handler
        assert callable(command.handler)
