"""scripts/deploy.py --dry-run prints the whole plan and calls nothing; costs.py agrees with COSTS.md.

GIVEN no docker, no aws CLI and no AWS credentials (PATH holds only the Python interpreter)
WHEN the deploy script runs with --dry-run
THEN it exits 0, lists the nine steps in order, and never prints a secret it was given.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from scripts import costs, deploy

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["preflight", "secrets", "bucket", "image", "package", "deploy", "image (first deploy)", "commands", "urls"]


def _bin_with_git(tmp_path: Path) -> Path:
    """A PATH directory holding git only (the image tag is the commit): no docker, no aws."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git is not None
    (bin_dir / "git").symlink_to(git)
    return bin_dir


def _dry_run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    bin_dir = _bin_with_git(tmp_path)
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "TIMMYBOT_DISCORD_APPLICATION_ID": "123456789012345678",
        "TIMMYBOT_DISCORD_PUBLIC_KEY": "ab" * 32,
        "TIMMYBOT_DISCORD_BOT_TOKEN": "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde.this-is-not-a-real-token-but-secret",
        "TIMMYBOT_SPOTIFY_CLIENT_SECRET": "spotify-client-secret-value-xyz",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy.py"), "--dry-run", *extra],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_dry_run_prints_every_step_in_order_and_no_secret(tmp_path: Path) -> None:
    result = _dry_run(tmp_path, "--stage", "prod", "--capacity", "arm64")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    positions = [out.index(f"] {step}\n") for step in STEPS]
    assert positions == sorted(positions)
    assert "chalice package --stage prod --merge-template" in out
    assert "aws cloudformation deploy" in out and "--no-fail-on-empty-changeset" in out
    assert "docker buildx build --load --platform linux/arm64" in out
    assert "ImageTag=" in out and "-arm64" in out
    assert "VoiceCapacity=arm64" in out and "Stage=prod" in out
    assert "/timmybot/prod/discord-bot-token from $TIMMYBOT_DISCORD_BOT_TOKEN" in out
    assert "Interactions Endpoint URL" in out and "/api/interactions" in out
    assert "/api/oauth/spotify/callback" in out
    for secret in ("not-a-real-token", "spotify-client-secret-value"):
        assert secret not in out + result.stderr
    assert "nothing was called" in out


def test_a_real_run_without_tools_stops_at_the_first_step_with_a_clear_message(tmp_path: Path) -> None:
    env = {"PATH": str(_bin_with_git(tmp_path)), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy.py"), "--skip-image"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert "deploy stopped: step 1 (preflight) failed" in result.stderr
    assert "[2/9]" not in result.stdout


def test_urls_for_the_portals() -> None:
    interactions, callback = deploy.urls("https://abc.execute-api.us-east-1.amazonaws.com/api/")
    assert interactions == "https://abc.execute-api.us-east-1.amazonaws.com/api/interactions"
    assert callback == "https://abc.execute-api.us-east-1.amazonaws.com/api/oauth/spotify/callback"


def test_costs_doc_agrees_with_the_prices() -> None:
    assert costs.main(["--check"]) == 0


def test_cost_figures_match_the_brief_numbers() -> None:
    c = costs.Costs(json.loads(costs.PRICES.read_text()))
    x86, arm, spot = c.listening_hours()
    assert round(x86.compute, 4) == 0.0123  # FACTS: minimum task ≈ $0.0123/h on x86
    assert x86.ipv4 == 0.005
    assert arm.compute < x86.compute and spot.compute < arm.compute
    assert c.idle(0) <= 3.0
    assert c.secrets_manager_vault(10_000) > 100 * c.kms_vault(10_000)
    assert c.sessions_per_day() == 900


def test_workflows_use_oidc_and_no_long_lived_keys() -> None:
    workflows = {p.name: p.read_text() for p in (ROOT / ".github" / "workflows").glob("*.yml")}
    assert {"tests.yml", "voice-image.yml", "deploy.yml", "canary.yml"} <= set(workflows)
    for name, text in workflows.items():
        yaml.safe_load(text)
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, name
    assert "id-token: write" in workflows["deploy.yml"] and "role-to-assume" in workflows["deploy.yml"]
    assert "--self-check" in workflows["voice-image.yml"]
    assert "schedule" in workflows["canary.yml"] and "scripts/canary.py" in workflows["canary.yml"]
    assert "bash .ci/run" in workflows["tests.yml"]


class _MotoRunner(deploy.Runner):
    """A real run whose AWS clients are moto's (the one stand-in for AWS here)."""

    def __init__(self) -> None:
        super().__init__(dry_run=False)
        self.said: list[str] = []

    def say(self, text: str) -> None:
        self.said.append(text)

    def aws_client(self, service: str, region: str) -> Any:
        return boto3.client(service, region_name=region)


def test_the_secrets_step_generates_the_link_key_once_and_never_prints_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMMYBOT_DISCORD_BOT_TOKEN", "MTIz.not-a-real-bot-token")
    for name in ("TIMMYBOT_GOOGLE_CLIENT_SECRET", "TIMMYBOT_SPOTIFY_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    plan = deploy.Plan(stage="dev", region="eu-west-1", capacity="arm64", image_tag="t", application_id="1",
                       public_key="ab" * 32)  # fmt: skip
    with mock_aws():
        ssm = boto3.client("ssm", region_name="eu-west-1")
        runner = _MotoRunner()
        deploy.step_secrets(plan, runner)
        first = ssm.get_parameter(Name="/timmybot/dev/link-key", WithDecryption=True)["Parameter"]
        deploy.step_secrets(plan, runner)
        second = ssm.get_parameter(Name="/timmybot/dev/link-key", WithDecryption=True)["Parameter"]

    assert first["Type"] == "SecureString" and len(first["Value"]) == 64
    assert second["Value"] == first["Value"] and second["Version"] == first["Version"]
    assert "    /timmybot/dev/link-key: generated" in runner.said
    assert "    /timmybot/dev/link-key: unchanged" in runner.said
    assert not [line for line in runner.said if first["Value"] in line]
