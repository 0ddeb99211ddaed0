"""Account settings: the OAuth client secrets and the link key come from SSM by name, and redirect URIs
follow Spotify's rules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from timmybot.config import Settings, SettingsError
from timmybot.secrets import SecretUnavailableError, load_parameter_secrets

PREFIX = "/timmybot/dev/oauth/"


@pytest.fixture
def ssm() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        client.put_parameter(Name=PREFIX + "google-client-secret", Value="google-secret-Zq8", Type="SecureString")
        yield client


def test_the_oauth_client_secrets_are_read_under_the_oauth_prefix_only_when_asked(ssm: object) -> None:
    settings = Settings(oauth_parameter_prefix=PREFIX, google_client_id="g-client", spotify_client_id="s-client")

    assert load_parameter_secrets(settings, client=ssm) is settings  # the Discord client never pays for them
    loaded = load_parameter_secrets(settings, client=ssm, oauth=True)

    assert loaded.google_client_secret == "google-secret-Zq8"
    assert loaded.spotify_client_secret == ""  # optional with PKCE: a missing parameter is fine
    assert "google-secret-Zq8" not in repr(loaded)


def test_the_link_key_is_read_from_its_parameter_with_the_oauth_secrets_only(ssm: Any) -> None:
    ssm.put_parameter(Name="/timmybot/dev/link-key", Value="L" * 43, Type="SecureString")
    settings = Settings(link_key_parameter="/timmybot/dev/link-key")

    assert load_parameter_secrets(settings, client=ssm).link_key == ""  # the Discord client never reads it
    loaded = load_parameter_secrets(settings, client=ssm, oauth=True)

    assert loaded.link_key == "L" * 43
    assert "L" * 43 not in repr(loaded)
    assert load_parameter_secrets(replace(settings, link_key="M" * 43), client=ssm, oauth=True).link_key == "M" * 43


def test_a_missing_link_key_parameter_is_an_error(ssm: Any) -> None:
    settings = Settings(link_key_parameter="/timmybot/dev/no-such-link-key")

    with pytest.raises(SecretUnavailableError, match="no-such-link-key"):
        load_parameter_secrets(settings, client=ssm, oauth=True)


@pytest.mark.parametrize(
    "uri",
    [
        "https://abc.execute-api.us-east-1.amazonaws.com/api/oauth/spotify/callback",
        "http://127.0.0.1:8000/oauth/spotify/callback",
    ],
)
def test_https_and_loopback_redirect_uris_are_accepted(uri: str) -> None:
    assert Settings.from_env({}, spotify_redirect_uri=uri).spotify_redirect_uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost:8000/oauth/spotify/callback",  # Spotify refuses localhost
        "http://example.com/oauth/spotify/callback",  # plain http off loopback
        "http://127.0.0.1/oauth/spotify/callback",  # loopback needs an explicit port
        "https://example.com/cb#fragment",
    ],
)
def test_redirect_uris_spotify_refuses_are_refused_at_start(uri: str) -> None:
    with pytest.raises(SettingsError, match="spotify_redirect_uri"):
        Settings.from_env({}, spotify_redirect_uri=uri)


def test_the_kms_vault_needs_its_key() -> None:
    with pytest.raises(SettingsError, match="token_key_arn"):
        Settings.from_env({"TIMMYBOT_VAULT_BACKEND": "kms"})
