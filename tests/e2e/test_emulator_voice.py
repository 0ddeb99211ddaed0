"""The emulator against a real discord.py 2.7.1 client: login, voice join, playback, leave."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.audio import analyse
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.minimal_bot import MinimalBotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(40)]


def test_discord_py_client_plays_a_440hz_tone_that_the_emulator_decodes(
    emulator: DiscordEmulator,
    guild: GuildHandle,
    start_bot: Callable[..., MinimalBotProcess],
    tone_440_1s: Path,
) -> None:
    # GIVEN a discord.py client logged in to the emulator, and a listener in the voice channel
    emulator.add_listener(guild.id, guild.voice_channel_id)
    bot = start_bot()
    ready = bot.wait_event("ready")
    assert ready["guilds"] == [str(guild.id)]

    # WHEN it joins the voice channel, plays a 1 s 440 Hz Opus file (codec copy) and leaves
    bot.command("join", guild=guild.id, channel=guild.voice_channel_id)
    bot.wait_event("joined")
    assert emulator.bot_voice_channel(guild.id) == guild.voice_channel_id
    bot.command("play", guild=guild.id, path=tone_440_1s)
    started = bot.wait_event("playing")["t"]
    finished = bot.wait_event("play_done", timeout=20)
    assert finished["error"] is None
    bot.command("leave", guild=guild.id)
    bot.wait_event("left")

    # THEN the emulator decrypted about 50 packets of a 440 Hz tone
    result = analyse(emulator.packets(guild.id, since=started))
    assert result.packet_count == pytest.approx(50, rel=0.10)
    assert result.dominant_hz == pytest.approx(440, rel=0.02)
    assert emulator.undecryptable_packets() == 0
    # AND it recorded the voice handshake and the bot leaving
    kinds = [e.kind for e in emulator.voice_events(guild.id)]
    assert kinds[:2] == ["identify", "select_protocol"]
    assert "speaking" in kinds
    history = emulator.bot_voice_history(guild.id)
    assert [h.channel_id for h in history] == [guild.voice_channel_id, None]
    assert emulator.bot_voice_channel(guild.id) is None
    # AND login went through the REST routes without unknown calls
    assert {r.path for r in emulator.requests()} >= {"/users/@me", "/oauth2/applications/@me"}
    assert emulator.unmatched_requests() == []


def test_silence_frames_at_the_end_of_a_track_are_recorded_but_left_out_by_default(
    emulator: DiscordEmulator,
    guild: GuildHandle,
    start_bot: Callable[..., MinimalBotProcess],
    tone_440_1s: Path,
) -> None:
    # GIVEN a bot that played a track to its end to a listener
    emulator.add_listener(guild.id, guild.voice_channel_id)
    bot = start_bot()
    bot.wait_event("ready")
    bot.command("join", guild=guild.id, channel=guild.voice_channel_id)
    bot.wait_event("joined")
    bot.command("play", guild=guild.id, path=tone_440_1s)
    bot.wait_event("play_done", timeout=20)

    # WHEN the packets are read with and without silence
    def silence() -> list[object]:
        return [p for p in emulator.packets(guild.id, include_silence=True) if p.is_silence]

    emulator.wait_for(lambda: len(silence()) >= 5, message="five silence frames")
    time.sleep(0.2)  # nothing more may follow them
    every = silence()

    # THEN the five trailing silence frames are only in the first list
    assert len(every) == 5
    assert not any(p.is_silence for p in emulator.packets(guild.id))
