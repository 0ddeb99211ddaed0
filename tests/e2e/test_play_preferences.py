"""/play applies the requester's preferences: their platform is searched first (the fakes see the
order), a session they start takes their auto-queue setting, and their ping and quality travel
with the entries they queue. Users without preferences keep the operator's order and the guild's
own /autoplay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.e2e.test_play_flow import PlayWorld, play_world
from tests.support.media import MediaServer, tone_file
from tests.support.signing import GUILD_ID, OTHER_USER_ID, USER_ID, command, next_interaction_id
from tests.support.sources import ENV_CONFIG, write_config
from timmybot import preferences
from timmybot.preferences import Quality

CHAIN = ("tests.support.sources:loopback_as_youtube", "tests.support.sources:loopback_as_soundcloud")


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Both sites have a song matching "signal song"; each call is written to ``calls``."""
    with MediaServer() as youtube, MediaServer() as soundcloud:
        youtube.add("yt.webm", tone_file(440, 2, "webm"))
        soundcloud.add("sc.webm", tone_file(660, 2, "webm"))
        calls = tmp_path / "calls.txt"
        config = write_config(tmp_path / "sites.json", {
            "ytfake": {"base_url": youtube.base_url, "calls_file": str(calls), "tracks": [
                {"file": "yt.webm", "title": "Signal Song", "artist": "Tones", "duration_s": 2}]},
            "scfake": {"base_url": soundcloud.base_url, "calls_file": str(calls), "tracks": [
                {"file": "sc.webm", "title": "Signal Song", "artist": "Tones", "duration_s": 2}]},
        })  # fmt: skip
        monkeypatch.setenv(ENV_CONFIG, str(config))
        yield calls


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Path) -> Iterator[PlayWorld]:
    with play_world(tmp_path, monkeypatch, source_chain=CHAIN) as built:
        yield built


def _queued_sources(world: PlayWorld) -> list[str]:
    store = world.api.store
    return [entry.track.source for entry in store.get_entries(GUILD_ID, store.get_guild(GUILD_ID).queue)]


def test_the_preferred_platform_is_searched_first_and_others_keep_the_operators_order(
    world: PlayWorld, calls: Path
) -> None:
    # GIVEN USER prefers SoundCloud; OTHER_USER has no preferences
    preferences.save(world.api.store, USER_ID, lambda p: replace(p, platform="soundcloud"), now=time.time())
    world.join_voice(OTHER_USER_ID)

    # WHEN each searches the same words with /play
    world.play("signal song")
    first_calls = calls.read_text().splitlines()
    world.play("signal song", user_id=OTHER_USER_ID)

    # THEN USER's search went to SoundCloud first, OTHER_USER's to YouTube, as the operator orders them
    assert first_calls == ["soundcloud search"]
    assert calls.read_text().splitlines()[1:] == ["youtube search"]
    assert _queued_sources(world) == ["soundcloud", "youtube"]


def test_a_session_takes_its_starters_auto_queue_setting_and_their_ping_and_quality_ride_with_their_tracks(
    world: PlayWorld,
) -> None:
    # GIVEN USER saved auto-queue on, pings on and data-saver
    store = world.api.store
    preferences.save(store, USER_ID, lambda p: replace(p, notify=True, quality=Quality.DATA_SAVER),
                     now=time.time())  # fmt: skip

    # WHEN they start a session with /play
    world.play("signal song")

    # THEN autoplay is on for it, and their entry carries the ping and the quality
    assert store.get_guild(GUILD_ID).desired.autoplay is True
    [entry] = store.get_entries(GUILD_ID, store.get_guild(GUILD_ID).queue)
    assert (entry.notify, entry.quality) == (True, "data-saver")


def test_auto_queue_off_turns_autoplay_off_for_the_session_they_start(world: PlayWorld) -> None:
    store = world.api.store
    store.set_autoplay(GUILD_ID, True)  # left on by an earlier session
    preferences.save(store, USER_ID, lambda p: replace(p, autoplay=False), now=time.time())

    world.play("signal song")

    assert store.get_guild(GUILD_ID).desired.autoplay is False


def test_without_preferences_the_guilds_autoplay_and_the_plain_entry_stay(world: PlayWorld) -> None:
    store = world.api.store

    world.play("signal song")

    assert store.get_guild(GUILD_ID).desired.autoplay is False
    [entry] = store.get_entries(GUILD_ID, store.get_guild(GUILD_ID).queue)
    assert (entry.notify, entry.quality) == (False, "")


def test_search_lists_the_preferred_platforms_results_for_that_user(world: PlayWorld, calls: Path) -> None:
    # GIVEN USER prefers SoundCloud
    preferences.save(world.api.store, USER_ID, lambda p: replace(p, platform="soundcloud"), now=time.time())

    # WHEN they /search
    payload = command("search", {"query": "signal song"}, interaction_id=next_interaction_id())
    payload["channel_id"] = str(world.text_id)
    payload["token"] = f"token-{payload['id']}"
    world.api.post(payload)

    # THEN SoundCloud was asked first and its result is what the menu offers
    assert calls.read_text().splitlines() == ["soundcloud search"]
    menu = world.original(payload["token"])
    [option] = menu["components"][0]["components"][0]["options"]
    assert "Signal Song" in option["label"]
