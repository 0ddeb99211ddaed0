"""/settings registers on the emulator with every body passing Discord's spec checks (its handler
tests: tests/unit/test_interactions_settings_subcommands.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from chalicelib import commands
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.unit.test_interactions_settings_subcommands import settings_schema


def test_the_command_registers_on_the_emulator_with_every_body_passing_its_spec_checks(
    emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    path = f"/applications/{emulator.application_id}/guilds/{guild.id}/commands"
    headers = {"Content-Type": "application/json", "Authorization": f"Bot {emulator.bot_token}"}
    request = urllib.request.Request(
        emulator.api_base + path, json.dumps(commands.schema()).encode(), headers, method="PUT"
    )
    try:
        with urllib.request.urlopen(request, context=emulator.ssl_context(), timeout=10) as response:
            status, answer = response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        status, answer = error.code, json.loads(error.read() or b"null")
    assert status == 200, answer
    registered = {c["name"]: c for c in emulator.registered_commands(guild.id)}
    assert registered["settings"]["options"] == settings_schema()["options"]
