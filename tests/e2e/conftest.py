"""Fixtures for end-to-end tests against the loopback Discord emulator."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.emulator.tls import shared_authority
from tests.support.media import MediaServer, tone_file
from tests.support.minimal_bot import MinimalBotProcess
from tests.support.signing import SignedApi, signed_api
from tests.support.voice_stack import VoiceStack
from tests.support.warm_start import WarmStarter


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
def start_bot(emulator: DiscordEmulator, warm_starter: WarmStarter) -> Iterator[Callable[..., MinimalBotProcess]]:
    """Start the minimal discord.py bot as a subprocess (forked warm when it can be); it is stopped
    after the test."""
    bots: list[MinimalBotProcess] = []

    def start(**env: str) -> MinimalBotProcess:
        bot = MinimalBotProcess(emulator, env=env, starter=warm_starter).start()
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


@pytest.fixture(scope="session")
def warm_starter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmStarter]:
    """Voice tasks forked from one process that imported the voice task once (``tests.support.warm_start``)."""
    starter = WarmStarter(tmp_path_factory.mktemp("warm-start"), shared_authority().pem)
    yield starter
    starter.close()


@pytest.fixture
def make_stack(
    emulator: DiscordEmulator, media_server: MediaServer, tmp_path: Path, warm_starter: WarmStarter
) -> Iterator[Callable[..., VoiceStack]]:
    """``make_stack(TIMMYBOT_X="1", ...)``: a voice stack on the test's emulator and media server, with
    those settings for its voice tasks; every stack made is closed after the test (its tasks stopped,
    its privacy codes checked)."""
    stacks: list[VoiceStack] = []

    def make(**settings: str) -> VoiceStack:
        voice_stack = VoiceStack(emulator, media_server, tmp_path, starter=warm_starter, **settings)
        stacks.append(voice_stack)
        return voice_stack

    yield make
    for voice_stack in reversed(stacks):
        voice_stack.close()


@pytest.fixture
def stack(make_stack: Callable[..., VoiceStack]) -> VoiceStack:
    """A voice stack with the default settings; a module that needs others overrides ``stack`` with
    ``make_stack(...)``."""
    return make_stack()


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., SignedApi]]:
    """``make_api(launcher="none", ...)``: the api app over HTTP (``chalice.test.Client``) with test
    settings on a SQLite file in ``tmp_path``; closed after the test."""
    with contextlib.ExitStack() as apis:
        yield lambda **overrides: apis.enter_context(signed_api(tmp_path, **overrides))


@pytest.fixture
def api(make_api: Callable[..., SignedApi]) -> SignedApi:
    """The api app with the default test settings."""
    return make_api()
