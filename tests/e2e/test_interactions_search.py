"""/search over signed HTTP against the emulator and a loopback "YouTube": the worker finds up to ten
results, ranks them and edits the reply into an owner-only menu whose state is in the store; a
pick is queued by the real /play worker. Another user's pick, an expired menu, a forged value and
a pick after the api restarts are covered here; the last test hears a pick on the voice server."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.commands import BY_NAME
from chalicelib.commands import search as search_command
from tests.e2e.test_play_flow import FAKE_TASK
from tests.support.audio import analyse
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.media import MediaServer, tone_file
from tests.support.signing import (
    APPLICATION_ID,
    EPHEMERAL,
    GUILD_ID,
    MANAGE_GUILD,
    OTHER_USER_ID,
    USER_ID,
    SignedApi,
    command,
    component,
    next_interaction_id,
    signed_api,
)
from tests.support.sources import ENV_CONFIG, write_config
from timmybot.store.keys import SEARCH_MENU_SK, user_pk
from timmybot.worker import search as searching

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CHAIN = ("tests.support.sources:loopback_youtube",)
#: What the loopback "YouTube" has for "signal song", in its own order: the art track is third.
CATALOG = [
    {"file": "spedup.webm", "title": "Signal Song (sped up)", "artist": "Speedy Edits", "duration_s": 3},
    {"file": "live.webm", "title": "Signal Song (Live at the Lab)", "artist": "Test Signals", "duration_s": 3},
    {"file": "topic.webm", "title": "Signal Song", "artist": "Test Signals - Topic", "duration_s": 3},
    {"file": "cover.webm", "title": "Signal Song (acoustic cover)", "artist": "Kim Covers", "duration_s": 3},
]
TONES = {"spedup.webm": 880, "live.webm": 550, "topic.webm": 440, "cover.webm": 660}


@dataclass
class SearchWorld:
    emulator: DiscordEmulator
    guild: GuildHandle
    api: SignedApi
    settings: dict[str, Any]

    def search(self, query: str, *, user_id: str = USER_ID, **options: str) -> tuple[dict[str, Any], str]:
        payload = command("search", {"query": query, **options}, user_id=user_id, interaction_id=next_interaction_id())
        payload["channel_id"] = str(self.guild.text_channel_id)
        payload["token"] = f"token-{payload['id']}"
        return self.api.post(payload).json_body, payload["token"]

    def menu(self, token: str) -> dict[str, Any]:
        message = self.emulator.original_message(token)
        assert message is not None, "the worker never edited the reply"
        components = message.get("components") or []
        assert components, message.get("content")
        select: dict[str, Any] = components[0]["components"][0]
        return select

    def pick(
        self, custom_id: str, value: str, *, user_id: str = USER_ID, api: SignedApi | None = None
    ) -> tuple[dict[str, Any], str]:
        payload = component(custom_id, user_id=user_id, interaction_id=next_interaction_id())
        payload["data"] = {"custom_id": custom_id, "component_type": 3, "values": [value]}
        payload["channel_id"] = str(self.guild.text_channel_id)
        payload["token"] = f"token-{payload['id']}"
        return (api or self.api).post(payload).json_body, payload["token"]

    def queued_titles(self) -> list[str]:
        store = self.api.store
        return [e.title for e in store.get_entries(GUILD_ID, store.get_guild(GUILD_ID).queue)]


@contextlib.contextmanager
def search_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Iterator[SearchWorld]:
    with MediaServer() as media, DiscordEmulator(application_id=int(APPLICATION_ID)) as emulator:
        for name, hz in TONES.items():
            media.add(name, tone_file(hz, 4, "webm"))
        config = write_config(tmp_path / "sites.json", {"ytfake": {"base_url": media.base_url, "tracks": CATALOG}})
        monkeypatch.setenv(ENV_CONFIG, str(config))
        monkeypatch.setenv("SSL_CERT_FILE", str(emulator.ca_file))
        guild = emulator.add_guild("Search Guild", guild_id=int(GUILD_ID))
        for name, user in (("alice", USER_ID), ("bob", OTHER_USER_ID)):
            emulator.add_member(guild.id, name, user_id=int(user))
        emulator.set_member_voice(guild.id, int(USER_ID), guild.voice_channel_id)
        settings: dict[str, Any] = {
            "dispatcher": "inline",
            "discord_api_base": emulator.api_base,
            "discord_gateway_url": emulator.gateway_url,
            "discord_bot_token": emulator.bot_token,
            "launcher": "local",
            "voice_task_command": (sys.executable, FAKE_TASK),
            "allow_local_media": True,
            "source_chain": CHAIN,
        }
        settings.update(overrides)
        with signed_api(tmp_path, **settings) as api:
            try:
                yield SearchWorld(emulator, guild, api, settings)
            finally:
                api.store.stop(GUILD_ID)
                wait = getattr(api.services.launcher, "wait_children", None)
                if wait is not None:
                    wait(30)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SearchWorld]:
    with search_world(tmp_path, monkeypatch) as built:
        yield built


def test_search_is_registered_with_its_options_and_its_own_rate() -> None:
    schema = BY_NAME["search"].schema()
    assert [o["name"] for o in schema.get("options", [])] == ["query", "placement", "source"]
    assert BY_NAME["search"].rate == "search"
    assert search_command.SOURCES == searching.SEARCH_SOURCES


def test_the_menu_lists_the_ranked_results_for_its_owner(world: SearchWorld) -> None:
    body, token = world.search("signal song", placement="next")
    assert body == {"type": 5, "data": {"flags": EPHEMERAL}}
    select = world.menu(token)
    assert select["custom_id"].startswith(f"v1:search:{USER_ID}:next:")
    labels = [o["label"] for o in select["options"]]
    assert labels[0] == "1. Signal Song"  # the Topic upload, third in the site's order
    assert labels[-1] in {"4. Signal Song (sped up)", "4. Signal Song (acoustic cover)"}
    assert all(len(o["label"]) <= 100 and len(o.get("description", "")) <= 100 for o in select["options"])
    assert len(select["options"]) <= 25 and len(select["custom_id"]) <= 100
    assert select["options"][0]["description"].startswith("Test Signals - Topic · 0:03")
    record = world.api.store.get_record(user_pk(USER_ID), SEARCH_MENU_SK)
    assert record is not None and len(record["items"]) == 4
    assert world.emulator.refused_bodies() == []


def test_a_pick_queues_the_result_as_play_would(world: SearchWorld) -> None:
    _, token = world.search("signal song")
    select = world.menu(token)
    body, pick_token = world.pick(select["custom_id"], select["options"][0]["value"])
    assert body["type"] == 5 and body["data"]["flags"] == EPHEMERAL
    assert world.queued_titles() == ["Signal Song"]
    original = world.emulator.original_message(pick_token)
    assert original is not None and "Added to the queue" in str(original["embeds"][0]["description"])


def test_another_users_pick_is_refused_with_a_sentence(world: SearchWorld) -> None:
    _, token = world.search("signal song")
    select = world.menu(token)
    body, _ = world.pick(select["custom_id"], select["options"][0]["value"], user_id=OTHER_USER_ID)
    assert body["data"] == {"content": searching.NOT_YOURS, "flags": EPHEMERAL, "allowed_mentions": {"parse": []}}
    assert world.queued_titles() == []


def test_an_expired_or_replaced_menu_says_so_and_a_forged_value_queues_nothing(world: SearchWorld) -> None:
    _, token = world.search("signal song")
    select = world.menu(token)
    key = (user_pk(USER_ID), SEARCH_MENU_SK)
    # the record outlives its 15 minutes: the store's own expiry, as after the token's life
    world.api.store.update_record(*key, lambda current: dict(current or {}), ttl_s=-1)
    body, _ = world.pick(select["custom_id"], select["options"][0]["value"])
    assert body["data"]["content"] == searching.EXPIRED
    # a newer search replaces the record: the older menu has expired too
    _, first = world.search("signal song")
    older = world.menu(first)
    _, second = world.search("signal")
    body, _ = world.pick(older["custom_id"], older["options"][0]["value"])
    assert body["data"]["content"] == searching.EXPIRED
    newer = world.menu(second)
    body, _ = world.pick(newer["custom_id"], "9:0123abcd")
    assert body["data"]["content"] == searching.STALE
    body, _ = world.pick(newer["custom_id"], "../../x")
    assert body["data"]["flags"] == EPHEMERAL and "no longer works" in body["data"]["content"]
    assert world.queued_titles() == []


def test_a_pick_after_the_api_restarts_still_works(world: SearchWorld, tmp_path: Path) -> None:
    _, token = world.search("signal song")
    select = world.menu(token)
    # a new api process: fresh services and app client over the same store, nothing in memory kept
    with signed_api(tmp_path, **world.settings) as restarted:
        assert restarted.services is not world.api.services
        body, _ = world.pick(select["custom_id"], select["options"][0]["value"], api=restarted)
        assert body["type"] == 5
        queue = restarted.store.get_guild(GUILD_ID).queue
        assert [e.title for e in restarted.store.get_entries(GUILD_ID, queue)] == ["Signal Song"]


def test_searching_a_link_or_nothing_found_gets_a_sentence(world: SearchWorld) -> None:
    body, _ = world.search("https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    assert body["data"]["content"] == search_command.LINK_GIVEN
    _, token = world.search("no such words anywhere")
    message = world.emulator.original_message(token)
    assert message is not None and message["content"] and not message.get("components")
    _, token = world.search("signal", source="soundcloud")
    message = world.emulator.original_message(token)
    assert message is not None and message["content"].startswith("I don't search SoundCloud here.")


def test_a_pick_is_heard_on_the_voice_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_task = {"voice_task_command": (sys.executable, "-m", "voice_task"), "voice_task_log_dir": str(tmp_path)}
    with search_world(tmp_path, monkeypatch, tick_s=0.1, **real_task) as world:
        listener = world.emulator.add_member(world.guild.id, "listener")
        world.emulator.set_member_voice(world.guild.id, listener, world.guild.voice_channel_id)
        _, token = world.search("signal song")
        select = world.menu(token)
        world.pick(select["custom_id"], select["options"][0]["value"])  # the Topic upload: 440 Hz
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(world.emulator.packets(world.guild.id, since=0)) < 10:
            time.sleep(0.05)
        start = time.monotonic()
        time.sleep(1.5)
        heard = analyse(world.emulator.packets(world.guild.id, since=start, until=time.monotonic())).dominant_hz
        assert heard is not None and abs(heard - 440) <= 440 * 0.03, heard


def test_when_only_djs_may_add_a_member_is_told_before_searching(world: SearchWorld) -> None:
    options = {"enabled": True, "adding": True}
    saved = world.api.post(command("settings", options, sub="dj only", permissions=MANAGE_GUILD)).json_body
    assert "Settings saved" in saved["data"]["content"]
    body, token = world.search("signal song")
    assert body["data"]["flags"] == EPHEMERAL and body["data"]["content"].startswith("DJ-only mode is on")
    assert world.emulator.original_message(token) is None  # nothing was dispatched
