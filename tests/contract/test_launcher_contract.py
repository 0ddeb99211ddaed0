"""The Launcher contract, run against every adapter: at most one live voice task per guild.

The local adapter runs a stand-in task (``tests/support/fake_voice_task.py``: claim the lease,
note the launch, exit); the ECS adapter runs on moto, over the SQLite store and the DynamoDB one.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.contract.test_launcher_ecs import EcsWorld, make_ecs_world
from tests.support import fake_voice_task
from timmybot.config import Settings
from timmybot.launcher import Launcher, LaunchOutcome, LaunchResult, build_launcher
from timmybot.launcher.local import LocalLauncher
from timmybot.models import LeaseState
from timmybot.store import DynamoDBStore, SQLiteStore, Store
from timmybot.store.schema import create_dynamodb_table

GUILD = "123456789012345678"
OTHER_GUILD = "876543210987654321"
FAKE_TASK = Path(fake_voice_task.__file__).resolve()
CALLERS = 10


@dataclass
class Harness:
    launcher: Launcher
    store: Store
    live_tasks: Callable[[str], int]  # launched tasks of a guild, once launches have settled
    settle: Callable[[], None]


def local_harness(tmp_path: Path) -> Harness:
    settings = Settings(
        launcher="local",
        voice_task_command=(sys.executable, str(FAKE_TASK)),
        sqlite_path=str(tmp_path / "timmybot.sqlite3"),
        data_dir=str(tmp_path),
    )
    store = SQLiteStore(settings.sqlite_path)
    launcher = build_launcher(settings, store)
    assert isinstance(launcher, LocalLauncher)

    def settle() -> None:
        assert launcher.wait_children(timeout=30), "a stand-in voice task did not exit"

    def live(guild_id: str) -> int:
        return sum(
            1 for guild, _, outcome in fake_voice_task.launches(tmp_path) if guild == guild_id and outcome == "claimed"
        )

    return Harness(launcher, store, live, settle)


def ecs_harness(tmp_path: Path, world: EcsWorld, store: Store) -> Harness:
    launcher = build_launcher(world.settings(tmp_path), store, client=world.client)

    def live(guild_id: str) -> int:
        tasks = [world.describe(arn) for arn in world.live_tasks()]
        return sum(
            1
            for t in tasks
            if any(e["value"] == guild_id for o in t["overrides"]["containerOverrides"] for e in o["environment"])
        )

    return Harness(launcher, store, live, lambda: None)


@pytest.fixture(params=["local-sqlite", "ecs-sqlite", "ecs-dynamodb"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "local-sqlite":
        yield local_harness(tmp_path)
        return
    with mock_aws():
        world = make_ecs_world()
        if request.param == "ecs-sqlite":
            store: Store = SQLiteStore(tmp_path / "timmybot.sqlite3")
        else:
            request.getfixturevalue("atomic_moto_writes")
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_dynamodb_table(client, "timmybot-launcher")
            store = DynamoDBStore("timmybot-launcher", client=client)
        yield ecs_harness(tmp_path, world, store)


def concurrently(count: int, action: Callable[[], LaunchResult]) -> list[LaunchResult]:
    barrier = threading.Barrier(count)
    results: list[LaunchResult] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            result = action()
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_concurrent_calls_start_exactly_one_task(harness: Harness) -> None:
    # GIVEN no task for the guild
    # WHEN ten callers ask for one at the same moment
    results = concurrently(CALLERS, lambda: harness.launcher.ensure_running(GUILD))
    harness.settle()
    # THEN exactly one started a task, the others found it launching, and one task is live
    outcomes = sorted(r.outcome for r in results)
    assert outcomes.count(LaunchOutcome.STARTED) == 1
    assert outcomes.count(LaunchOutcome.ALREADY_RUNNING) == CALLERS - 1
    assert harness.live_tasks(GUILD) == 1


def test_a_call_while_the_task_runs_only_finds_it(harness: Harness) -> None:
    first = harness.launcher.ensure_running(GUILD)
    harness.settle()
    second = harness.launcher.ensure_running(GUILD)
    harness.settle()
    assert (first.outcome, second.outcome) == (LaunchOutcome.STARTED, LaunchOutcome.ALREADY_RUNNING)
    assert harness.live_tasks(GUILD) == 1


def test_guilds_get_their_own_tasks(harness: Harness) -> None:
    results = [harness.launcher.ensure_running(g) for g in (GUILD, OTHER_GUILD)]
    harness.settle()
    assert [r.outcome for r in results] == [LaunchOutcome.STARTED, LaunchOutcome.STARTED]
    assert (harness.live_tasks(GUILD), harness.live_tasks(OTHER_GUILD)) == (1, 1)


def test_a_released_lease_lets_the_next_call_start_a_newer_generation(harness: Harness) -> None:
    # GIVEN a task started and later exited, releasing its lease
    first = harness.launcher.ensure_running(GUILD)
    harness.settle()
    assert first.generation is not None
    assert harness.store.release_lease(GUILD, generation=first.generation)
    # WHEN music is asked for again
    second = harness.launcher.ensure_running(GUILD)
    harness.settle()
    # THEN a new task starts with the next generation, and the lease names its holder
    assert second.outcome is LaunchOutcome.STARTED
    assert second.generation == first.generation + 1
    lease = harness.store.get_guild(GUILD).lease
    assert lease.generation == second.generation
    assert lease.state in (LeaseState.LAUNCHING, LeaseState.RUNNING)
    assert lease.holder not in (None, "launcher")
