"""The ECS launcher against moto's ECS: the RunTask request, Spot fallback, failures, liveness.

moto (5.2.5) runs Fargate tasks straight to RUNNING and never reports capacity shortages, so the
shortage cases wrap the moto client and answer RunTask with ``failures[]`` the way ECS does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from timmybot.config import Settings
from timmybot.launcher import LaunchOutcome, build_launcher
from timmybot.launcher.ecs import NO_CAPACITY_TEXT, PERMISSIONS_TEXT, EcsClient, EcsLauncher
from timmybot.models import LeaseState
from timmybot.store import SQLiteStore, Store

REGION = "us-east-1"
CLUSTER = "timmybot-voice"
CONTAINER = "voice_task"
GUILD = "123456789012345678"
CAPACITY_FAILURE = {"arn": "", "reason": "Capacity is unavailable at this time. Please try again later."}


@dataclass
class EcsWorld:
    """A moto ECS cluster with a Fargate task definition in a public subnet."""

    client: Any
    task_definition: str
    subnet: str
    security_group: str

    def settings(self, tmp_path: Path, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "launcher": "ecs",
            "ecs_cluster": CLUSTER,
            "ecs_task_definition": self.task_definition,
            "ecs_subnets": (self.subnet,),
            "ecs_security_groups": (self.security_group,),
            "ecs_container_name": CONTAINER,
            "aws_region": REGION,
            "sqlite_path": str(tmp_path / "timmybot.sqlite3"),
            "data_dir": str(tmp_path),
        }
        values.update(overrides)
        return Settings(**values)

    def live_tasks(self) -> list[str]:
        arns = self.client.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
        return [str(a) for a in arns]

    def describe(self, arn: str) -> dict[str, Any]:
        task: dict[str, Any] = self.client.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
        return task


def make_ecs_world() -> EcsWorld:
    """Call inside ``mock_aws()``. The VPC needs DNS hostnames or moto's awsvpc RunTask fails."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="voice", Description="voice task", VpcId=vpc)["GroupId"]
    client = boto3.client("ecs", region_name=REGION)
    client.create_cluster(clusterName=CLUSTER)
    definition = client.register_task_definition(
        family="timmybot-voice",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": CONTAINER, "image": "timmybot/voice:test", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    return EcsWorld(client, definition, subnet, group)


class ShortageClient:
    """moto's ECS client, except RunTask reports a capacity failure for Spot (or for everything)."""

    def __init__(self, inner: Any, *, spot_fails: bool = True, on_demand_fails: bool = False) -> None:
        self.inner = inner
        self.spot_fails = spot_fails
        self.on_demand_fails = on_demand_fails
        self.requests: list[dict[str, Any]] = []

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs)
        spot = "capacityProviderStrategy" in kwargs
        if (spot and self.spot_fails) or (not spot and self.on_demand_fails):
            return {"tasks": [], "failures": [CAPACITY_FAILURE]}
        response: dict[str, Any] = self.inner.run_task(**kwargs)
        return response

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = self.inner.describe_tasks(**kwargs)
        return response


@pytest.fixture
def ecs() -> Iterator[EcsWorld]:
    with mock_aws():
        yield make_ecs_world()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    sqlite_store = SQLiteStore(tmp_path / "launcher.sqlite3")
    yield sqlite_store
    sqlite_store.close()


def launcher_for(
    ecs: EcsWorld, store: Store, tmp_path: Path, client: EcsClient | None = None, **settings: Any
) -> EcsLauncher:
    launcher = build_launcher(ecs.settings(tmp_path, **settings), store, client=client or ecs.client)
    assert isinstance(launcher, EcsLauncher)
    return launcher


def environment(task: dict[str, Any]) -> dict[str, str]:
    (override,) = task["overrides"]["containerOverrides"]
    assert override["name"] == CONTAINER
    return {pair["name"]: pair["value"] for pair in override["environment"]}


def test_run_task_starts_one_fargate_task_carrying_guild_and_generation(
    ecs: EcsWorld, store: Store, tmp_path: Path
) -> None:
    # GIVEN the on-demand ECS launcher
    launcher = launcher_for(ecs, store, tmp_path)
    # WHEN it ensures a task for the guild
    result = launcher.ensure_running(GUILD)
    # THEN one task runs, started by timmybot, on FARGATE, with only the guild and generation in its overrides
    assert result.outcome is LaunchOutcome.STARTED
    assert ecs.live_tasks() == [result.holder]
    assert result.holder is not None
    task = ecs.describe(result.holder)
    assert task["startedBy"] == "timmybot"
    assert task["launchType"] == "FARGATE"
    assert environment(task) == {"TIMMYBOT_GUILD_ID": GUILD, "TIMMYBOT_LEASE_GENERATION": str(result.generation)}
    # AND the lease is launching, held by the task's ARN, at that generation
    lease = store.get_guild(GUILD).lease
    assert (lease.state, lease.holder, lease.generation) == (LeaseState.LAUNCHING, result.holder, result.generation)


def test_request_uses_public_ip_and_never_carries_secrets(ecs: EcsWorld, store: Store, tmp_path: Path) -> None:
    launcher = launcher_for(ecs, store, tmp_path, discord_bot_token="bot-token-secret")
    request = launcher.run_task_request(GUILD, 7, spot=False)
    vpc = request["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc == {"subnets": [ecs.subnet], "securityGroups": [ecs.security_group], "assignPublicIp": "ENABLED"}
    assert "bot-token-secret" not in repr(request)


def test_spot_launch_uses_the_fargate_spot_capacity_provider(ecs: EcsWorld, store: Store, tmp_path: Path) -> None:
    launcher = launcher_for(ecs, store, tmp_path, ecs_use_spot=True)
    result = launcher.ensure_running(GUILD)
    assert result.outcome is LaunchOutcome.STARTED
    assert result.holder is not None
    assert ecs.describe(result.holder)["capacityProviderName"] == "FARGATE_SPOT"


def test_spot_capacity_failure_falls_back_to_on_demand_once(ecs: EcsWorld, store: Store, tmp_path: Path) -> None:
    # GIVEN Spot has no capacity (RunTask answers failures[] without raising)
    client = ShortageClient(ecs.client, spot_fails=True)
    launcher = launcher_for(ecs, store, tmp_path, client=client, ecs_use_spot=True)
    # WHEN a task is needed
    result = launcher.ensure_running(GUILD)
    # THEN exactly two RunTask calls were made, Spot then on-demand, and the on-demand task runs
    assert [("capacityProviderStrategy" in r, r.get("launchType")) for r in client.requests] == [
        (True, None),
        (False, "FARGATE"),
    ]
    assert result.outcome is LaunchOutcome.STARTED
    assert ecs.live_tasks() == [result.holder]
    assert store.get_guild(GUILD).lease.holder == result.holder


def test_total_capacity_failure_frees_the_lease_and_says_so(ecs: EcsWorld, store: Store, tmp_path: Path) -> None:
    # GIVEN neither Spot nor on-demand has capacity
    client = ShortageClient(ecs.client, spot_fails=True, on_demand_fails=True)
    launcher = launcher_for(ecs, store, tmp_path, client=client, ecs_use_spot=True)
    # WHEN a task is needed
    result = launcher.ensure_running(GUILD)
    # THEN the launch failed with a sentence, nothing runs, and the lease is free for the next try
    assert result.outcome is LaunchOutcome.FAILED
    assert result.message == NO_CAPACITY_TEXT
    assert ecs.live_tasks() == []
    record = store.get_guild(GUILD)
    assert record.lease.state is LeaseState.RELEASED
    assert not record.lease.is_live(0)
    # AND once capacity is back the next call starts a task with a newer generation
    client.spot_fails = client.on_demand_fails = False
    retry = launcher.ensure_running(GUILD)
    assert retry.outcome is LaunchOutcome.STARTED
    assert retry.generation == record.lease.generation + 1


def test_a_refused_spot_request_also_falls_back(ecs: EcsWorld, store: Store, tmp_path: Path) -> None:
    class RefusingSpot(ShortageClient):
        def run_task(self, **kwargs: Any) -> dict[str, Any]:
            if "capacityProviderStrategy" in kwargs:
                self.requests.append(kwargs)
                raise ClientError({"Error": {"Code": "InvalidParameterException", "Message": "no"}}, "RunTask")
            return super().run_task(**kwargs)

    client = RefusingSpot(ecs.client, spot_fails=False)
    result = launcher_for(ecs, store, tmp_path, client=client, ecs_use_spot=True).ensure_running(GUILD)
    assert result.outcome is LaunchOutcome.STARTED
    assert len(client.requests) == 2


def test_is_alive_follows_the_task_status(ecs: EcsWorld, store: Store, tmp_path: Path) -> None:
    launcher = launcher_for(ecs, store, tmp_path)
    result = launcher.ensure_running(GUILD)
    assert result.holder is not None
    assert launcher.is_alive(result.holder) is True
    ecs.client.stop_task(cluster=CLUSTER, task=result.holder, reason="test")
    assert launcher.is_alive(result.holder) is False
    assert launcher.is_alive("pid:123") is None


def test_access_denied_says_the_operator_must_fix_permissions_and_counts_it(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN moto enforcing IAM, and a worker whose credentials may describe tasks but not run them
    monkeypatch.setenv("TIMMYBOT_METRICS", "log")
    caplog.set_level("INFO", logger="timmybot.metrics")
    with mock_aws():
        world = make_ecs_world()
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="worker")
        iam.put_user_policy(
            UserName="worker",
            PolicyName="no-run-task",
            PolicyDocument=(
                '{"Version": "2012-10-17", "Statement": '
                '[{"Effect": "Allow", "Action": "ecs:DescribeTasks", "Resource": "*"}]}'
            ),
        )
        key = iam.create_access_key(UserName="worker")["AccessKey"]

        @set_initial_no_auth_action_count(0)
        def launch() -> Any:
            denied = boto3.client(
                "ecs",
                region_name=REGION,
                aws_access_key_id=key["AccessKeyId"],
                aws_secret_access_key=key["SecretAccessKey"],
            )
            return launcher_for(world, store, tmp_path, client=denied, ecs_use_spot=True).ensure_running(GUILD)

        # WHEN a task is needed
        result = launch()
        live = world.live_tasks()
    # THEN the user reads that the operator must fix the player's permissions, not "no capacity"
    assert result.outcome is LaunchOutcome.FAILED
    assert result.message == PERMISSIONS_TEXT
    assert "operator must fix the player's permissions" in result.message
    assert result.message != NO_CAPACITY_TEXT
    assert live == []
    # AND the lease is free, and the refusal is counted with its reason (no on-demand retry was made)
    assert store.get_guild(GUILD).lease.state is LeaseState.RELEASED
    metric_lines = [r.getMessage() for r in caplog.records if r.name == "timmybot.metrics"]
    assert metric_lines == ["metric=LaunchesRefused value=1 reason=access_denied"]
