"""Suite-wide safety: no test can reach real AWS or read the developer's own settings."""

from __future__ import annotations

import os

import pytest

# Fake credentials and a fixed region before boto3 is imported anywhere: moto intercepts these,
# and a mistake can never touch a real account.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[_name] = _value
for _name in [n for n in os.environ if n.startswith("TIMMYBOT_") or n == "AWS_PROFILE"]:
    del os.environ[_name]


@pytest.fixture(autouse=True)
def _no_timmybot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no TIMMYBOT_* variables; tests set what they need."""
    for name in [n for n in os.environ if n.startswith("TIMMYBOT_")]:
        monkeypatch.delenv(name, raising=False)
