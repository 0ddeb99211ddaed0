"""/history over signed HTTP against the emulator: the guild's history as a menu, and a pick queued
by the real /play worker with the menu's placement; stale and forged picks queue nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.commands.history import entry_digest
from tests.e2e.test_play_flow import PlayWorld, play_world
from tests.support.media import MediaServer, tone_file
from tests.support.signing import EPHEMERAL, GUILD_ID, OTHER_USER_ID, command, component, track_entry
from timmybot.discord import custom_ids
from timmybot.models import QueueEntry
from timmybot.sources import resolve_query


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.add("tone 440.webm", tone_file(440, 2, "webm"))
        yield server


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlayWorld]:
    with play_world(tmp_path, monkeypatch) as built:
        yield built


def _played(world: PlayWorld, media: MediaServer) -> list[QueueEntry]:
    """Two tracks the voice task noted in the guild's history (the tone, then a later one)."""
    tone = resolve_query(media.url_for("tone 440.webm"), world.api.services.sources)[0]
    first = QueueEntry("h-tone", tone, OTHER_USER_ID, 1.0)
    later = track_entry("h-later", title="Later Song", requester_id=OTHER_USER_ID)
    world.api.store.record_played(GUILD_ID, first, now=1.0, seq=0)
    world.api.store.record_played(GUILD_ID, later, now=2.0, seq=1)
    return [later, first]


def _pick(world: PlayWorld, placement: str, value: str) -> dict[str, Any]:
    payload = component(custom_ids.build(custom_ids.GuildHistoryPickId(placement)))
    payload["data"] = {"custom_id": payload["data"]["custom_id"], "component_type": 3, "values": [value]}
    payload["channel_id"] = str(world.text_id)
    payload["token"] = f"token-{payload['id']}"
    body: dict[str, Any] = world.api.post(payload).json_body
    body["token"] = payload["token"]
    return body


def test_history_lists_the_guilds_tracks_newest_first_in_a_menu(world: PlayWorld, media: MediaServer) -> None:
    later, first = _played(world, media)
    body = world.api.post(command("history", {"placement": "next"})).json_body
    data = body["data"]
    assert data["flags"] == EPHEMERAL
    assert data["content"].splitlines()[1].startswith("`1.` Later Song")
    select = data["components"][0]["components"][0]
    assert select["custom_id"] == "v1:ghist:pick:next"
    assert [o["value"] for o in select["options"]] == [f"0:{entry_digest(later)}", f"1:{entry_digest(first)}"]


def test_a_pick_is_queued_by_the_worker_with_the_menus_placement(world: PlayWorld, media: MediaServer) -> None:
    _, first = _played(world, media)
    body = _pick(world, "end", f"1:{entry_digest(first)}")
    assert body["type"] == 5  # deferred: the worker edits it
    queue = world.api.store.get_guild(GUILD_ID).queue
    queued = world.api.store.get_entries(GUILD_ID, queue)
    assert [e.title for e in queued] == [first.title]
    assert "Added to the queue" in str(world.original(body["token"])["embeds"][0]["description"])


def test_a_stale_or_forged_pick_queues_nothing(world: PlayWorld, media: MediaServer) -> None:
    _, first = _played(world, media)
    stale = _pick(world, "end", f"0:{entry_digest(first)}")  # the index moved on
    assert stale["data"]["content"] == "That track is no longer in this server's history. Run /history again."
    forged = _pick(world, "end", "0:zzzz")
    assert forged["data"]["flags"] == EPHEMERAL
    assert world.api.store.get_guild(GUILD_ID).queue == ()


def test_an_empty_history_says_so(world: PlayWorld) -> None:
    body = world.api.post(command("history")).json_body
    assert body["data"]["content"] == "Nothing has played in this server yet."
