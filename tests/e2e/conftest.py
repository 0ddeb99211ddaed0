"""Fixtures for end-to-end tests against the loopback Discord emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.media import MediaServer, tone_file
from tests.support.minimal_bot import MinimalBotProcess


@pytest.fixture
def emulator() -> Iterator[DiscordEmulator]:
    """A fresh emulator per test (start-up takes a few milliseconds)."""
    with DiscordEmulator() as emu:
        yield emu


@pytest.fixture
def guild(emulator: DiscordEmulator) -> GuildHandle:
    """A guild with a text channel, a voice channel and the bot as a member."""
    return emulator.add_guild("E2E Guild")


@pytest.fixture
def start_bot(emulator: DiscordEmulator) -> Iterator[Callable[..., MinimalBotProcess]]:
    """Start the minimal discord.py bot as a subprocess; it is stopped after the test."""
    bots: list[MinimalBotProcess] = []

    def start(**env: str) -> MinimalBotProcess:
        bot = MinimalBotProcess(emulator, env=env).start()
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.stop()


@pytest.fixture(scope="session")
def tone_440() -> Path:
    return tone_file(440, 3, "webm")


@pytest.fixture(scope="session")
def tone_440_1s() -> Path:
    """A one-second tone (50 Opus frames), for emulator tests that need a second of audio."""
    return tone_file(440, 1, "webm")


@pytest.fixture
def media_server() -> Iterator[MediaServer]:
    with MediaServer() as server:
        yield server
