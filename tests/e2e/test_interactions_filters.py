"""GIVEN a guild WHEN /filter, /speed and /pitch arrive as signed interactions THEN the desired filters follow.

Every reply goes through the emulator-free Chalice test client; the bodies are the replies the
playback commands already send (a channel message, or an ephemeral sentence for a mistake).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.signing import GUILD_ID, OTHER_USER_ID, USER_ID, SignedApi, command, seed_playing, signed_api
from timmybot.filters import FilterPreset, Filters
from timmybot.models import GuildRecord

EPHEMERAL = 64


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SignedApi]:
    with signed_api(tmp_path) as signed:
        yield signed


def _record(api: SignedApi) -> GuildRecord:
    return api.store.get_guild(GUILD_ID)


def _content(body: dict) -> str:  # type: ignore[type-arg]
    return str(body["data"].get("content", ""))


def _is_private(body: dict) -> bool:  # type: ignore[type-arg]
    return bool(body["type"] == 4 and body["data"].get("flags") == EPHEMERAL)


def test_filter_while_playing_sets_the_preset_and_names_it(api: SignedApi) -> None:
    seed_playing(api.store)
    body = api.post(command("filter", {"preset": "nightcore"})).json_body
    assert not _is_private(body)
    assert "**Nightcore**" in _content(body) and "will apply" not in _content(body)
    assert _record(api).desired.filters == Filters(FilterPreset.NIGHTCORE)


def test_filter_while_nothing_plays_is_stored_for_the_next_track(api: SignedApi) -> None:
    body = api.post(command("filter", {"preset": "bass_high"})).json_body
    assert "It will apply when music plays." in _content(body)
    assert _record(api).desired.filter is FilterPreset.BASS_HIGH


def test_speed_and_pitch_combine_with_the_preset_and_off_resets_all_three(api: SignedApi) -> None:
    seed_playing(api.store)
    api.post(command("filter", {"preset": "karaoke"}))
    speed = api.post(command("speed", {"value": 1.5})).json_body
    pitch = api.post(command("pitch", {"semitones": -3})).json_body
    assert "1.5×" in _content(speed)
    assert "-3 semitones" in _content(pitch) and "Karaoke · 1.5× speed · -3 semitones" in _content(pitch)
    assert _record(api).desired.filters == Filters(FilterPreset.KARAOKE, 1.5, -3)

    off = api.post(command("filter", {"preset": "off"})).json_body
    assert "turned the filters off" in _content(off)
    assert _record(api).desired.filters == Filters()


def test_a_whole_number_speed_is_taken_as_a_number(api: SignedApi) -> None:
    api.post(command("speed", {"value": 2}))
    assert _record(api).desired.speed == 2.0


@pytest.mark.parametrize(
    ("payload", "sentence"),
    [
        (command("speed", {"value": 2.5}), "Speed must be between 0.5 and 2"),
        (command("speed", {"value": 0.1}), "Speed must be between 0.5 and 2"),
        (command("pitch", {"semitones": 13}), "Pitch must be between -12 and +12"),
        (command("filter", {"preset": "chipmunk"}), "There is no filter called `chipmunk`"),
    ],
    ids=["speed-high", "speed-low", "pitch-high", "unknown-preset"],
)
def test_out_of_range_values_get_a_private_sentence_and_change_nothing(
    api: SignedApi,
    payload: dict,  # type: ignore[type-arg]
    sentence: str,
) -> None:
    body = api.post(payload).json_body
    assert _is_private(body)
    assert sentence in _content(body)
    assert _record(api).desired.filters == Filters()


def test_a_member_outside_the_voice_channel_may_not_change_the_filters(api: SignedApi) -> None:
    seed_playing(api.store, listener_ids=[OTHER_USER_ID])
    body = api.post(command("filter", {"preset": "8d"}, user_id=USER_ID)).json_body
    assert _is_private(body)
    assert _record(api).desired.filters == Filters()
