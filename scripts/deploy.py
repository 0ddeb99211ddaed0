#!/usr/bin/env python3
"""Deploy TimmyBot to your AWS account: one CloudFormation stack per stage.

    python scripts/deploy.py --stage dev --dry-run     # print the plan; calls neither AWS nor docker
    python scripts/deploy.py --stage dev               # do it

Steps, in order, each idempotent; the first failure stops the run with the step's name:

 1. preflight   git commit (the image tag), tools on PATH (aws, docker), the AWS account, the ECS
                service-linked role, the stack's state (ROLLBACK_COMPLETE: --delete-failed-stack),
                a non-empty guild allowlist (--allow-guild ID, or --allow-all-guilds)
 2. secrets     SSM SecureString parameters under /timmybot/<stage>/ from the environment
                (TIMMYBOT_DISCORD_BOT_TOKEN, TIMMYBOT_GOOGLE_CLIENT_SECRET, TIMMYBOT_SPOTIFY_CLIENT_SECRET);
                unchanged values are not rewritten, values never appear on a command line;
                the link key (/timmybot/<stage>/link-key, read by the api alone) is generated once
 3. bucket      the artifact bucket for packaged code (private, encrypted), created once
 4. image       build (`docker buildx build --load`) and push the voice image tagged
                <commit>-<arch>, unless ECR has that tag; --skip-image requires it there
                (on the very first deploy the repository does not exist yet: pushed after step 6)
 5. package     the core layer zip, `chalice package --merge-template infra/template.yaml`,
                `aws cloudformation package` (uploads code and layers)
                With --transform-locally: the SAM transform runs here (samtranslator), and the plain
                CloudFormation template is written to build/<stack>.template.json
 6. deploy      `aws cloudformation deploy`, unless the template, code and parameters hash to
                what the last deploy recorded (/timmybot/<stage>/deployed-digest): "unchanged"
 7. commands    register the slash commands (scripts/register_commands.py)
 8. urls        print the Interactions Endpoint URL and the OAuth callback URL for the portals

Environment: AWS credentials as usual (CI assumes a role through OIDC), AWS_REGION or --region,
TIMMYBOT_DISCORD_APPLICATION_ID and TIMMYBOT_DISCORD_PUBLIC_KEY (both public). The OAuth client ids
and the alarm address come from flags or a JSON --config file (keys as the flags, with _ for -).

    python scripts/deploy.py --check                   # the first-deploy checklist, changes nothing
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # POSIX: the lock on Chalice's cache (elsewhere runs are not serialised)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

try:  # the runtime pin and the zips' bytecode
    from scripts import lambda_runtime
except ImportError:  # run as `python scripts/deploy.py`
    import lambda_runtime  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "chalice_app"
CORE_SOURCE = ROOT / "layers" / "core" / "python"
MERGE_TEMPLATE = ROOT / "infra" / "template.yaml"
DOCKERFILE = ROOT / "voice_task" / "Dockerfile"
CORE_LAYER_ZIP = "timmybot-core-layer.zip"  # the name infra/template.yaml's CoreLayer expects
STAGES = ("dev", "prod")
CAPACITIES = ("x86-spot", "x86", "arm64")

# Secret parameter (under /timmybot/<stage>/) -> the environment variable that provides it.
SECRET_PARAMETERS: dict[str, str] = {
    "discord-bot-token": "TIMMYBOT_DISCORD_BOT_TOKEN",
    "oauth/google-client-secret": "TIMMYBOT_GOOGLE_CLIENT_SECRET",
    "oauth/spotify-client-secret": "TIMMYBOT_SPOTIFY_CLIENT_SECRET",
}
REQUIRED_SECRETS = ("discord-bot-token",)
# Generated here once, then kept: the link key (PKCE verifiers, sealed Google device codes, confirm
# tokens). Only the api's role may read it. Replacing it only ends the links in progress.
GENERATED_SECRETS = ("link-key",)
LINK_KEY_BYTES = 48
ALLOWLIST_FILE = APP_DIR / "chalicelib" / "allowlist.txt"
ECS_SERVICE_LINKED_ROLE = "AWSServiceRoleForECS"
ECS_SERVICE_ROLE_PATH = "/aws-service-role/ecs.amazonaws.com/"
DIGEST_PARAMETER = "deployed-digest"  # under /timmybot/<stage>/: what the last successful deploy hashed to
SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE")
INTERACTIONS_PATH = "interactions"
TRANSFORMED_DIR = ROOT / "build"  # --transform-locally writes <stack>.template.json here (ignored by git)
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation takes inline; a larger template goes through the bucket
SAM_TRANSLATOR_HINT = (
    "--transform-locally needs aws-sam-translator: pip install -r requirements-dev.txt (it pins the version)"
)
SPOTIFY_CALLBACK_PATH = "oauth/spotify/callback"


class DeployError(RuntimeError):
    """A step failed; the message says what to do."""


# The documented sentences (docs/DEPLOYMENT.md quotes them); tests match them.
def rollback_complete_text(stack: str) -> str:
    return (
        f"stack {stack} is in ROLLBACK_COMPLETE: its first create failed, and CloudFormation can only delete it. "
        f"Read why in its events (aws cloudformation describe-stack-events --stack-name {stack}), fix that "
        "(a brand-new account: aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com), "
        "then run again with --delete-failed-stack: it asks before deleting, and lists what the stack leaves behind"
    )


EMPTY_ALLOWLIST_TEXT = (
    "the guild allowlist is empty, so the bot would refuse every command: pass --allow-guild ID with your "
    "server's id (Discord, Developer Mode on: right-click the server > Copy Server ID), or add it with "
    "`python scripts/allowlist.py add ID` and commit, or pass --allow-all-guilds to open the bot to every server"
)
SERVICE_LINKED_ROLE_TEXT = (
    f"the ECS service-linked role ({ECS_SERVICE_LINKED_ROLE}) does not exist yet, and a new account's first "
    "create fails without it: run `aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com` once"
)


def missing_image_text(image: str) -> str:
    return (
        f"--skip-image: {image} is not in ECR (the tag is <commit>-<arch>; a new commit or another --capacity "
        "needs its own image): run without --skip-image to build and push it"
    )


@dataclass
class Plan:
    stage: str
    region: str
    capacity: str
    image_tag: str
    application_id: str
    public_key: str
    command_guild: str = ""
    skip_image: bool = False
    skip_commands: bool = False
    allow_guilds: tuple[str, ...] = ()
    allow_all_guilds: bool = False
    alarm_email: str = ""
    google_client_id: str = ""
    spotify_client_id: str = ""
    spotify_redirect_uri: str = ""
    delete_failed_stack: bool = False
    assume_yes: bool = False
    transform_locally: bool = False
    confirm: Callable[[str], bool] = field(default=lambda question: input(question + " [y/N] ").strip() == "y")
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="timmybot-deploy-")))

    @property
    def stack(self) -> str:
        return f"timmybot-{self.stage}"

    @property
    def transformed_template(self) -> Path:
        return TRANSFORMED_DIR / f"{self.stack}.template.json"

    @property
    def platform(self) -> str:
        return "linux/arm64" if self.capacity == "arm64" else "linux/amd64"

    @property
    def image_ref(self) -> str:
        """The image's tag: the commit AND the architecture (another --capacity needs another image)."""
        return f"{self.image_tag}-{self.platform.rsplit('/', 1)[1]}"

    def parameter(self, name: str) -> str:
        return f"/timmybot/{self.stage}/{name}"

    def overrides(self) -> list[str]:
        """The parameter overrides; a parameter left out keeps its value in an existing stack."""
        values = [
            f"Stage={self.stage}",
            f"ImageTag={self.image_ref}",
            f"VoiceCapacity={self.capacity}",
            f"DiscordApplicationId={self.application_id}",
            f"DiscordPublicKey={self.public_key}",
        ]
        if self.allow_guilds:
            values.append(f"AllowedGuilds={','.join(self.allow_guilds)}")
        if self.allow_all_guilds:
            values.append("AllowAllGuilds=true")
        optional = {
            "AlarmEmail": self.alarm_email,
            "GoogleClientId": self.google_client_id,
            "SpotifyClientId": self.spotify_client_id,
            "SpotifyRedirectUri": self.spotify_redirect_uri,
        }
        values += [f"{name}={value}" for name, value in optional.items() if value]
        return values


# ---------------------------------------------------------------------------------------------
# Running things. Dry runs print instead; nothing in this block ever prints a secret.
# ---------------------------------------------------------------------------------------------


class Runner:
    def __init__(self, *, dry_run: bool) -> None:
        self.dry_run = dry_run

    def say(self, text: str) -> None:
        print(text, flush=True)

    def run(self, argv: Sequence[str], *, cwd: Path = ROOT, env: Mapping[str, str] | None = None) -> str:
        shown = shlex.join(argv)
        if self.dry_run:
            self.say(f"    would run: {shown}")
            return ""
        self.say(f"    $ {shown}")
        try:
            result = subprocess.run(
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                check=False,
                text=True,
                capture_output=True,
            )
        except FileNotFoundError as exc:
            raise DeployError(f"{argv[0]} is not installed or not on PATH") from exc
        if result.returncode != 0:
            tail = (result.stderr or result.stdout or "").strip()[-2000:]
            raise DeployError(f"`{shown}` exited {result.returncode}:\n{tail}")
        return result.stdout

    def aws_client(self, service: str, region: str) -> Any:
        if self.dry_run:
            raise AssertionError("no AWS client in a dry run")
        import boto3  # noqa: PLC0415 - only for real runs

        return boto3.client(service, region_name=region)


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DeployError("not a git checkout: the image tag is the commit") from exc
    tag = out.stdout.strip()
    return tag + "-dirty" if dirty.stdout.strip() else tag


def step_preflight(plan: Plan, runner: Runner) -> None:
    runner.say(f"    stack {plan.stack} in {plan.region}, voice capacity {plan.capacity} ({plan.platform})")
    runner.say(f"    image tag {plan.image_tag}")
    if plan.image_tag.endswith("-dirty") and not runner.dry_run:
        raise DeployError("the work tree has uncommitted changes: commit them (the image tag must name a commit)")
    missing = [
        name
        for name, value in (
            ("TIMMYBOT_DISCORD_APPLICATION_ID", plan.application_id),
            ("TIMMYBOT_DISCORD_PUBLIC_KEY", plan.public_key),
        )
        if not value
    ]
    if missing and runner.dry_run:
        runner.say(f"    a real run would stop here: set {', '.join(missing)}")
    elif missing:
        raise DeployError(f"set {', '.join(missing)} (Discord developer portal, General Information)")
    tools = ["aws"] + ([] if plan.skip_image else ["docker"])
    if runner.dry_run:
        runner.say(f"    would check {', '.join(tools)} on PATH and the caller identity")
        runner.say(f"    would check {ECS_SERVICE_LINKED_ROLE}, the stack's state and the guild allowlist")
        if not (file_allowlist() or plan.allow_guilds or plan.allow_all_guilds):
            runner.say(f"    a real run stops here unless the stack already has guilds: {EMPTY_ALLOWLIST_TEXT}")
        return
    absent = [tool for tool in tools if shutil.which(tool) is None]
    if absent:
        raise DeployError(f"install {', '.join(absent)} first")
    identity = runner.aws_client("sts", plan.region).get_caller_identity()
    runner.say(f"    account {identity['Account']}")
    if not service_linked_role_exists(plan, runner):
        raise DeployError(SERVICE_LINKED_ROLE_TEXT)
    runner.say(f"    {ECS_SERVICE_LINKED_ROLE}: exists")
    stack = describe_stack(plan, runner)
    status = stack["StackStatus"] if stack else None
    if status == "ROLLBACK_COMPLETE":
        if not plan.delete_failed_stack:
            raise DeployError(rollback_complete_text(plan.stack))
        delete_failed_stack(plan, runner)
        stack = None
    elif status is not None and status.endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {plan.stack} is {status}: wait until it settles, then run again")
    elif status is not None and status not in SETTLED:
        raise DeployError(f"stack {plan.stack} is {status}: see its events in the CloudFormation console")
    runner.say(f"    stack {plan.stack}: {status or 'not created yet'}")
    spotify_redirect(plan, runner, stack)
    guilds, open_to_all = allowlist_state(plan, stack)
    if not guilds and not open_to_all:
        raise DeployError(EMPTY_ALLOWLIST_TEXT)
    runner.say("    allowlist: every guild" if open_to_all else f"    allowlist: {len(guilds)} guild(s)")


def spotify_redirect(plan: Plan, runner: Runner, stack: Mapping[str, Any] | None) -> None:
    """The Spotify redirect URI defaults to this stack's callback URL, known from the first deploy on."""
    if not plan.spotify_client_id or plan.spotify_redirect_uri:
        return
    outputs = {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}
    if "EndpointURL" in outputs:
        plan.spotify_redirect_uri = urls(outputs["EndpointURL"])[1]
        runner.say(f"    Spotify redirect URI: {plan.spotify_redirect_uri}")
    else:
        runner.say(
            "    Spotify: first deploy. Register the OAuth redirect URI printed at the end in the Spotify "
            "dashboard, then run again: the second deploy turns Spotify linking on"
        )


def service_linked_role_exists(plan: Plan, runner: Runner) -> bool:
    """Whether ECS's service-linked role exists: any role on ECS's service-role path (role names ignore case)."""
    iam = runner.aws_client("iam", plan.region)
    roles = iam.list_roles(PathPrefix=ECS_SERVICE_ROLE_PATH).get("Roles", [])
    return any(str(r.get("RoleName", "")).lower() == ECS_SERVICE_LINKED_ROLE.lower() for r in roles)


def describe_stack(plan: Plan, runner: Runner) -> dict[str, Any] | None:
    """The stack's description, or None when it does not exist."""
    cfn = runner.aws_client("cloudformation", plan.region)
    try:
        stacks = cfn.describe_stacks(StackName=plan.stack)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    stack: dict[str, Any] = stacks[0]
    return stack


def file_allowlist() -> list[str]:
    sys.path.insert(0, str(APP_DIR))
    sys.path.insert(0, str(CORE_SOURCE))
    try:
        from chalicelib import allowlist  # noqa: PLC0415 - the app's own parser, not a dependency
    finally:
        del sys.path[:2]
    ids: list[str] = allowlist.parse(ALLOWLIST_FILE.read_text(encoding="utf-8"))
    return ids


def allowlist_state(plan: Plan, stack: Mapping[str, Any] | None) -> tuple[list[str], bool]:
    """The guilds the deployed bot will allow, and whether it allows all (the stack keeps earlier flags)."""
    previous = {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters", [])}
    kept = [g for g in previous.get("AllowedGuilds", "").split(",") if g] if not plan.allow_guilds else []
    guilds = file_allowlist() + list(plan.allow_guilds) + kept
    return guilds, plan.allow_all_guilds or previous.get("AllowAllGuilds") == "true"


def delete_failed_stack(plan: Plan, runner: Runner) -> None:
    """Delete a ROLLBACK_COMPLETE stack after a confirm, then deal with what it retained."""
    cfn = runner.aws_client("cloudformation", plan.region)
    resources = cfn.describe_stack_resources(StackName=plan.stack)["StackResources"]
    retained = retained_resources(resources)
    if not (plan.assume_yes or plan.confirm(f"delete the failed stack {plan.stack}?")):
        raise DeployError(f"kept {plan.stack}; nothing was deleted")
    cfn.delete_stack(StackName=plan.stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=plan.stack, WaiterConfig={"Delay": 5, "MaxAttempts": 120})
    runner.say(f"    {plan.stack}: deleted")
    if not retained:
        return
    runner.say("    it left behind (DeletionPolicy Retain; they are billed while they exist):")
    for kind, physical in retained:
        runner.say(f"      {kind} {physical}")
    runner.say(
        "    to adopt them instead, import them into the new stack "
        "(aws cloudformation create-change-set --change-set-type IMPORT); to remove them, answer y below"
    )
    clean_retained(plan, runner, retained)


def retained_resources(resources: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(type, physical id) of the failed stack's tables and keys: what a Retain policy keeps."""
    kinds = ("AWS::DynamoDB::Table", "AWS::KMS::Key")
    return [
        (str(r["ResourceType"]), str(r["PhysicalResourceId"]))
        for r in resources
        if r.get("ResourceType") in kinds and r.get("PhysicalResourceId")
    ]


def clean_retained(plan: Plan, runner: Runner, retained: Sequence[tuple[str, str]]) -> None:
    """Schedule each retained key's deletion and delete each retained table that is still empty."""
    for kind, physical in retained:
        if kind == "AWS::KMS::Key":
            if plan.assume_yes or plan.confirm(f"schedule the deletion of KMS key {physical} (in 7 days)?"):
                runner.aws_client("kms", plan.region).schedule_key_deletion(KeyId=physical, PendingWindowInDays=7)
                runner.say(f"    {physical}: deletion scheduled in 7 days")
        elif kind == "AWS::DynamoDB::Table":
            dynamodb = runner.aws_client("dynamodb", plan.region)
            try:
                items = dynamodb.scan(TableName=physical, Limit=1, Select="COUNT")["Count"]
            except dynamodb.exceptions.ResourceNotFoundException:
                continue
            if items:
                runner.say(f"    {physical}: holds items; kept")
            elif plan.assume_yes or plan.confirm(f"delete the empty table {physical}?"):
                dynamodb.delete_table(TableName=physical)
                runner.say(f"    {physical}: deleted")


def step_secrets(plan: Plan, runner: Runner) -> None:
    for name, variable in SECRET_PARAMETERS.items():
        path = plan.parameter(name)
        provided = os.environ.get(variable, "")
        if runner.dry_run:
            source = f"from ${variable}" if provided else f"kept as it is (${variable} unset)"
            runner.say(f"    would ensure SecureString {path} {source}")
            continue
        ssm = runner.aws_client("ssm", plan.region)
        current = _get_parameter(ssm, path)
        if provided and provided != current:
            ssm.put_parameter(Name=path, Value=provided, Type="SecureString", Overwrite=True, Tier="Standard")
            runner.say(f"    {path}: written")
        elif current is None and name in REQUIRED_SECRETS:
            raise DeployError(f"{path} does not exist: set ${variable} for this run (it is stored, never printed)")
        else:
            runner.say(f"    {path}: {'unchanged' if current is not None else 'not set (feature off)'}")
    for name in GENERATED_SECRETS:
        path = plan.parameter(name)
        if runner.dry_run:
            runner.say(f"    would ensure SecureString {path} (generated once if missing, never printed)")
            continue
        ssm = runner.aws_client("ssm", plan.region)
        if _get_parameter(ssm, path) is not None:
            runner.say(f"    {path}: unchanged")
            continue
        value = secrets.token_urlsafe(LINK_KEY_BYTES)
        ssm.put_parameter(Name=path, Value=value, Type="SecureString", Overwrite=False, Tier="Standard")
        runner.say(f"    {path}: generated")


def _get_parameter(ssm: Any, path: str) -> str | None:
    try:
        value = ssm.get_parameter(Name=path, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return str(value)


def artifact_bucket_name(account: str, region: str) -> str:
    return f"timmybot-artifacts-{account}-{region}"


def step_bucket(plan: Plan, runner: Runner) -> str:
    if runner.dry_run:
        name = artifact_bucket_name("<account>", plan.region)
        runner.say(f"    would ensure private, encrypted bucket {name}")
        return name
    account = runner.aws_client("sts", plan.region).get_caller_identity()["Account"]
    name = artifact_bucket_name(account, plan.region)
    s3 = runner.aws_client("s3", plan.region)
    try:
        s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
        runner.say(f"    {name}: exists")
        return name
    except s3.exceptions.ClientError:
        pass
    kwargs: dict[str, Any] = {"Bucket": name}
    if plan.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": plan.region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-old-artifacts",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": 30},
                }
            ]
        },
    )
    runner.say(f"    {name}: created")
    return name


def stack_outputs(plan: Plan, runner: Runner) -> dict[str, str] | None:
    """The stack's outputs, or None when it does not exist yet."""
    stack = describe_stack(plan, runner)
    if stack is None:
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def image_pushed(plan: Plan, runner: Runner, uri: str) -> bool:
    ecr = runner.aws_client("ecr", plan.region)
    try:
        ecr.describe_images(repositoryName=uri.split("/", 1)[1], imageIds=[{"imageTag": plan.image_ref}])
    except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
        return False
    return True


def step_image(plan: Plan, runner: Runner, outputs: dict[str, str] | None) -> bool:
    """Build and push the image; False when it must wait until the stack (and its repository) exists."""
    if plan.skip_image:
        if runner.dry_run:
            runner.say(f"    skipped (--skip-image); a real run checks that ECR has the tag {plan.image_ref}")
            return True
        repository = (outputs or {}).get("VoiceRepositoryUri")
        if repository is None or not image_pushed(plan, runner, repository):
            raise DeployError(missing_image_text(f"{repository or '<no repository yet>'}:{plan.image_ref}"))
        runner.say(f"    skipped (--skip-image); {repository}:{plan.image_ref} is in ECR")
        return True
    if runner.dry_run:
        uri = "<VoiceRepositoryUri>"
    elif outputs is None or "VoiceRepositoryUri" not in outputs:
        runner.say("    first deploy: the repository is created by the stack; pushing after step 6")
        return False
    else:
        uri = outputs["VoiceRepositoryUri"]
    if not runner.dry_run and image_pushed(plan, runner, uri):
        runner.say(f"    {uri}:{plan.image_ref} already pushed")
        return True
    registry = uri.split("/", 1)[0]
    image = f"{uri}:{plan.image_ref}"
    # --load: under setup-buildx-action's docker-container builder the image would otherwise stay in
    # the builder's cache, and `docker push` below would find nothing to push.
    runner.run(
        [
            "docker",
            "buildx",
            "build",
            "--load",
            "--platform",
            plan.platform,
            "-f",
            str(DOCKERFILE),
            "-t",
            image,
            str(ROOT),
        ]
    )
    if runner.dry_run:
        runner.say(f"    would log docker in to {registry} (password through stdin) and push {image}")
        return True
    token = runner.aws_client("ecr", plan.region).get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(token["authorizationToken"]).decode().partition(":")[2]
    login = subprocess.run(
        ["docker", "login", "--username", "AWS", "--password-stdin", registry],
        input=password,
        text=True,
        capture_output=True,
        check=False,
    )
    if login.returncode != 0:
        raise DeployError(f"docker login to {registry} failed: {login.stderr.strip()[-500:]}")
    runner.run(["docker", "push", image])
    return True


def package_digest(out: Path, overrides: Sequence[str], *, transform: str = "") -> str:
    """A hash of what a deploy would change: the merged template, every zip's contents, the parameters,
    and who runs the SAM transform (``transform``: empty for CloudFormation, else the local translator
    and its version, whose output may differ from the service's).

    Zip entries count by name, CRC and size, not by timestamp, so that packaging the same commit twice
    hashes the same."""
    digest = hashlib.sha256((out / "sam.yaml").read_bytes())
    if transform:
        digest.update(f"transform:{transform}\n".encode())
    for archive_path in sorted(out.glob("*.zip")):
        with zipfile.ZipFile(archive_path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                digest.update(f"{archive_path.name}/{info.filename}:{info.CRC:08x}:{info.file_size}\n".encode())
    digest.update(json.dumps(sorted(overrides)).encode())
    return digest.hexdigest()


def deployed_digest(plan: Plan, runner: Runner) -> str | None:
    """What the last successful deploy of a settled stack hashed to; None when it must deploy."""
    stack = describe_stack(plan, runner)
    if stack is None or stack["StackStatus"] not in SETTLED:
        return None
    return _get_parameter(runner.aws_client("ssm", plan.region), plan.parameter(DIGEST_PARAMETER))


def step_package(plan: Plan, runner: Runner, bucket: str) -> tuple[Path | None, str]:
    """The template to deploy (None when nothing changed since the last deploy) and its digest.

    That is the packaged SAM template, or with --transform-locally the plain CloudFormation template
    the SAM transform made of it here."""
    out = plan.workdir / "package"
    packaged = plan.workdir / ("packaged.json" if plan.transform_locally else "packaged.yaml")
    translator = sam_translator_version() if plan.transform_locally else ""
    chalice_package(plan.stage, out, runner=runner, region=plan.region)
    if runner.dry_run:
        runner.say(
            f"    would hash the template, the zips and the parameters, and compare {plan.parameter(DIGEST_PARAMETER)}"
        )
        digest = ""
    else:
        digest = package_digest(out, plan.overrides(), transform=translator)
        if deployed_digest(plan, runner) == digest:
            runner.say(f"    unchanged: digest {digest[:16]} is what the stack was last deployed with")
            return None, digest
        runner.say(f"    digest {digest[:16]}")
    runner.run(
        [
            "aws",
            "cloudformation",
            "package",
            "--region",
            plan.region,
            "--template-file",
            str(out / "sam.yaml"),
            "--s3-bucket",
            bucket,
            "--s3-prefix",
            plan.stack,
            "--output-template-file",
            str(packaged),
            *(["--use-json"] if plan.transform_locally else []),
        ]
    )
    if not plan.transform_locally:
        return packaged, digest
    if runner.dry_run:
        runner.say(f"    would run the SAM transform here ({translator}) and write {plan.transformed_template}")
        return plan.transformed_template, digest
    template = transform_locally(json.loads(packaged.read_text(encoding="utf-8")), plan, runner)
    plan.transformed_template.parent.mkdir(parents=True, exist_ok=True)
    plan.transformed_template.write_text(json.dumps(template, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    kinds = sorted({str(r.get("Type")) for r in template.get("Resources", {}).values()})
    runner.say(
        f"    transformed locally ({translator}): {len(template.get('Resources', {}))} resources of "
        f"{len(kinds)} types, no Transform left; the template: {plan.transformed_template}"
    )
    compact = plan.workdir / "transformed.json"  # what is sent: CloudFormation counts the bytes
    compact.write_text(json.dumps(template, separators=(",", ":")), encoding="utf-8")
    return compact, digest


def sam_translator_version() -> str:
    """``samtranslator <version>``: the SAM transform --transform-locally runs; a DeployError if absent."""
    try:
        import samtranslator  # noqa: PLC0415 - only --transform-locally needs it
    except ImportError as exc:
        raise DeployError(SAM_TRANSLATOR_HINT) from exc
    return f"samtranslator {samtranslator.__version__}"


def transform_parameters(plan: Plan, stack: Mapping[str, Any] | None) -> dict[str, str]:
    """The parameter values CloudFormation would hand the transform: the stack's current ones (a
    parameter left out keeps its value) under this run's overrides. NoEcho values are not known here."""
    values = {
        str(p["ParameterKey"]): str(p.get("ParameterValue", ""))
        for p in (stack or {}).get("Parameters", [])
        if p.get("ParameterValue") != "****"
    }
    values.update(dict(override.split("=", 1) for override in plan.overrides()))
    return values


def transform_locally(template: dict[str, Any], plan: Plan, runner: Runner) -> dict[str, Any]:
    """The plain CloudFormation template the AWS::Serverless-2016-10-31 transform makes of ``template``.

    The same library CloudFormation runs for the transform, called the way its ``transform()`` helper
    calls it, with this deploy's region. AWS managed policy names (none in this template today) are
    looked up in IAM only if a function names one."""
    import boto3  # noqa: PLC0415 - real runs only
    from samtranslator.model.exceptions import InvalidDocumentException  # noqa: PLC0415
    from samtranslator.parser.parser import Parser  # noqa: PLC0415
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader  # noqa: PLC0415
    from samtranslator.translator.translator import Translator  # noqa: PLC0415
    from samtranslator.utils.py27hash_fix import (  # noqa: PLC0415
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    parameters = transform_parameters(plan, describe_stack(plan, runner))
    loader = ManagedPolicyLoader(runner.aws_client("iam", plan.region))  # loads once, on first use
    to_py27_compatible_template(template, parameters)
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=plan.region))
    try:
        transformed = translator.translate(template, parameter_values=parameters, get_managed_policy_map=loader.load)
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause.message) for cause in exc.causes) or str(exc)
        raise DeployError(f"the SAM transform refused the packaged template: {causes}") from exc
    result: dict[str, Any] = undo_mark_unicode_str_in_template(transformed)
    return result


def chalice_package(
    stage: str, out: Path, *, runner: Runner | None = None, region: str = "us-east-1", app_dir: Path = APP_DIR
) -> Path:
    """The merged template in ``out/sam.yaml``, with the core layer zip beside it. Used by the tests too."""
    runner = runner or Runner(dry_run=False)
    if not runner.dry_run:
        sys.path.insert(0, str(ROOT / "layers"))
        try:
            from build_layer import build_layer  # noqa: PLC0415 - layers/ is not a package
        finally:
            sys.path.pop(0)
        if out.exists():
            shutil.rmtree(out)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CORE_SOURCE), env.get("PYTHONPATH", "")]))
    env.setdefault("AWS_DEFAULT_REGION", region)
    chalice = Path(sys.executable).with_name("chalice")
    argv = [
        str(chalice) if chalice.exists() else "chalice",
        "package",
        "--stage",
        stage,
        "--merge-template",
        str(MERGE_TEMPLATE),
        str(out),
    ]
    if runner.dry_run:
        runner.run(argv, cwd=app_dir, env=env)
    else:
        with chalice_cache_lock(app_dir / ".chalice" / "deployments", runner):
            runner.run(argv, cwd=app_dir, env=env)
    if runner.dry_run:
        runner.say(f"    would write {out / CORE_LAYER_ZIP} (layers/build_layer.py)")
    else:
        build_layer(out / CORE_LAYER_ZIP, CORE_SOURCE)
    if runner.dry_run:
        runner.say(f"    would compile every zip in {out} ({lambda_runtime.RUNTIME} .pyc, unchecked-hash)")
    else:
        lambda_runtime.compile_zips(out)
    return out / "sam.yaml"


CHALICE_CACHE_LOCK = ".timmybot-package.lock"


@contextlib.contextmanager
def chalice_cache_lock(cache: Path, runner: Runner) -> Iterator[None]:
    """Held while ``chalice package`` runs. Chalice writes the zips it caches in ``cache``
    (.chalice/deployments) in place, and reuses any file of the expected name: a second run at the same
    time, from this checkout or one sharing its cache, would package a half-written zip. The lock
    makes the second run wait and then reuse the finished one. A zip that cannot be read (a run
    interrupted while writing it) is removed first, so this run builds it again instead of failing
    on it, and so does every later run."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / CHALICE_CACHE_LOCK).open("a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        for cached in sorted(cache.glob("*.zip")):
            try:
                with zipfile.ZipFile(cached):
                    pass
            except (zipfile.BadZipFile, OSError):
                cached.unlink(missing_ok=True)
                runner.say(f"    removed {cached.name} from Chalice's cache: an interrupted run left it unreadable")
        yield


def step_deploy(plan: Plan, runner: Runner, template: Path | None, digest: str, bucket: str = "") -> None:
    if template is None:
        runner.say(f"    unchanged: {plan.stack} already runs this template with these parameters")
        return
    through_bucket: list[str] = []
    if plan.transform_locally and not runner.dry_run and template.stat().st_size > TEMPLATE_BODY_LIMIT:
        # CloudFormation takes 51,200 bytes inline; past that the CLI uploads the template to the bucket.
        through_bucket = ["--s3-bucket", bucket, "--s3-prefix", plan.stack]
    runner.run(
        [
            "aws",
            "cloudformation",
            "deploy",
            "--region",
            plan.region,
            "--stack-name",
            plan.stack,
            "--template-file",
            str(template),
            "--capabilities",
            "CAPABILITY_IAM",
            "CAPABILITY_AUTO_EXPAND",
            "--no-fail-on-empty-changeset",
            *through_bucket,
            "--parameter-overrides",
            *plan.overrides(),
        ]
    )
    if not runner.dry_run:
        runner.aws_client("ssm", plan.region).put_parameter(
            Name=plan.parameter(DIGEST_PARAMETER), Value=digest, Type="String", Overwrite=True, Tier="Standard"
        )


def step_commands(plan: Plan, runner: Runner) -> None:
    if plan.skip_commands:
        runner.say("    skipped (--skip-commands)")
        return
    argv = [sys.executable, str(ROOT / "scripts" / "register_commands.py")]
    if plan.command_guild:
        argv += ["--guild", plan.command_guild]
    env = dict(os.environ)
    env["TIMMYBOT_DISCORD_APPLICATION_ID"] = plan.application_id
    if not runner.dry_run and not env.get("TIMMYBOT_DISCORD_BOT_TOKEN"):
        token = _get_parameter(runner.aws_client("ssm", plan.region), plan.parameter("discord-bot-token"))
        env["TIMMYBOT_DISCORD_BOT_TOKEN"] = token or ""
    runner.run(argv, env=env)


def bot_permissions() -> int:
    """Exactly what the bot checks before it joins and posts (timmybot.discord.permissions), as one bit set."""
    sys.path.insert(0, str(CORE_SOURCE))
    try:
        from timmybot.discord import permissions  # noqa: PLC0415 - the bot's own list, not a dependency
    finally:
        sys.path.pop(0)
    needed = (*permissions.VOICE_REQUIREMENTS, *permissions.POST_REQUIREMENTS, *permissions.THREAD_POST_REQUIREMENTS)
    bits = 0
    for permission, _label in needed:
        bits |= int(permission)
    return bits


def install_url(application_id: str) -> str:
    """The OAuth2 URL that installs the bot into a server with the permissions it needs and no more."""
    query = f"client_id={application_id}&scope=bot+applications.commands&permissions={bot_permissions()}"
    return f"https://discord.com/oauth2/authorize?{query}"


def urls(endpoint: str) -> tuple[str, str]:
    base = endpoint if endpoint.endswith("/") else endpoint + "/"
    return base + INTERACTIONS_PATH, base + SPOTIFY_CALLBACK_PATH


def step_urls(plan: Plan, runner: Runner, outputs: dict[str, str] | None) -> None:
    endpoint = "https://<RestAPI>.execute-api.<region>.amazonaws.com/api/"
    if not runner.dry_run:
        if not outputs or "EndpointURL" not in outputs:
            raise DeployError(f"stack {plan.stack} has no EndpointURL output")
        endpoint = outputs["EndpointURL"]
    interactions, callback = urls(endpoint)
    runner.say("")
    runner.say(f"  Interactions Endpoint URL (Discord portal, General Information): {interactions}")
    runner.say(f"  OAuth redirect URI (Spotify dashboard, Redirect URIs):          {callback}")
    runner.say(f"  Install the bot into your server (open, pick the server):       {install_url(plan.application_id)}")


def run_check(plan: Plan, runner: Runner) -> int:
    """The first-deploy checklist (docs/DEPLOYMENT.md): each item ok or what to do. Changes nothing."""
    results: list[tuple[str, bool, str]] = []

    def check(name: str, probe: Callable[[], tuple[bool, str]]) -> None:
        try:
            ok, detail = probe()
        except Exception as exc:  # no credentials, no network: the item fails with the reason
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        results.append((name, ok, detail))

    def credentials() -> tuple[bool, str]:
        identity = runner.aws_client("sts", plan.region).get_caller_identity()
        return True, f"account {identity['Account']} as {identity['Arn']}"

    def region() -> tuple[bool, str]:
        return bool(plan.region), plan.region or "set AWS_REGION or --region"

    def linked_role() -> tuple[bool, str]:
        exists = service_linked_role_exists(plan, runner)
        return exists, ECS_SERVICE_LINKED_ROLE if exists else SERVICE_LINKED_ROLE_TEXT

    stack: dict[str, Any] | None = None

    def stack_state() -> tuple[bool, str]:
        nonlocal stack
        stack = describe_stack(plan, runner)
        status = stack["StackStatus"] if stack else "not created yet"
        if status == "ROLLBACK_COMPLETE":
            return False, rollback_complete_text(plan.stack)
        return status == "not created yet" or status in SETTLED, f"{plan.stack}: {status}"

    def allowlist() -> tuple[bool, str]:
        guilds, open_to_all = allowlist_state(plan, stack)
        if open_to_all:
            return True, "every guild (--allow-all-guilds)"
        return bool(guilds), f"{len(guilds)} guild(s)" if guilds else EMPTY_ALLOWLIST_TEXT

    def discord() -> tuple[bool, str]:
        problems = []
        if not (plan.application_id.isdigit() and 15 <= len(plan.application_id) <= 21):
            problems.append("TIMMYBOT_DISCORD_APPLICATION_ID (General Information > Application ID)")
        if len(plan.public_key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in plan.public_key):
            problems.append("TIMMYBOT_DISCORD_PUBLIC_KEY (General Information > Public Key)")
        token = os.environ.get("TIMMYBOT_DISCORD_BOT_TOKEN") or _get_parameter(
            runner.aws_client("ssm", plan.region), plan.parameter("discord-bot-token")
        )
        if not token:
            problems.append("TIMMYBOT_DISCORD_BOT_TOKEN (Bot > Reset Token), or the stored parameter")
        return not problems, "application id, public key, bot token" if not problems else "set " + ", ".join(problems)

    def image() -> tuple[bool, str]:
        if plan.image_tag.endswith("-dirty"):
            return False, "the work tree has uncommitted changes: commit them (the tag names a commit)"
        repository = {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}.get(
            "VoiceRepositoryUri"
        )
        if repository and image_pushed(plan, runner, repository):
            return True, f"{repository}:{plan.image_ref} is pushed"
        if plan.skip_image:
            return False, missing_image_text(f"{repository or '<no repository yet>'}:{plan.image_ref}")
        return True, f"{plan.image_ref} will be built and pushed"

    check("credentials", credentials)
    check("region", region)
    check("ECS service-linked role", linked_role)
    check("stack state", stack_state)
    check("allowlist", allowlist)
    check("Discord application settings", discord)
    check("image tag", image)
    for name, ok, detail in results:
        runner.say(f"  [{'ok' if ok else '!!'}] {name}: {detail}")
    failed = [name for name, ok, _ in results if not ok]
    runner.say("ready to deploy." if not failed else f"not ready: {', '.join(failed)}")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------


def execute(plan: Plan, runner: Runner) -> None:
    steps: list[tuple[str, Callable[[], Any]]] = []
    state: dict[str, Any] = {}

    def add(name: str, action: Callable[[], Any]) -> None:
        steps.append((name, action))

    add("preflight", lambda: step_preflight(plan, runner))
    add("secrets", lambda: step_secrets(plan, runner))
    add("bucket", lambda: state.__setitem__("bucket", step_bucket(plan, runner)))
    add(
        "image",
        lambda: state.__setitem__(
            "pushed", step_image(plan, runner, None if runner.dry_run else stack_outputs(plan, runner))
        ),
    )
    add("package", lambda: state.__setitem__("package", step_package(plan, runner, state["bucket"])))
    add("deploy", lambda: step_deploy(plan, runner, state["package"][0], state["package"][1], state["bucket"]))
    add("image (first deploy)", lambda: state["pushed"] or step_image(plan, runner, stack_outputs(plan, runner)))
    add("commands", lambda: step_commands(plan, runner))
    add("urls", lambda: step_urls(plan, runner, None if runner.dry_run else stack_outputs(plan, runner)))

    for number, (name, action) in enumerate(steps, start=1):
        runner.say(f"[{number}/{len(steps)}] {name}")
        if name == "image (first deploy)" and runner.dry_run:
            runner.say("    only when step 4 found no repository yet (the stack's first deploy)")
            continue
        try:
            action()
        except DeployError as exc:
            raise DeployError(f"step {number} ({name}) failed: {exc}") from exc
        except Exception as exc:  # boto3/botocore errors and the like: name the step, keep the message
            raise DeployError(f"step {number} ({name}) failed: {type(exc).__name__}: {exc}") from exc


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=STAGES, default="dev")
    parser.add_argument(
        "--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    parser.add_argument(
        "--capacity",
        choices=CAPACITIES,
        default="x86-spot",
        help="voice tasks on x86 Spot (default), x86 on-demand, or ARM on-demand",
    )
    parser.add_argument(
        "--command-guild",
        default="",
        metavar="ID",
        help="register the slash commands to this guild only (instant) instead of globally",
    )
    parser.add_argument("--skip-image", action="store_true", help="keep the image already pushed for this commit")
    parser.add_argument("--skip-commands", action="store_true", help="do not register the slash commands")
    parser.add_argument(
        "--allow-guild",
        action="append",
        default=[],
        metavar="ID",
        help="allow this guild (repeatable), besides chalice_app/chalicelib/allowlist.txt; kept by later deploys",
    )
    parser.add_argument("--allow-all-guilds", action="store_true", help="open the bot to every guild")
    parser.add_argument("--alarm-email", default="", metavar="ADDRESS", help="subscribe this address to the alarms")
    parser.add_argument("--google-client-id", default="", metavar="ID", help="Google OAuth client id (/link)")
    parser.add_argument("--spotify-client-id", default="", metavar="ID", help="Spotify app client id (/link)")
    parser.add_argument(
        "--spotify-redirect-uri",
        default="",
        metavar="URL",
        help="defaults to the stack's own callback URL once it exists (the second deploy)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="JSON object of these settings (allow_guild, alarm_email, google_client_id, ...); flags win",
    )
    parser.add_argument(
        "--delete-failed-stack",
        action="store_true",
        help="a stack in ROLLBACK_COMPLETE: delete it (after a confirm) and deal with what it retained",
    )
    parser.add_argument(
        "--transform-locally",
        action="store_true",
        help="run the SAM transform here (aws-sam-translator) and deploy the plain template it makes, written "
        "to build/<stack>.template.json: the deploy role needs no transform permission",
    )
    parser.add_argument("--yes", action="store_true", help="answer yes to every confirm")
    parser.add_argument("--check", action="store_true", help="the first-deploy checklist; changes nothing")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; call neither AWS nor docker")
    args = parser.parse_args(argv)
    if args.config is not None:
        try:
            config = json.loads(args.config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            parser.error(f"--config {args.config}: {exc}")
        known = {"allow_guild", "allow_all_guilds", "alarm_email", "google_client_id", "spotify_client_id",
                 "spotify_redirect_uri"}  # fmt: skip
        unknown = sorted(set(config) - known)
        if unknown:
            parser.error(
                f"--config {args.config}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        for key, value in config.items():
            if key == "allow_guild":
                args.allow_guild = [str(v) for v in (value if isinstance(value, list) else [value])] + args.allow_guild
            elif key == "allow_all_guilds":
                args.allow_all_guilds = args.allow_all_guilds or bool(value)
            elif not getattr(args, key):
                setattr(args, key, str(value))
    bad = [g for g in args.allow_guild if not (g.isdigit() and 15 <= len(g) <= 21)]
    if bad:
        parser.error(f"--allow-guild takes guild ids (numbers): {', '.join(bad)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runner = Runner(dry_run=args.dry_run)
    if not args.dry_run and not args.check:
        try:
            lambda_runtime.require_pinned_python(sys.argv[1:] if argv is None else argv, script=Path(__file__))
        except lambda_runtime.RuntimeRefused as exc:
            print(f"deploy stopped: {exc}", file=sys.stderr)
            return 1
    try:
        plan = Plan(
            stage=args.stage,
            region=args.region,
            capacity=args.capacity,
            image_tag=git_commit(),
            application_id=os.environ.get("TIMMYBOT_DISCORD_APPLICATION_ID", ""),
            public_key=os.environ.get("TIMMYBOT_DISCORD_PUBLIC_KEY", ""),
            command_guild=args.command_guild,
            skip_image=args.skip_image,
            skip_commands=args.skip_commands,
            allow_guilds=tuple(args.allow_guild),
            allow_all_guilds=args.allow_all_guilds,
            alarm_email=args.alarm_email,
            google_client_id=args.google_client_id,
            spotify_client_id=args.spotify_client_id,
            spotify_redirect_uri=args.spotify_redirect_uri,
            delete_failed_stack=args.delete_failed_stack,
            assume_yes=args.yes,
            transform_locally=args.transform_locally,
        )
        if args.check:
            return run_check(plan, Runner(dry_run=False))
        runner.say(("DRY RUN - " if args.dry_run else "") + f"deploying TimmyBot {plan.stage}")
        execute(plan, runner)
    except DeployError as exc:
        print(f"\ndeploy stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        if "plan" in locals():
            shutil.rmtree(plan.workdir, ignore_errors=True)
    runner.say("\ndone." if not args.dry_run else "\ndry run: nothing was called.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
