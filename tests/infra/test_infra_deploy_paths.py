"""scripts/deploy.py's failure paths and the image push, against moto and a recording `docker`.

GIVEN moto standing in for AWS (in process) and, for the image step, a fake `docker` on PATH that
      records every argv (and what it read on stdin) and answers 0
THEN  the build loads the image it tags, and that same tag (commit AND architecture) is pushed;
      --skip-image refuses a tag ECR does not have; ROLLBACK_COMPLETE, an empty allowlist and a
      missing ECS service-linked role stop the run with the documented sentence; deleting a failed
      stack lists what it retained, cleans it after a confirm, and a second create works;
      --check reports each first-deploy item; "unchanged" comes from the hash of the package.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from scripts import deploy
from timmybot.discord import permissions

REGION = "us-east-1"
ACCOUNT = "123456789012"
GUILD = "123456789012345678"

FAKE_DOCKER = """#!{python}
import json, sys
entry = {{"argv": sys.argv[1:]}}
if "--password-stdin" in sys.argv:
    entry["stdin"] = sys.stdin.read()
with open({log!r}, "a") as log:
    log.write(json.dumps(entry) + "\\n")
"""

# A stack shaped like ours where it matters here: a retained table and key, and an output.
SMALL_STACK = {
    "Resources": {
        "StateTable": {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        },
        "TokensKey": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "Properties": {"KeyPolicy": {}}},
    },
}


class MotoRunner(deploy.Runner):
    """A real run whose AWS clients are moto's; `docker` and the like run as real processes."""

    def __init__(self) -> None:
        super().__init__(dry_run=False)
        self.said: list[str] = []

    def say(self, text: str) -> None:
        self.said.append(text)

    def aws_client(self, service: str, region: str) -> Any:
        return boto3.client(service, region_name=region)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


@pytest.fixture
def docker_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `docker` (and `aws`, which preflight only looks for) first on PATH; the log of its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.jsonl"
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, log=str(log)))
    (bin_dir / "aws").write_text("#!/bin/sh\nexit 0\n")
    for tool in (docker, bin_dir / "aws"):
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


def _plan(tmp_path: Path, **overrides: Any) -> deploy.Plan:
    values: dict[str, Any] = {
        "stage": "dev",
        "region": REGION,
        "capacity": "x86-spot",
        "image_tag": "0123456789ab",
        "application_id": "1234567890123456789",
        "public_key": "ab" * 32,
        "workdir": tmp_path / "work",
    }
    values.update(overrides)
    return deploy.Plan(**values)


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _repository() -> str:
    ecr = boto3.client("ecr", region_name=REGION)
    uri: str = ecr.create_repository(repositoryName="timmybot-dev-voice")["repository"]["repositoryUri"]
    return uri


def _linked_role() -> None:
    boto3.client("iam", region_name=REGION).create_service_linked_role(AWSServiceName="ecs.amazonaws.com")


def _stack(name: str = "timmybot-dev", parameters: dict[str, str] | None = None) -> str:
    template = dict(SMALL_STACK)
    if parameters:
        template = {**SMALL_STACK, "Parameters": {k: {"Type": "String"} for k in parameters}}
    cfn = boto3.client("cloudformation", region_name=REGION)
    stack_id: str = cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
    )["StackId"]
    return stack_id


def _roll_back(stack_id: str) -> None:
    """moto never rolls a create back; put the stack where AWS leaves a failed first create."""
    from moto.cloudformation.models import cloudformation_backends  # noqa: PLC0415 - heavy; two tests need it

    cloudformation_backends[ACCOUNT][REGION].stacks[stack_id].status = "ROLLBACK_COMPLETE"


# ---------------------------------------------------------------------------------------------
# CI push
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("capacity", "arch"), [("x86-spot", "amd64"), ("arm64", "arm64")])
def test_the_build_loads_the_image_that_is_then_pushed(
    aws: None, docker_log: Path, tmp_path: Path, capacity: str, arch: str
) -> None:
    # GIVEN the stack's repository, without this commit's image
    uri = _repository()
    plan = _plan(tmp_path, capacity=capacity)
    # WHEN the image step runs
    assert deploy.step_image(plan, MotoRunner(), {"VoiceRepositoryUri": uri}) is True
    # THEN docker built with --load, for the capacity's platform, the tag <commit>-<arch>
    build, login, push = _calls(docker_log)
    image = f"{uri}:0123456789ab-{arch}"
    assert build["argv"][:3] == ["buildx", "build", "--load"]
    assert build["argv"][build["argv"].index("--platform") + 1] == f"linux/{arch}"
    assert build["argv"][build["argv"].index("-t") + 1] == image
    # AND logged in with the password on stdin only, and pushed exactly the image it loaded
    assert login["argv"][:4] == ["login", "--username", "AWS", "--password-stdin"]
    assert login["stdin"] and login["stdin"] not in json.dumps(login["argv"])
    assert push["argv"] == ["push", image]
    # AND the template gets that same tag
    assert f"ImageTag=0123456789ab-{arch}" in plan.overrides()


def test_an_image_already_in_ecr_for_this_commit_and_architecture_is_not_rebuilt(
    aws: None, docker_log: Path, tmp_path: Path
) -> None:
    uri = _repository()
    ecr = boto3.client("ecr", region_name=REGION)
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "layers": []}
    )
    ecr.put_image(repositoryName="timmybot-dev-voice", imageManifest=manifest, imageTag="0123456789ab-amd64")
    # the same commit on x86 is there; on ARM it is not (the old tag check ignored the architecture)
    deploy.step_image(_plan(tmp_path, capacity="x86"), MotoRunner(), {"VoiceRepositoryUri": uri})
    assert not docker_log.exists()
    deploy.step_image(_plan(tmp_path, capacity="arm64"), MotoRunner(), {"VoiceRepositoryUri": uri})
    assert [c["argv"][0] for c in _calls(docker_log)] == ["buildx", "login", "push"]


def test_skip_image_refuses_a_tag_ecr_does_not_have(aws: None, docker_log: Path, tmp_path: Path) -> None:
    uri = _repository()
    plan = _plan(tmp_path, skip_image=True)
    with pytest.raises(deploy.DeployError) as refused:
        deploy.step_image(plan, MotoRunner(), {"VoiceRepositoryUri": uri})
    assert str(refused.value) == deploy.missing_image_text(f"{uri}:0123456789ab-amd64")
    assert "run without --skip-image" in str(refused.value)
    with pytest.raises(deploy.DeployError, match="not in ECR"):
        deploy.step_image(plan, MotoRunner(), None)  # no stack, so no repository, so no image
    assert not docker_log.exists()


# ---------------------------------------------------------------------------------------------
# Preflight failures
# ---------------------------------------------------------------------------------------------


def test_preflight_stops_on_a_missing_service_linked_role(aws: None, docker_log: Path, tmp_path: Path) -> None:
    with pytest.raises(deploy.DeployError) as refused:
        deploy.step_preflight(_plan(tmp_path, allow_guilds=(GUILD,)), MotoRunner())
    assert str(refused.value) == deploy.SERVICE_LINKED_ROLE_TEXT
    assert "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com" in str(refused.value)
    _linked_role()
    runner = MotoRunner()
    deploy.step_preflight(_plan(tmp_path, allow_guilds=(GUILD,)), runner)
    assert "    AWSServiceRoleForECS: exists" in runner.said


def test_preflight_stops_on_an_empty_allowlist_naming_allow_guild(aws: None, docker_log: Path, tmp_path: Path) -> None:
    _linked_role()
    assert deploy.file_allowlist() == []  # the shipped file lists no guild
    with pytest.raises(deploy.DeployError) as refused:
        deploy.step_preflight(_plan(tmp_path), MotoRunner())
    assert str(refused.value) == deploy.EMPTY_ALLOWLIST_TEXT
    assert "--allow-guild ID" in str(refused.value)
    # a guild on the command line, all guilds, or the guilds an earlier deploy gave the stack: fine
    deploy.step_preflight(_plan(tmp_path, allow_guilds=(GUILD,)), MotoRunner())
    deploy.step_preflight(_plan(tmp_path, allow_all_guilds=True), MotoRunner())
    _stack(parameters={"AllowedGuilds": GUILD, "AllowAllGuilds": "false"})
    runner = MotoRunner()
    deploy.step_preflight(_plan(tmp_path), runner)
    assert "    allowlist: 1 guild(s)" in runner.said
    assert f"AllowedGuilds={GUILD}" in _plan(tmp_path, allow_guilds=(GUILD,)).overrides()


def test_rollback_complete_stops_with_the_documented_sentence(aws: None, docker_log: Path, tmp_path: Path) -> None:
    _linked_role()
    _roll_back(_stack())
    with pytest.raises(deploy.DeployError) as refused:
        deploy.step_preflight(_plan(tmp_path, allow_guilds=(GUILD,)), MotoRunner())
    assert str(refused.value) == deploy.rollback_complete_text("timmybot-dev")
    assert "--delete-failed-stack" in str(refused.value) and "describe-stack-events" in str(refused.value)


def test_a_failed_stack_is_deleted_after_a_confirm_its_leftovers_cleaned_and_a_second_create_works(
    aws: None, docker_log: Path, tmp_path: Path
) -> None:
    # GIVEN a first create that failed, leaving its retained table and key behind
    _linked_role()
    _roll_back(_stack())
    cfn = boto3.client("cloudformation", region_name=REGION)
    leftovers = {r["ResourceType"]: r["PhysicalResourceId"] for r in
                 cfn.describe_stack_resources(StackName="timmybot-dev")["StackResources"]}  # fmt: skip
    questions: list[str] = []

    def confirm(question: str) -> bool:
        questions.append(question)
        return True

    # WHEN deploy runs with --delete-failed-stack and every confirm is answered yes
    runner = MotoRunner()
    plan = _plan(tmp_path, allow_guilds=(GUILD,), delete_failed_stack=True, confirm=confirm)
    deploy.step_preflight(plan, runner)
    # THEN it asked first, deleted the stack, and listed what the stack retained
    assert questions[0] == "delete the failed stack timmybot-dev?"
    assert "    timmybot-dev: deleted" in runner.said
    assert f"      AWS::DynamoDB::Table {leftovers['AWS::DynamoDB::Table']}" in runner.said
    assert f"      AWS::KMS::Key {leftovers['AWS::KMS::Key']}" in runner.said
    assert any("--change-set-type IMPORT" in line for line in runner.said)  # the adopt alternative
    # AND the key's deletion is scheduled and the empty table is gone, so nothing stays billed
    key = boto3.client("kms", region_name=REGION).describe_key(KeyId=leftovers["AWS::KMS::Key"])["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"
    assert (
        leftovers["AWS::DynamoDB::Table"]
        not in boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"]
    )
    # AND a second create of the stack works
    _stack()
    assert cfn.describe_stacks(StackName="timmybot-dev")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_declined_confirm_deletes_nothing(aws: None, docker_log: Path, tmp_path: Path) -> None:
    _linked_role()
    _roll_back(_stack())
    plan = _plan(tmp_path, allow_guilds=(GUILD,), delete_failed_stack=True, confirm=lambda question: False)
    with pytest.raises(deploy.DeployError, match="nothing was deleted"):
        deploy.step_preflight(plan, MotoRunner())
    stack = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName="timmybot-dev")["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"


# ---------------------------------------------------------------------------------------------
# --check and "unchanged"
# ---------------------------------------------------------------------------------------------


def test_check_lists_each_first_deploy_item(
    aws: None, docker_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMMYBOT_DISCORD_BOT_TOKEN", "MTIz.not-a-real-bot-token")
    runner = MotoRunner()
    assert deploy.run_check(_plan(tmp_path), runner) == 1
    report = "\n".join(runner.said)
    assert f"[!!] ECS service-linked role: {deploy.SERVICE_LINKED_ROLE_TEXT}" in report
    assert f"[!!] allowlist: {deploy.EMPTY_ALLOWLIST_TEXT}" in report
    for item in ("credentials", "region", "stack state", "Discord application settings", "image tag"):
        assert f"[ok] {item}: " in report
    assert "not-a-real-bot-token" not in report
    _linked_role()
    runner = MotoRunner()
    assert deploy.run_check(_plan(tmp_path, allow_guilds=(GUILD,)), runner) == 0
    assert runner.said[-1] == "ready to deploy."


def _zip(path: Path, members: dict[str, bytes], date: tuple[int, int, int, int, int, int]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=date), data)


def test_unchanged_is_decided_from_the_hash_of_template_code_and_parameters(aws: None, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out, date in ((first, (2026, 1, 1, 0, 0, 0)), (second, (2026, 6, 1, 12, 0, 0))):
        out.mkdir()
        (out / "sam.yaml").write_text("Resources: {}\n")
        _zip(out / "deployment.zip", {"app.py": b"print('hi')\n"}, date)
    plan = _plan(tmp_path)
    # the same contents packaged at another time hash the same; a parameter or a byte of code does not
    digest = deploy.package_digest(first, plan.overrides())
    assert deploy.package_digest(second, plan.overrides()) == digest
    assert deploy.package_digest(first, _plan(tmp_path, alarm_email="ops@example.org").overrides()) != digest
    _zip(second / "deployment.zip", {"app.py": b"print('ho')\n"}, (2026, 1, 1, 0, 0, 0))
    assert deploy.package_digest(second, plan.overrides()) != digest
    # the recorded digest counts only for a settled stack
    runner = MotoRunner()
    assert deploy.deployed_digest(plan, runner) is None
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/timmybot/dev/deployed-digest", Value=digest, Type="String"
    )
    assert deploy.deployed_digest(plan, runner) is None  # no stack: deploy
    _stack()
    assert deploy.deployed_digest(plan, runner) == digest
    deploy.step_deploy(plan, runner, None, digest)
    assert runner.said == ["    unchanged: timmybot-dev already runs this template with these parameters"]


def test_the_install_url_carries_exactly_the_permissions_the_bot_checks() -> None:
    url = urlsplit(deploy.install_url("1234567890123456789"))
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "discord.com", "/oauth2/authorize")
    assert query["client_id"] == ["1234567890123456789"]
    assert query["scope"] == ["bot applications.commands"]
    needed = {p for p, _ in (*permissions.VOICE_REQUIREMENTS, *permissions.POST_REQUIREMENTS,
                             *permissions.THREAD_POST_REQUIREMENTS)}  # fmt: skip
    granted = int(query["permissions"][0])
    assert {p for p in permissions.Permission if granted & int(p)} == needed
    assert granted == 274881072128  # the number docs/DEPLOYMENT.md prints
    assert f"permissions={granted}" in (Path(deploy.ROOT) / "docs" / "DEPLOYMENT.md").read_text()


def test_the_guide_quotes_the_sentences_and_lists_what_check_verifies(
    aws: None, docker_log: Path, tmp_path: Path
) -> None:
    guide = (Path(deploy.ROOT) / "docs" / "DEPLOYMENT.md").read_text()
    flat = " ".join(line.removeprefix("> ") for line in guide.splitlines()).split()
    text = " ".join(flat)
    assert deploy.rollback_complete_text("timmybot-dev") in text
    assert deploy.EMPTY_ALLOWLIST_TEXT.split(" (")[0] in text
    assert "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com" in guide
    assert guide.index("## 0. Once per AWS account") < guide.index("## 1. ")
    runner = MotoRunner()
    deploy.run_check(_plan(tmp_path), runner)
    items = [line.split("] ", 1)[1].split(":", 1)[0] for line in runner.said if line.startswith("  [")]
    checklist = guide[guide.index("## First-deploy checklist") : guide.index("## 1. ")]
    assert items == [row.split("|")[1].strip() for row in checklist.splitlines() if row.startswith("| ") and
                     not row.startswith("| Item")]  # fmt: skip
    for permission in (
        "events:PutRule",
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
        "transform/Serverless-2016-10-31",
    ):
        assert permission in guide
    assert "repo:<owner>/<repo>:ref:refs/heads/main" in guide


def test_oauth_ids_and_the_rest_come_from_flags_or_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "deploy.json"
    config.write_text(
        json.dumps(
            {
                "allow_guild": [GUILD],
                "alarm_email": "ops@example.org",
                "google_client_id": "1-abc.apps.googleusercontent.com",
                "spotify_client_id": "fromfile",
            }
        )
    )
    args = deploy.parse_args(["--config", str(config), "--spotify-client-id", "fromflag"])
    assert args.allow_guild == [GUILD]
    assert args.alarm_email == "ops@example.org"
    assert args.google_client_id == "1-abc.apps.googleusercontent.com"
    assert args.spotify_client_id == "fromflag"  # flags win
    config.write_text(json.dumps({"google_client_secret": "no secrets in files"}))
    with pytest.raises(SystemExit):
        deploy.parse_args(["--config", str(config)])
    with pytest.raises(SystemExit):
        deploy.parse_args(["--allow-guild", "my-server"])
