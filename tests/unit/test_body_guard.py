"""The suite's body guard (tests/conftest.py) fails a test that sent what Discord refuses, and lets
one through that carries ``discord_refusal_expected``: shown by running such a test in a pytest of
its own (pytester, in-process), with the suite's own guard fixture and emulator."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# The inner run sends its refused body through this process's emulator rules, so this outer test
# sees the finding too: it sends a bad body on purpose.
pytestmark = [pytest.mark.discord_refusal_expected, pytest.mark.timeout(60)]

CONFTEST = """
from tests.conftest import _bodies_discord_would_take  # noqa: F401  (the suite's guard, autouse)


def pytest_configure(config):
    config.addinivalue_line("markers", "discord_refusal_expected: sends bodies Discord refuses on purpose")
"""

TEST = '''
import json
import urllib.error
import urllib.request

import pytest

from tests.support.emulator import DiscordEmulator


def _send_typo() -> int:
    """A message whose allowed_mentions is misspelt: Discord would ignore the key, and ping."""
    body = {{"content": "@everyone hi", "allowed_mention": {{"parse": []}}}}
    with DiscordEmulator() as emulator:
        guild = emulator.add_guild("Guard guild")
        request = urllib.request.Request(
            emulator.api_base + f"/channels/{{guild.text_channel_id}}/messages",
            json.dumps(body).encode(),
            {{"Content-Type": "application/json", "Authorization": f"Bot {{emulator.bot_token}}"}},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, context=emulator.ssl_context(), timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


{marker}
def test_sends_an_allowed_mention_typo() -> None:
    assert _send_typo() == 400
'''


def _run(pytester: pytest.Pytester, marker: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_typo=TEST.format(marker=marker))
    return pytester.runpytest("-p", "no:cacheprovider", "-q")


def test_an_unmarked_test_that_sends_a_refused_body_fails_the_run(pytester: pytest.Pytester) -> None:
    result = _run(pytester, marker="")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, errors=1)  # the test itself passed; the guard failed it at teardown
    refused = "*Discord would refuse or ping:*refused POST /channels/{channel_id}/messages*allowed_mention*"
    result.stdout.fnmatch_lines([refused])


def test_the_same_test_marked_as_refusing_on_purpose_passes(pytester: pytest.Pytester) -> None:
    result = _run(pytester, marker="@pytest.mark.discord_refusal_expected")

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
