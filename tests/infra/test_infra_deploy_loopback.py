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
      that did deploy report "unchanged" (tests/infra/test_infra_deploy_paths.py)
AND   no secret reaches the output, and docker is not called before the stack has a repository.

WITH --transform-locally (the SAM transform run here by samtranslator, the plain template deployed):
GIVEN moto's own gaps on the way bridged in moto, never in our code: Fn::Cidr (moto leaves it
      unresolved), a generated ECR repository name (moto keeps the logical id's capitals, which ECR
      refuses; CloudFormation lowercases it), a REST API defined by a Swagger 2.0 Body (moto needs a
      Name and imports only OpenAPI 3 paths; CloudFormation takes the title and imports either), the
      outputs of a stack created by a change set (moto never recomputes them), and a `docker push`
      that lands in moto's ECR
THEN  every step runs and the stack is CREATE_COMPLETE, except the resources moto cannot model at
      all, which it skips with a warning and the test names: AWS::SecretsManager::Secret,
      AWS::CloudWatch::Alarm, AWS::Lambda::EventInvokeConfig and AWS::ApiGateway::Stage
AND   a second run reports "unchanged" because the digest it recorded matches, and makes no
      CreateStack, UpdateStack, CreateChangeSet or ExecuteChangeSet call.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from scripts.deploy import rollback_complete_text
from tests.support.packaged import remove_tree

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
GUILD = "123456789012345678"
BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde.loopback-deploy-not-a-real-token"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - moto's CloudFormation is imported only where it runs

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    iam = boto3.client("iam", region_name=REGION, endpoint_url=url, **CREDENTIALS)
    iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")
    yield url
    server.stop()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This commit, clean (the image tag must name a commit), sharing Chalice's wheel cache and the
    compiled zips' cache (build/compiled-zips, keyed by each zip's bytes) with this checkout, as a
    developer's repeated deploys share them: the dependencies' zip Chalice builds from the shared
    wheels is the one the packaging tests compiled."""
    repo = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, timeout=120)
    shared = {"chalice_app/.chalice/deployments": ROOT / "chalice_app" / ".chalice" / "deployments",
              "build/compiled-zips": ROOT / "build" / "compiled-zips"}  # fmt: skip
    for relative, cache in shared.items():
        cache.mkdir(parents=True, exist_ok=True)
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).symlink_to(cache, target_is_directory=True)
    with (repo / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("".join(f"{relative}\n" for relative in shared))
    yield repo
    remove_tree(repo.parent)  # the links to the shared caches go, not what they point at


# What the fake `docker push` puts in ECR for the pushed tag (ECR stores a manifest per tag).
MANIFEST = (
    '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
    '"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,'
    '"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}'
)


def _fake_docker(bin_dir: Path, log: Path, *, push_to_ecr: bool = False) -> None:
    """A `docker` that records its argv; with ``push_to_ecr`` its push puts the tag in (moto's) ECR
    through the aws CLI, as a real push would, so that the next run finds the image there."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    docker = bin_dir / "docker"
    push = (
        'if [ "$1" = push ]; then ref="${2#*/}"; aws ecr put-image --repository-name "${ref%:*}" '
        f"--image-tag \"${{ref##*:}}\" --image-manifest '{MANIFEST}' > /dev/null || exit 1; fi\n"
    )
    docker.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\n' + (push if push_to_ecr else "") + "exit 0\n")
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)


def _deploy(
    checkout: Path, endpoint: str, tmp_path: Path, *extra: str, stage: str = "dev", push_to_ecr: bool = False
) -> subprocess.CompletedProcess[str]:
    aws = shutil.which("aws")
    assert aws is not None, "the aws CLI is part of the deploy path"
    bin_dir = tmp_path / "bin"
    _fake_docker(bin_dir, tmp_path / "docker.log", push_to_ecr=push_to_ecr)
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
        [sys.executable, "scripts/deploy.py", "--stage", stage, "--allow-guild", GUILD, "--skip-commands", *extra],
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
    from moto.cloudformation.models import cloudformation_backends  # noqa: PLC0415 - moto runs in this process

    # WHEN deploy.py runs against the loopback server
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _deploy(checkout, endpoint, tmp_path / "first")
    out = first.stdout
    # THEN steps 1-6 ran in order, and it stopped at step 6 by name, on moto's missing transform
    assert first.returncode == 1, out + first.stderr
    positions = [out.index(f"[{n}/9] {name}\n") for n, name in enumerate(
        ["preflight", "secrets", "bucket", "image", "package", "deploy"], start=1)]  # fmt: skip
    assert positions == sorted(positions), out + first.stderr
    assert "[7/9]" not in out
    assert "deploy stopped: step 6 (deploy) failed: `aws cloudformation deploy" in first.stderr, out + first.stderr
    unsupported = "AWS::Serverless::Function but it's not supported by moto"
    assert any(unsupported in str(w.message) for w in caught), [str(w.message) for w in caught]
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


# ---------------------------------------------------------------------------------------------
# --transform-locally: moto's gaps bridged in moto (this process runs the server), then the whole path
# ---------------------------------------------------------------------------------------------

# What moto's CloudFormation cannot model: it skips each with a warning, and the stack completes without it.
MOTO_CANNOT_MODEL = {
    "AWS::SecretsManager::Secret",
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::ApiGateway::Stage",
}
STACK_WRITES = ("create_stack", "update_stack", "create_change_set", "execute_change_set")


def _bridge_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Moto's gaps on the deploy path, filled as CloudFormation behaves. Only moto is patched."""
    from moto.apigateway.models import RestAPI, apigateway_backends  # noqa: PLC0415
    from moto.cloudformation import parsing  # noqa: PLC0415
    from moto.cloudformation.models import CloudFormationBackend  # noqa: PLC0415

    clean_json = parsing.clean_json

    def with_cidr(resource_json: Any, resources_map: Any) -> Any:
        # Fn::Cidr [block, count, host bits]: moto returns it unresolved, and Fn::Select over it fails.
        if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
            block, count, bits = (clean_json(value, resources_map) for value in resource_json["Fn::Cidr"])
            network = ipaddress.ip_network(str(block))
            subnets = network.subnets(new_prefix=network.max_prefixlen - int(bits))
            return [str(next(subnets)) for _ in range(int(count))]
        return clean_json(resource_json, resources_map)

    monkeypatch.setattr(parsing, "clean_json", with_cidr)

    generate_resource_name = parsing.generate_resource_name

    def resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
        # CloudFormation lowercases a generated repository name (ECR allows no capitals); moto does not.
        name = generate_resource_name(resource_type, stack_name, logical_id)
        return name.lower() if resource_type == "AWS::ECR::Repository" else name

    monkeypatch.setattr(parsing, "generate_resource_name", resource_name)

    create_rest_api = RestAPI.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def rest_api_from_body(
        cls: type[RestAPI], resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
    ) -> RestAPI:
        # A Body names the API (info.title) and holds its paths; moto needs Name and reads no Swagger 2.0.
        properties = cloudformation_json["Properties"]
        body = properties.get("Body")
        if isinstance(body, dict) and "Name" not in properties:
            properties = {**properties, "Name": body["info"]["title"]}
        api: RestAPI = create_rest_api(cls, resource_name, {**cloudformation_json, "Properties": properties},
                                       account_id, region_name, **kw)  # fmt: skip
        if isinstance(body, dict) and body.get("swagger") == "2.0":
            # The paths, methods and integrations moto reads are spelled the same in OpenAPI 3.
            document = {key: value for key, value in body.items() if key != "swagger"} | {"openapi": "3.0.1"}
            apigateway_backends[account_id][region_name].put_rest_api(
                api.id, document, fail_on_warnings=False, mode="overwrite"
            )
        return api

    monkeypatch.setattr(RestAPI, "create_from_cloudformation_json", classmethod(rest_api_from_body))

    execute_change_set = CloudFormationBackend.execute_change_set

    def execute_and_refresh_outputs(
        self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
    ) -> None:
        # The stack keeps the outputs of the empty template it was made with; CloudFormation's are the new ones.
        execute_change_set(self, change_set_name, stack_name)
        for stack in self.stacks.values():
            if stack.name == stack_name or stack.stack_id == stack_name:
                stack._parse_template()
                stack.output_map = stack._create_output_map()

    monkeypatch.setattr(CloudFormationBackend, "execute_change_set", execute_and_refresh_outputs)


def _record_stack_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each CreateStack, UpdateStack, CreateChangeSet and ExecuteChangeSet the server handles, in order."""
    from moto.cloudformation.models import CloudFormationBackend  # noqa: PLC0415

    calls: list[str] = []

    def recording(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return method(*args, **kwargs)

        return record

    for name in STACK_WRITES:
        monkeypatch.setattr(CloudFormationBackend, name, recording(name, getattr(CloudFormationBackend, name)))
    return calls


@pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")  # recorded and checked below
def test_transform_locally_creates_the_stack_and_a_second_run_is_unchanged(
    checkout: Path, endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bridge_moto(monkeypatch)
    writes = _record_stack_writes(monkeypatch)
    # WHEN deploy.py runs with --transform-locally (stage prod: the other test's dev stack is left as it is)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _deploy(checkout, endpoint, tmp_path / "first", "--transform-locally", stage="prod", push_to_ecr=True)
    out = first.stdout
    # THEN every step ran, in order, and it finished
    assert first.returncode == 0, out + first.stderr
    positions = [out.index(f"[{n}/9] {name}\n") for n, name in enumerate(
        ["preflight", "secrets", "bucket", "image", "package", "deploy", "image (first deploy)", "commands", "urls"],
        start=1)]  # fmt: skip
    assert positions == sorted(positions)
    assert out.rstrip().endswith("done.")
    assert "    AWSServiceRoleForECS: exists" in out
    assert "    /timmybot/prod/discord-bot-token: written" in out
    # AND the transform ran here, and the plain template was deployed from the change set it made
    assert re.search(r"    transformed locally \(samtranslator [0-9.]+\): \d+ resources of \d+ types", out), out
    shown = json.loads((checkout / "build" / "timmybot-prod.template.json").read_text())
    assert "Transform" not in shown
    assert not [r for r in shown["Resources"].values() if r["Type"].startswith("AWS::Serverless::")]
    assert writes == ["create_change_set", "execute_change_set"]
    cfn = _client("cloudformation", endpoint)
    (stack,) = cfn.describe_stacks(StackName="timmybot-prod")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    # AND moto skipped exactly the resource types it cannot model; everything else exists
    skipped = {
        match.group(1)
        for warning in caught
        if (match := re.search(r"Tried to parse (\S+) but it's not supported by moto", str(warning.message)))
    }
    assert skipped == MOTO_CANNOT_MODEL
    # AND what the bot runs on exists: the functions, the tables, the REST API with
    # its routes, the cluster and the repository
    functions = _client("lambda", endpoint).list_functions()["Functions"]
    assert sorted(f["FunctionName"] for f in functions if f["FunctionName"].startswith("timmybot-prod-")) == [
        "timmybot-prod-api", "timmybot-prod-reaper", "timmybot-prod-worker"]  # fmt: skip
    tables = _client("dynamodb", endpoint).list_tables()["TableNames"]
    assert {outputs["StateTableName"], outputs["TokenTableName"]} <= set(tables)
    apigateway = _client("apigateway", endpoint)
    paths = {r["path"] for r in apigateway.get_resources(restApiId=outputs["RestAPIId"])["items"]}
    assert {"/interactions", "/oauth/spotify/callback"} <= paths
    assert outputs["VoiceClusterName"] in str(_client("ecs", endpoint).list_clusters()["clusterArns"])
    # AND the image was built and pushed into the repository the stack made, after the create
    repository = outputs["VoiceRepositoryUri"]
    docker = (tmp_path / "first" / "docker.log").read_text().splitlines()
    assert [line.split()[0] for line in docker] == ["buildx", "login", "push"], docker
    assert docker[2] == f"push {repository}:{stack_params(stack)['ImageTag']}"
    # AND the URLs come from the stack's outputs
    assert (
        f"Interactions Endpoint URL (Discord portal, General Information): {outputs['EndpointURL']}interactions" in out
    )
    assert BOT_TOKEN not in out + first.stderr

    # WHEN it runs again at the same commit with the same settings
    del writes[:]
    second = _deploy(checkout, endpoint, tmp_path / "second", "--transform-locally", stage="prod", push_to_ecr=True)
    # THEN the package hashes to the digest the first run recorded: "unchanged", and no stack call
    assert second.returncode == 0, second.stdout + second.stderr
    digest = _client("ssm", endpoint).get_parameter(Name="/timmybot/prod/deployed-digest")["Parameter"]["Value"]
    assert f"    unchanged: digest {digest[:16]} is what the stack was last deployed with\n" in second.stdout
    assert "    unchanged: timmybot-prod already runs this template with these parameters\n" in second.stdout
    assert writes == []
    assert "aws cloudformation deploy" not in second.stdout and "aws cloudformation package" not in second.stdout
    # AND the image is found in ECR, so docker is not called
    assert f"    {repository}:{stack_params(stack)['ImageTag']} already pushed" in second.stdout
    assert not (tmp_path / "second" / "docker.log").exists()
    (again,) = cfn.describe_stacks(StackName="timmybot-prod")["Stacks"]
    assert again["StackStatus"] == "CREATE_COMPLETE"


def stack_params(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
