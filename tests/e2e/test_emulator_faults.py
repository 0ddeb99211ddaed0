"""Each emulator fault is seen by a real discord.py 2.7.1 client (in a subprocess)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.minimal_bot import MinimalBotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(40)]

StartBot = Callable[..., MinimalBotProcess]


def _joined_bot(start_bot: StartBot, guild: GuildHandle) -> MinimalBotProcess:
    bot = start_bot()
    bot.wait_event("ready")
    bot.command("join", guild=guild.id, channel=guild.voice_channel_id, timeout=3, dave_timeout=0)
    bot.wait_event("joined")
    return bot


def test_malformed_guild_create_surfaces_the_client_keyerror_instead_of_hanging(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot
) -> None:
    # GIVEN an emulator whose GUILD_CREATE members lack the mandatory "flags" field
    def drop_flags(payload: dict[str, Any]) -> dict[str, Any]:
        for member in payload["members"]:
            del member["flags"]
        return payload

    emulator.set_guild_create_hook(drop_flags)

    # WHEN a discord.py client logs in
    bot = start_bot()
    code = bot.wait_exit(timeout=20)

    # THEN the client process fails with the KeyError rather than hanging
    assert code != 0
    assert "KeyError: 'flags'" in bot.stderr
    assert not any(e["event"] == "ready" for e in bot.events)


@pytest.mark.parametrize(
    ("code", "bot_log", "reconnect"),
    [
        (4006, "Not handling close code 4006", "identify"),
        (4017, "Not handling close code 4017", "identify"),
        (4015, "attempting a resume", "rejoin"),
        (4014, "Disconnected from voice by force", None),
    ],
)
def test_voice_close_code_is_observed_by_the_client(
    emulator: DiscordEmulator,
    guild: GuildHandle,
    start_bot: StartBot,
    code: int,
    bot_log: str,
    reconnect: str | None,
) -> None:
    # GIVEN a client connected to voice
    bot = _joined_bot(start_bot, guild)
    assert len(emulator.voice_events(guild.id, "identify")) == 1

    # WHEN the emulator closes the guild's voice websocket with the close code
    assert emulator.close_voice(guild.id, code)

    # THEN the client logs its handling of that code
    bot.wait_stderr(bot_log, timeout=10)
    closes = emulator.voice_events(guild.id, "closed_by_server")
    assert [c.data for c in closes] == [code]
    # AND it tries to come back the way discord.py does for that code
    if reconnect == "identify":
        emulator.wait_for(
            lambda: len(emulator.voice_events(guild.id, "identify")) >= 2, timeout=10, message="a new voice IDENTIFY"
        )
    elif reconnect == "rejoin":
        emulator.wait_for(
            lambda: [h for h in emulator.bot_voice_history(guild.id)[1:] if h.channel_id == guild.voice_channel_id],
            timeout=10, message="the bot sending op 4 again",
        )  # fmt: skip


def test_invalid_session_on_identify_makes_the_client_identify_again(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot
) -> None:
    # GIVEN an emulator that answers the next IDENTIFY with op 9
    emulator.invalidate_next_identify()

    # WHEN a client logs in
    bot = start_bot()
    bot.wait_event("ready")

    # THEN it identified twice, the first one being invalidated
    identifies = emulator.identifies()
    assert [i.answered_with_invalid_session for i in identifies] == [True, False]
    assert identifies[1].time > identifies[0].time


def test_rate_limited_rest_call_is_retried_after_retry_after(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot
) -> None:
    # GIVEN a route answered once with 429 retry_after 0.5 s
    path = f"/channels/{guild.text_channel_id}/messages"
    emulator.rate_limit("POST", path, times=1, retry_after=0.5)
    bot = start_bot()
    bot.wait_event("ready")

    # WHEN the client sends a message there
    bot.command("send", channel=guild.text_channel_id, content="hello")
    bot.wait_event("sent")

    # THEN the same route was called twice, spaced by at least retry_after, and the message exists
    calls = emulator.requests("POST", path)
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].time - calls[0].time >= 0.5
    assert [m.content for m in emulator.messages(guild.text_channel_id)] == ["hello"]


def test_rest_latency_delays_the_answer(emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot) -> None:
    # GIVEN 0.4 s of added latency on GET /channels/{id}
    emulator.set_rest_latency(0.4, method="GET", path=f"/channels/{guild.voice_channel_id}")
    bot = start_bot()
    bot.wait_event("ready")

    # WHEN the client fetches that channel
    bot.command("fetch_channel", channel=guild.voice_channel_id)
    fetched = bot.wait_event("fetched")

    # THEN the call took at least the added latency
    assert fetched["t1"] - fetched["t0"] >= 0.4
