"""Secrets named by settings, fetched once per container (never logged, never in plain env values).

In AWS the Lambdas get parameter NAMES (``TIMMYBOT_DISCORD_BOT_TOKEN_PARAMETER`` …), not values:
the SSM SecureString parameters are read with decryption on first use. The voice task instead
receives its bot token through the ECS task definition's ``secrets`` field. Locally, the values
themselves come from the environment and nothing is fetched.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from timmybot.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

_log = logging.getLogger(__name__)


class SecretUnavailableError(RuntimeError):
    """A secret the settings name could not be read (missing parameter, no permission)."""


def load_parameter_secrets(settings: Settings, *, client: SSMClient | Any | None = None) -> Settings:
    """Settings with every secret that names an SSM parameter (and has no value yet) filled in."""
    wanted: dict[str, str] = {}
    if not settings.discord_bot_token and settings.discord_bot_token_parameter:
        wanted["discord_bot_token"] = settings.discord_bot_token_parameter
    if not wanted:
        return settings
    ssm = client or _ssm_client(settings)
    values: dict[str, Any] = {}
    for field_name, parameter in wanted.items():
        try:
            response = ssm.get_parameter(Name=parameter, WithDecryption=True)
        except Exception as exc:  # botocore's ClientError and friends; the name is safe to log
            raise SecretUnavailableError(f"could not read the SSM parameter {parameter}: {exc}") from exc
        values[field_name] = str(response["Parameter"]["Value"])
        _log.info("loaded %s from parameter %s", field_name, parameter)
    return replace(settings, **values)


def _ssm_client(settings: Settings) -> Any:
    import boto3  # noqa: PLC0415 - only when a parameter must be read

    return boto3.client("ssm", region_name=settings.aws_region)
