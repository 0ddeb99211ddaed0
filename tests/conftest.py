"""Suite-wide safety: no test can reach real AWS or read the developer's own settings."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from typing import Any

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


def pytest_configure(config: pytest.Config) -> None:
    """Every botocore session of a test process (each xdist worker runs this) shares one parse of
    botocore's data files, as moto's mock_aws makes each client a new session; moto's serializer
    works out each member's attribute names once (``tests.support.moto_alias_cache``)."""
    from tests.support import botocore_cache, moto_alias_cache  # noqa: PLC0415 - after the credentials above

    botocore_cache.install()
    moto_alias_cache.install()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A test process's last act: every object still alive is put out of the cycle collector's
    reach. The interpreter's own shutdown collections over an xdist worker's whole heap (moto's
    backends, the emulators' recordings) took seconds per worker at the end of every run, to free
    memory the exit frees anyway. Reference counting still frees, and atexit handlers still run."""
    gc.freeze()


@pytest.fixture(autouse=True)
def _no_timmybot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no TIMMYBOT_* variables; tests set what they need."""
    for name in [n for n in os.environ if n.startswith("TIMMYBOT_")]:
        monkeypatch.delenv(name, raising=False)


# -- token leak guard (docs/ACCOUNTS.md): captured logs of the whole suite contain no token or code ----
def pytest_sessionstart(session: pytest.Session) -> None:
    from tests.support.log_guard import install  # noqa: PLC0415

    install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.support.log_guard import GUARD  # noqa: PLC0415

    leaks = GUARD.leaks()
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"TOKEN LEAK: {leak}" for leak in leaks[:20]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _no_token_in_logs() -> Iterator[None]:
    """The same guard per test: the test that logged a token fails (this also works in xdist workers,
    whose session-finish status does not reach the controller)."""
    from tests.support.log_guard import GUARD  # noqa: PLC0415

    before = len(GUARD.leaks())
    yield
    new = GUARD.leaks()[before:]
    if new:
        pytest.fail("token or code in a log line: " + "; ".join(str(leak) for leak in new[:5]), pytrace=False)


@pytest.fixture(autouse=True)
def _network_guard_allowances_end_with_their_test() -> Iterator[None]:
    """What a test let through the network guard (its settings' loopback endpoints, a fake's port) is
    withdrawn after it: a later test's server may get the same ephemeral port, and a refusal test must
    not find it allowed."""
    from timmybot import netguard  # noqa: PLC0415

    before = set(netguard.allowance_entries())
    yield
    netguard.revoke(*(entry for entry in netguard.allowance_entries() if entry not in before))


# -- DAVE guard: no test may send what a real Discord listener would drop ---------------------------
@pytest.fixture(autouse=True)
def _heard_as_discord_listeners_hear_it(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every emulator a test ran saw no plain Opus under DAVE, no libdave failure and no frame that
    is not Opus audio. A test that sends plaintext on purpose (to show the count works) carries
    ``@pytest.mark.plaintext_expected``; one that sends Ogg headers as frames (unmodified discord.py's
    ``FFmpegOpusAudio``), ``@pytest.mark.not_audio_expected``."""
    from tests.support.dave_checks import report_problems  # noqa: PLC0415
    from tests.support.emulator import DiscordEmulator  # noqa: PLC0415

    before = len(DiscordEmulator.finished)
    yield
    plaintext_ok = request.node.get_closest_marker("plaintext_expected") is not None
    not_audio_ok = request.node.get_closest_marker("not_audio_expected") is not None
    problems = [p for report in DiscordEmulator.finished[before:]
                for p in report_problems(report, plaintext_ok=plaintext_ok, not_audio_ok=not_audio_ok)]  # fmt: skip
    if problems:
        pytest.fail("DAVE: " + "; ".join(problems[:5]), pytrace=False)


# -- Discord's rules: no test may send a body Discord refuses, or a message that could ping ----------
@pytest.fixture(autouse=True)
def _bodies_discord_would_take(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every REST body the emulator saw and every /interactions answer passed Discord's spec (made
    strict), its documented limits and the mention rule. Tests that send bad bodies on purpose carry
    ``@pytest.mark.discord_refusal_expected``."""
    from tests.support.emulator.discord_rules import FINDINGS  # noqa: PLC0415

    before = len(FINDINGS)
    yield
    if request.node.get_closest_marker("discord_refusal_expected"):
        return
    found = FINDINGS[before:]
    if found:
        pytest.fail("Discord would refuse or ping: " + " | ".join(str(f) for f in found[:4]), pytrace=False)


# -- scheduling: the slowest files first -------------------------------------------------------------
_LAST_RANK = 3


def _rank(item: pytest.Item) -> int:
    if item.get_closest_marker("slow") is not None:
        return 0
    if "make_stack" in getattr(item, "fixturenames", ()):  # voice tasks playing real-time audio
        return 1
    return 2 if item.get_closest_marker("e2e") is not None or "e2e" in item.path.parts else _LAST_RANK


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files marked ``slow`` run first, then those whose voice tasks play real-time audio, then the other
    end-to-end files, then the quick rest; each file's tests stay together and in their order.

    With ``--dist loadfile`` the workers take files in this order (``--no-loadscope-reorder`` in
    pyproject.toml keeps xdist from re-sorting them by test count, which put the few-test voice files
    last), so a long file never starts near the end and leaves one worker running alone while the
    other idles: the many quick unit and contract files fill the end instead."""
    by_file: dict[Any, int] = {}
    for item in items:
        by_file[item.path] = min(by_file.get(item.path, _LAST_RANK), _rank(item))
    first_seen = {path: index for index, path in enumerate(dict.fromkeys(item.path for item in items))}
    items.sort(key=lambda item: (by_file[item.path], first_seen[item.path]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.support.emulator.discord_rules import LENIENCIES  # noqa: PLC0415

    terminalreporter.write_line(f"Discord body checks: {len(LENIENCIES)} leniencies beyond the spec")
    for leniency in LENIENCIES:
        terminalreporter.write_line(f"  - {leniency.name}: {leniency.reason}")
