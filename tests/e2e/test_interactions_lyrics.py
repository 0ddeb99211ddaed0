"""/lyrics over signed HTTP against the emulator and a loopback LRCLIB: the worker finds the current
track's lyrics (by signature, or by search when the video's intro changes its length), caches them,
and edits the ephemeral reply into the first page; ◀ ▶ are answered by the api from the cache. A
miss, an instrumental, nothing playing and an expired page each get their sentence. Every body
passes the emulator's spec checks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.commands import BY_NAME
from tests.support.emulator import DiscordEmulator
from tests.support.fake_lrclib import SIGNAL_LRC, FakeLrclib, record
from tests.support.signing import (
    APPLICATION_ID,
    GUILD_ID,
    USER_ID,
    SignedApi,
    command,
    component,
    next_interaction_id,
    signed_api,
)
from timmybot.lyrics import pages, service
from timmybot.models import Actual, QueueEntry, Track
from timmybot.store.keys import LYRICS_SK, lyrics_pk

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

EPHEMERAL = 64
VERSES = "\n\n".join("\n".join(f"Verse {v} line {n}: the signal keeps on going" for n in range(10)) for v in range(40))
RECORDS = [
    record(1, "Signal Song", "Test Signals", "Loopback Sessions", 180, plain="First line\nSecond line",
           synced=SIGNAL_LRC),
    record(2, "Drone In A", "Test Signals", "Loopback Sessions", 95, instrumental=True),
    record(3, "Endless Song", "Test Signals", "Loopback Sessions", 600, plain=VERSES),
]  # fmt: skip
ENDLESS_TOPIC = Track("youtube", "eNdLeSs0001", "Endless Song", "https://www.youtube.com/watch?v=eNdLeSs0001", 601,
                      None, "Test Signals - Topic")  # fmt: skip
SIGNAL_VIDEO = Track("youtube", "sIgNaLvId01", "Test Signals - Signal Song (Official Music Video)",
                     "https://www.youtube.com/watch?v=sIgNaLvId01", 197, None, "TestSignalsVEVO")  # fmt: skip


@dataclass
class LyricsWorld:
    emulator: DiscordEmulator
    lrclib: FakeLrclib
    api: SignedApi

    def play(self, track: Track) -> None:
        entry = QueueEntry("lyrics-entry", track, USER_ID, time.time())
        self.api.store.update_guild(
            GUILD_ID, lambda r: r.evolve(actual=Actual(now_playing=entry, started_at=time.time()))
        )

    def lyrics(self, **options: str) -> tuple[dict[str, Any], dict[str, Any]]:
        payload = command("lyrics", options, interaction_id=next_interaction_id())
        payload["token"] = f"token-{payload['id']}"
        answer = self.api.post(payload).json_body
        message = self.emulator.original_message(payload["token"])
        assert message is not None, "the worker never edited the reply"
        return answer, message

    def click(self, custom_id: str) -> dict[str, Any]:
        payload = component(custom_id, interaction_id=next_interaction_id())
        payload["token"] = f"token-{payload['id']}"
        return self.api.post(payload).json_body


@contextlib.contextmanager
def lyrics_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LyricsWorld]:
    with FakeLrclib(records=list(RECORDS)) as lrclib, DiscordEmulator(application_id=int(APPLICATION_ID)) as emu:
        monkeypatch.setenv("SSL_CERT_FILE", str(emu.ca_file))
        settings = {
            "dispatcher": "inline",
            "discord_api_base": emu.api_base,
            "discord_gateway_url": emu.gateway_url,
            "discord_bot_token": emu.bot_token,
            "launcher": "none",
            "lyrics_api_url": lrclib.url,
        }
        with signed_api(tmp_path, **settings) as api:
            yield LyricsWorld(emu, lrclib, api)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LyricsWorld]:
    with lyrics_world(tmp_path, monkeypatch) as built:
        yield built


def test_lyrics_is_registered_with_an_optional_query_and_its_own_rate() -> None:
    schema = BY_NAME["lyrics"].schema()
    assert [(o["name"], o.get("required", False)) for o in schema.get("options", [])] == [("query", False)]
    assert BY_NAME["lyrics"].rate == "lyrics"


def test_the_current_tracks_lyrics_are_found_by_signature_and_paged(world: LyricsWorld) -> None:
    # GIVEN a Topic upload playing whose length LRCLIB's record matches
    world.play(ENDLESS_TOPIC)
    # WHEN /lyrics is run without a query
    answer, message = world.lyrics()
    # THEN the api deferred ephemerally, and the worker found the lyrics by signature, one call
    assert answer == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert world.lrclib.paths() == ["/api/get"]
    embed = message["embeds"][0]
    assert embed["title"] == "Lyrics · Endless Song – Test Signals"
    assert embed["description"].startswith("Verse 0 line 0: the signal keeps on going")
    assert len(embed["description"]) <= 4096
    pages_total = int(embed["footer"]["text"].split("/")[1].split(" ")[0])
    assert pages_total >= 3
    previous, following = message["components"][0]["components"]
    assert previous["disabled"] and not following["disabled"]
    # WHEN ▶ is clicked THEN the same message shows page 2 (type 7), from the cache: LRCLIB hears nothing
    update = world.click(following["custom_id"])
    assert update["type"] == 7
    second = update["data"]["embeds"][0]
    assert second["footer"]["text"].startswith(f"Page 2/{pages_total}")
    assert second["description"] != embed["description"]
    assert world.lrclib.paths() == ["/api/get"]
    assert world.emulator.refused_bodies() == []


def test_a_video_with_an_intro_is_found_by_search_and_cached(world: LyricsWorld) -> None:
    world.play(SIGNAL_VIDEO)
    _, message = world.lyrics()
    assert message["embeds"][0]["description"] == "First line\nSecond line"
    assert "matched by search" in message["embeds"][0]["footer"]["text"]
    assert world.lrclib.paths() == ["/api/get", "/api/search"]
    cached = world.api.store.get_record(lyrics_pk(service.track_digest(SIGNAL_VIDEO)), LYRICS_SK)
    assert cached is not None and cached["lyrics"]["track_name"] == "Signal Song"
    # asked again: the cache answers
    world.lyrics()
    assert len(world.lrclib.requests) == 2


def test_a_miss_says_no_lyrics_found_with_the_hint(world: LyricsWorld) -> None:
    _, message = world.lyrics(query="Nobody - Unknown Song")
    # the user's own words, escaped (Discord shows "Nobody - Unknown Song")
    assert message["content"] == f"No lyrics found for Nobody \\- Unknown Song. {pages.HINT}"
    assert message["embeds"] == []
    assert world.emulator.refused_bodies() == []


def test_an_instrumental_says_so(world: LyricsWorld) -> None:
    _, message = world.lyrics(query="Test Signals - Drone In A")
    assert message["content"] == "🎼 **Drone In A – Test Signals** is an instrumental: it has no lyrics."


def test_nothing_playing_and_no_query_is_a_sentence(world: LyricsWorld) -> None:
    _, message = world.lyrics()
    assert message["content"] == "Nothing is playing. Name a song instead: `/lyrics query: Artist - Song`."
    assert world.lrclib.requests == []


def test_lrclib_down_is_a_sentence_and_is_not_cached(world: LyricsWorld) -> None:
    world.lrclib.mode = "failing"
    _, message = world.lyrics(query="Test Signals - Signal Song")
    assert "can't reach the lyrics service" in message["content"]
    world.lrclib.mode = "working"
    _, message = world.lyrics(query="Test Signals - Signal Song")
    assert message["embeds"][0]["title"] == "Lyrics · Signal Song – Test Signals"


def test_a_page_button_of_lyrics_no_longer_kept_says_so(world: LyricsWorld) -> None:
    answer = world.click(f"v1:lyrics:{'ab' * 16}:2")
    assert answer["type"] == 4
    assert answer["data"]["content"] == pages.EXPIRED and answer["data"]["flags"] == EPHEMERAL
