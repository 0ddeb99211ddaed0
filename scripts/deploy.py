#!/usr/bin/env python3
"""Deploy TimmyBot to your AWS account: one CloudFormation stack per stage.

    python scripts/deploy.py --stage dev --dry-run     # print the plan; calls neither AWS nor docker
    python scripts/deploy.py --stage dev               # do it

Steps, in order, each idempotent; the first failure stops the run with the step's name:

 1. preflight   git commit (the image tag), tools on PATH (aws, docker), the AWS account
 2. secrets     SSM SecureString parameters under /timmybot/<stage>/ from the environment
                (TIMMYBOT_DISCORD_BOT_TOKEN, TIMMYBOT_GOOGLE_CLIENT_SECRET, TIMMYBOT_SPOTIFY_CLIENT_SECRET);
                unchanged values are not rewritten, values never appear on a command line;
                the link key (/timmybot/<stage>/link-key, read by the api alone) is generated once
 3. bucket      the artifact bucket for packaged code (private, encrypted), created once
 4. image       build and push the voice image tagged with the commit, unless ECR has that tag
                (on the very first deploy the repository does not exist yet: pushed after step 6)
 5. package     the core layer zip, `chalice package --merge-template infra/template.yaml`,
                `aws cloudformation package` (uploads code and layers)
 6. deploy      `aws cloudformation deploy` (no change set when nothing changed)
 7. commands    register the slash commands (scripts/register_commands.py)
 8. urls        print the Interactions Endpoint URL and the OAuth callback URL for the portals

Environment: AWS credentials as usual (CI assumes a role through OIDC), AWS_REGION or --region,
TIMMYBOT_DISCORD_APPLICATION_ID and TIMMYBOT_DISCORD_PUBLIC_KEY (both public).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # the runtime pin and the zips' bytecode (issue 16, Build 8)
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
INTERACTIONS_PATH = "interactions"
SPOTIFY_CALLBACK_PATH = "oauth/spotify/callback"


class DeployError(RuntimeError):
    """A step failed; the message says what to do."""


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
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="timmybot-deploy-")))

    @property
    def stack(self) -> str:
        return f"timmybot-{self.stage}"

    @property
    def platform(self) -> str:
        return "linux/arm64" if self.capacity == "arm64" else "linux/amd64"

    def parameter(self, name: str) -> str:
        return f"/timmybot/{self.stage}/{name}"

    def overrides(self) -> list[str]:
        return [
            f"Stage={self.stage}",
            f"ImageTag={self.image_tag}",
            f"VoiceCapacity={self.capacity}",
            f"DiscordApplicationId={self.application_id}",
            f"DiscordPublicKey={self.public_key}",
        ]


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
        return
    absent = [tool for tool in tools if shutil.which(tool) is None]
    if absent:
        raise DeployError(f"install {', '.join(absent)} first")
    identity = runner.aws_client("sts", plan.region).get_caller_identity()
    runner.say(f"    account {identity['Account']}")


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
    cfn = runner.aws_client("cloudformation", plan.region)
    try:
        stacks = cfn.describe_stacks(StackName=plan.stack)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def step_image(plan: Plan, runner: Runner, outputs: dict[str, str] | None) -> bool:
    """Build and push the image; False when it must wait until the stack (and its repository) exists."""
    if plan.skip_image:
        runner.say("    skipped (--skip-image)")
        return True
    if runner.dry_run:
        uri = "<VoiceRepositoryUri>"
    elif outputs is None or "VoiceRepositoryUri" not in outputs:
        runner.say("    first deploy: the repository is created by the stack; pushing after step 6")
        return False
    else:
        uri = outputs["VoiceRepositoryUri"]
    if not runner.dry_run:
        ecr = runner.aws_client("ecr", plan.region)
        try:
            ecr.describe_images(repositoryName=uri.split("/", 1)[1], imageIds=[{"imageTag": plan.image_tag}])
            runner.say(f"    {uri}:{plan.image_tag} already pushed")
            return True
        except ecr.exceptions.ImageNotFoundException:
            pass
    registry = uri.split("/", 1)[0]
    image = f"{uri}:{plan.image_tag}"
    runner.run(["docker", "build", "--platform", plan.platform, "-f", str(DOCKERFILE), "-t", image, str(ROOT)])
    if runner.dry_run:
        runner.say(f"    would log docker in to {registry} (password through stdin) and push {image}")
        return True
    password = runner.run(["aws", "ecr", "get-login-password", "--region", plan.region]).strip()
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


def step_package(plan: Plan, runner: Runner, bucket: str) -> Path:
    out = plan.workdir / "package"
    packaged = plan.workdir / "packaged.yaml"
    chalice_package(plan.stage, out, runner=runner, region=plan.region)
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
        ]
    )
    return packaged


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
    runner.run(
        [
            str(chalice) if chalice.exists() else "chalice",
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(MERGE_TEMPLATE),
            str(out),
        ],
        cwd=app_dir,
        env=env,
    )
    if runner.dry_run:
        runner.say(f"    would write {out / CORE_LAYER_ZIP} (layers/build_layer.py)")
    else:
        build_layer(out / CORE_LAYER_ZIP, CORE_SOURCE)
    if runner.dry_run:
        runner.say(f"    would compile every zip in {out} ({lambda_runtime.RUNTIME} .pyc, unchecked-hash)")
    else:
        lambda_runtime.compile_zips(out)
    return out / "sam.yaml"


def step_deploy(plan: Plan, runner: Runner, template: Path) -> None:
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
            "--parameter-overrides",
            *plan.overrides(),
        ]
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
    add("package", lambda: state.__setitem__("template", step_package(plan, runner, state["bucket"])))
    add("deploy", lambda: step_deploy(plan, runner, state["template"]))
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
    parser.add_argument("--dry-run", action="store_true", help="print the plan; call neither AWS nor docker")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runner = Runner(dry_run=args.dry_run)
    if not args.dry_run:
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
        )
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
