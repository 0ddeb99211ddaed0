"""Ten members /play at once in one guild: all ten tracks are queued and exactly one task launches.

Proved twice: with the ECS launcher on moto (tasks counted with ListTasks) and with the local
launcher running the stand-in voice task (launches counted from its log).

The concurrent requests go straight to the app's interactions handler with its installed
services: ``chalice.test.Client`` swaps ``os.environ`` for a dict copy around each request, which is
not thread-safe (two overlapping requests can leave the copy installed for good, detached from the
process environment).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.interactions import handle_interaction
from tests.contract.test_launcher_ecs import make_ecs_world
from tests.e2e.test_play_flow import PlayWorld, play_world
from tests.support.media import MediaServer, tone_file
from tests.support.signing import GUILD_ID
from timmybot.models import LeaseState

PLAYERS = 10


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.add("tone.webm", tone_file(440, 2, "webm"))
        yield server


def play_concurrently(world: PlayWorld, url: str) -> list[dict[str, Any]]:
    payloads = [world.play_payload(url) for _ in range(PLAYERS)]
    barrier = threading.Barrier(PLAYERS)
    bodies: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def post(payload: dict[str, Any]) -> None:
        barrier.wait()
        raw = json.dumps(payload).encode()
        try:
            result = handle_interaction(world.api.services, world.api.signer.headers(raw), raw)
            body = dict(result.body)
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)
            return
        with lock:
            bodies.append(body)

    threads = [threading.Thread(target=post, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert isinstance(os.environ, os._Environ)
    starting = [p for p in payloads if (world.original(p["token"]) or {}).get("content") == "Starting the player…"]
    assert len(starting) == 1, "exactly one reply says the player is starting"
    return bodies


def assert_all_queued(world: PlayWorld, bodies: list[dict[str, Any]]) -> None:
    assert bodies == [{"type": 5}] * PLAYERS
    record = world.api.store.get_guild(GUILD_ID)
    assert len(record.queue) == PLAYERS
    assert len(set(record.queue)) == PLAYERS


def test_ten_concurrent_plays_launch_one_local_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media: MediaServer
) -> None:
    with play_world(tmp_path, monkeypatch, dispatcher="inline") as world:
        bodies = play_concurrently(world, media.url_for("tone.webm"))
        assert_all_queued(world, bodies)
        world.api.services.launcher.wait_children(30)  # type: ignore[attr-defined]
        launches = world.launches()
        assert len(launches) == 1
        assert launches[0][2] == "claimed"


def test_ten_concurrent_plays_launch_one_ecs_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media: MediaServer
) -> None:
    with mock_aws():
        ecs = make_ecs_world()
        ecs_settings = ecs.settings(tmp_path)
        overrides = {
            name: getattr(ecs_settings, name)
            for name in ("launcher", "ecs_cluster", "ecs_task_definition", "ecs_subnets", "ecs_security_groups")
        }
        with play_world(tmp_path, monkeypatch, dispatcher="inline", **overrides) as world:
            bodies = play_concurrently(world, media.url_for("tone.webm"))
            assert_all_queued(world, bodies)
            assert len(ecs.live_tasks()) == 1
            lease = world.api.store.get_guild(GUILD_ID).lease
            assert lease.state is LeaseState.LAUNCHING
            assert lease.holder == ecs.live_tasks()[0]


def test_ten_concurrent_plays_through_the_thread_dispatcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media: MediaServer
) -> None:
    with play_world(tmp_path, monkeypatch, dispatcher="thread") as world:
        payloads = [world.play_payload(media.url_for("tone.webm")) for _ in range(PLAYERS)]
        bodies = [world.api.post(p).json_body for p in payloads]
        assert world.api.services.dispatcher.drain(60)  # type: ignore[attr-defined]
        assert_all_queued(world, bodies)
        world.api.services.launcher.wait_children(30)  # type: ignore[attr-defined]
        assert len(world.launches()) == 1
