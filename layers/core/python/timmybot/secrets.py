"""Secrets named by settings (never logged, never in plain env values).

In AWS the Lambdas get parameter NAMES (``TIMMYBOT_DISCORD_BOT_TOKEN_PARAMETER`` …), not values:
``load_parameter_secrets`` reads the SSM SecureString parameters with decryption each time it is
called, so a process calls it once and keeps the result: the Lambdas through
``chalicelib.services.Services.secret_settings`` (on the first need: a job, an account command, a
Discord call; never for a command that needs no secret). The voice task instead receives its bot
token through the ECS task definition's ``secrets`` field. Locally, the values themselves come
from the environment and nothing is fetched.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from timmybot.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

_log = logging.getLogger(__name__)


# The parameter names deploy.py writes under ``oauth_parameter_prefix``.
OAUTH_PARAMETERS = {
    "google_client_secret": "google-client-secret",
    "spotify_client_secret": "spotify-client-secret",
}
OPTIONAL = frozenset({"spotify_client_secret"})  # PKCE needs no secret: a missing parameter is fine


class SecretUnavailableError(RuntimeError):
    """A secret the settings name could not be read (missing parameter, no permission)."""


def load_parameter_secrets(
    settings: Settings, *, client: SSMClient | Any | None = None, oauth: bool = False
) -> Settings:
    """Settings with every secret that names an SSM parameter (and has no value yet) filled in.

    ``oauth=True`` also reads the Google and Spotify client secrets under ``oauth_parameter_prefix``
    and the link key from ``link_key_parameter`` (only the account commands and the OAuth callback
    need them, so only they pay for the extra reads). A missing link key parameter is an error.
    """
    wanted: dict[str, str] = {}
    if not settings.discord_bot_token and settings.discord_bot_token_parameter:
        wanted["discord_bot_token"] = settings.discord_bot_token_parameter
    if oauth:
        wanted.update(_oauth_parameters(settings))
        if not settings.link_key and settings.link_key_parameter:
            wanted["link_key"] = settings.link_key_parameter
    if not wanted:
        return settings
    ssm = client or _ssm_client(settings)
    values: dict[str, Any] = {}
    for field_name, parameter in wanted.items():
        try:
            response = ssm.get_parameter(Name=parameter, WithDecryption=True)
        except Exception as exc:  # botocore's ClientError and friends; the name is safe to log
            if field_name in OPTIONAL and "ParameterNotFound" in type(exc).__name__ + str(exc):
                _log.info("no parameter %s; %s stays empty", parameter, field_name)
                continue
            raise SecretUnavailableError(f"could not read the SSM parameter {parameter}: {exc}") from exc
        values[field_name] = str(response["Parameter"]["Value"])
        _log.info("loaded %s from parameter %s", field_name, parameter)
    return replace(settings, **values)


def _oauth_parameters(settings: Settings) -> dict[str, str]:
    """The OAuth client secrets under ``oauth_parameter_prefix`` (only for clients that are configured)."""
    prefix = settings.oauth_parameter_prefix
    if not prefix:
        return {}
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    wanted: dict[str, str] = {}
    if settings.google_client_id and not settings.google_client_secret:
        wanted["google_client_secret"] = prefix + OAUTH_PARAMETERS["google_client_secret"]
    if settings.spotify_client_id and not settings.spotify_client_secret:
        wanted["spotify_client_secret"] = prefix + OAUTH_PARAMETERS["spotify_client_secret"]
    return wanted


def _ssm_client(settings: Settings) -> Any:
    import boto3  # noqa: PLC0415 - only when a parameter must be read

    return boto3.client("ssm", region_name=settings.aws_region)
