"""scripts/deploy.py end to end against a loopback moto server (issue 16, "The deploy path").

GIVEN a clean clone of this commit, a moto server on 127.0.0.1 reached through AWS_ENDPOINT_URL
      (boto3 in deploy.py and the real `aws` CLI both honour it), the ECS service-linked role in
      that account, and a fake `docker` that records its argv
WHEN  `scripts/deploy.py --stage dev --allow-guild ID --skip-commands` runs
THEN  each run checks the service-linked role, writes the SSM parameters, creates the artifact
      bucket, packages (chalice package, the core layer) and uploads the code with `aws
      cloudformation package`, and stops at the first step moto cannot do, printing its name:
      step 6 (deploy), because moto does not run the AWS::Serverless-2016-10-31 transform, so
      the Chalice resources the rest of the template refers to never exist there
AND   with the stack put in ROLLBACK_COMPLETE (where AWS leaves a failed first create; moto runs
      in this process), a run stops with the documented sentence; once the stack is gone, a
      second create gets as far as the first
AND   both creates hash the package to the same digest, which is what lets a later run of a stack
      that did deploy report "unchanged" (tests/contract/test_infra_deploy_paths.py)
AND   no secret reaches the output, and docker is not called before the stack has a repository.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.cloudformation.models import cloudformation_backends
from moto.server import ThreadedMotoServer

from scripts.deploy import rollback_complete_text

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
GUILD = "123456789012345678"
BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde.loopback-deploy-not-a-real-token"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    iam = boto3.client("iam", region_name=REGION, endpoint_url=url, **CREDENTIALS)
    iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")
    yield url
    server.stop()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This commit, clean (the image tag must name a commit), sharing Chalice's wheel cache."""
    repo = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, timeout=120)
    cache = ROOT / "chalice_app" / ".chalice" / "deployments"
    cache.mkdir(parents=True, exist_ok=True)
    (repo / "chalice_app" / ".chalice" / "deployments").symlink_to(cache, target_is_directory=True)
    with (repo / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("chalice_app/.chalice/deployments\n")
    return repo


def _fake_docker(bin_dir: Path, log: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexit 0\n')
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)


def _deploy(checkout: Path, endpoint: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    aws = shutil.which("aws")
    assert aws is not None, "the aws CLI is part of the deploy path"
    bin_dir = tmp_path / "bin"
    _fake_docker(bin_dir, tmp_path / "docker.log")
    env = {
        "PATH": os.pathsep.join(
            [str(bin_dir), str(Path(aws).parent), str(Path(sys.executable).parent), "/usr/bin", "/bin"]
        ),
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "TIMMYBOT_DISCORD_APPLICATION_ID": "123456789012345678",
        "TIMMYBOT_DISCORD_PUBLIC_KEY": "ab" * 32,
        "TIMMYBOT_DISCORD_BOT_TOKEN": BOT_TOKEN,
    }
    if "PYENV_ROOT" in os.environ:
        env["PYENV_ROOT"] = os.environ["PYENV_ROOT"]
    return subprocess.run(
        [sys.executable, "scripts/deploy.py", "--stage", "dev", "--allow-guild", GUILD, "--skip-commands", *extra],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint, **CREDENTIALS)


def test_deploy_runs_every_step_moto_can_do_and_stops_at_the_transform(
    checkout: Path, endpoint: str, tmp_path: Path
) -> None:
    # WHEN deploy.py runs against the loopback server
    with pytest.warns(UserWarning, match=r"AWS::Serverless::Function but it's not supported by moto"):
        first = _deploy(checkout, endpoint, tmp_path / "first")
    out = first.stdout
    # THEN steps 1-6 ran in order, and it stopped at step 6 by name, on moto's missing transform
    assert first.returncode == 1, out + first.stderr
    positions = [out.index(f"[{n}/9] {name}\n") for n, name in enumerate(
        ["preflight", "secrets", "bucket", "image", "package", "deploy"], start=1)]  # fmt: skip
    assert positions == sorted(positions)
    assert "[7/9]" not in out
    assert "deploy stopped: step 6 (deploy) failed: `aws cloudformation deploy" in first.stderr
    # AND it checked the service-linked role and the allowlist
    assert "    AWSServiceRoleForECS: exists" in out
    assert "    allowlist: 1 guild(s)" in out
    # AND wrote the SSM parameters (the token as given, the link key generated)
    ssm = _client("ssm", endpoint)
    token = ssm.get_parameter(Name="/timmybot/dev/discord-bot-token", WithDecryption=True)["Parameter"]
    assert (token["Type"], token["Value"]) == ("SecureString", BOT_TOKEN)
    assert ssm.get_parameter(Name="/timmybot/dev/link-key", WithDecryption=True)["Parameter"]["Type"] == "SecureString"
    # AND created the bucket and uploaded the packaged code and layers to it
    s3 = _client("s3", endpoint)
    bucket = "timmybot-artifacts-123456789012-us-east-1"
    uploaded = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="timmybot-dev/").get("Contents", [])]
    assert len(uploaded) >= 3, uploaded  # the function code, Chalice's layer, the core layer
    # AND the change set was made from the packaged template with our parameters
    cfn = _client("cloudformation", endpoint)
    (stack,) = cfn.describe_stacks(StackName="timmybot-dev")["Stacks"]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    assert parameters.get("AllowedGuilds") == GUILD
    assert re.fullmatch(r"[0-9a-f]{12}-amd64", parameters.get("ImageTag", "")), parameters
    # AND no secret was printed, and docker waited for the repository the stack would create
    assert BOT_TOKEN not in out + first.stderr
    assert "first deploy: the repository is created by the stack" in out
    assert not (tmp_path / "first" / "docker.log").exists()

    # WHEN the stack is left as AWS leaves a failed first create (moto leaves it half made), and
    # deploy.py runs again
    assert stack["StackStatus"] != "CREATE_COMPLETE"
    cloudformation_backends["123456789012"][REGION].stacks[stack["StackId"]].status = "ROLLBACK_COMPLETE"
    refused = _deploy(checkout, endpoint, tmp_path / "refused")
    # THEN it stops at preflight with the documented sentence
    assert refused.returncode == 1
    assert f"step 1 (preflight) failed: {rollback_complete_text('timmybot-dev')}" in " ".join(refused.stderr.split())
    # WHEN the failed stack is gone (moto cannot delete the half-made one: the stack is dropped from
    # its backend; --delete-failed-stack itself is tested in test_infra_deploy_paths.py) and it runs again
    del cloudformation_backends["123456789012"][REGION].stacks[stack["StackId"]]
    second = _deploy(checkout, endpoint, tmp_path / "second")
    # THEN the second create gets as far as the first, keeping the SSM parameters it found
    assert "deploy stopped: step 6 (deploy) failed" in second.stderr, second.stdout + second.stderr
    assert "    /timmybot/dev/link-key: unchanged" in second.stdout
    # AND both packaged to the same digest, which is what "unchanged" compares
    digests = [re.search(r"    digest ([0-9a-f]{16})\n", run.stdout) for run in (first, second)]
    assert digests[0] is not None and digests[1] is not None, second.stdout
    assert digests[0].group(1) == digests[1].group(1)
