"""The warm starter forks what a cold ``python -m voice_task`` would be, and serves only starts it can."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulator.tls import new_authority, shared_authority
from tests.support.warm_start import WarmStarter
from timmybot.launcher.local import CORE_PYTHON
from timmybot.launcher.local import REPO_ROOT as ROOT


@pytest.fixture
def starter(tmp_path: Path) -> Iterator[WarmStarter]:
    warm = WarmStarter(tmp_path, shared_authority().pem)
    yield warm
    warm.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMMYBOT_")}
    ca_file = tmp_path / "emulator-ca.pem"
    ca_file.write_bytes(shared_authority().pem)
    env.update(SSL_CERT_FILE=str(ca_file), PYTHONPATH=os.pathsep.join([str(CORE_PYTHON), str(ROOT)]))
    env.update(extra)
    return env


def _cold(env: dict[str, str], log_path: Path) -> int:
    with log_path.open("wb") as log:
        return subprocess.run(
            [sys.executable, "-m", "voice_task"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            timeout=60, check=False,
        ).returncode  # fmt: skip


def test_a_warm_start_exits_and_writes_as_a_cold_one_does(starter: WarmStarter, tmp_path: Path) -> None:
    # GIVEN settings the voice task refuses (no guild), then settings it cannot parse
    cases = {"no-guild": _env(tmp_path), "bad-setting": _env(tmp_path, TIMMYBOT_TICK_S="soon")}
    for name, env in cases.items():
        assert starter.serves(env, extra_python_path=False)
        cold_log, warm_log = tmp_path / f"{name}-cold.log", tmp_path / f"{name}-warm.log"
        warm_log.write_bytes(b"")

        # WHEN each starts cold and warm
        cold = _cold(env, cold_log)
        warm = starter.start(cwd=ROOT, env=env, log_path=warm_log).wait(timeout=60)

        # THEN both exit the same way and say the same thing, in the log file given
        assert (warm, warm_log.read_text()) == (cold, cold_log.read_text()), name
        assert cold == 2
        assert "voice_task:" in cold_log.read_text()


def test_a_warm_child_reports_its_death_by_signal_as_popen_does(starter: WarmStarter, tmp_path: Path) -> None:
    # GIVEN a warm task still waiting for a Discord that takes the connection and never answers
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    env = _env(
        tmp_path, TIMMYBOT_GUILD_ID="1", TIMMYBOT_STORE_BACKEND="sqlite",
        TIMMYBOT_SQLITE_PATH=str(tmp_path / "store.sqlite3"), TIMMYBOT_DISCORD_BOT_TOKEN="token",
        TIMMYBOT_DISCORD_APPLICATION_ID="1", TIMMYBOT_DISCORD_API_BASE=f"https://127.0.0.1:{port}/api/v10",
        TIMMYBOT_DISCORD_GATEWAY_URL=f"wss://127.0.0.1:{port}/gateway",
    )  # fmt: skip
    log_path = tmp_path / "task.log"
    log_path.write_bytes(b"")
    with silent:
        child = starter.start(cwd=ROOT, env=env, log_path=log_path)
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)

        # WHEN it is killed
        child.kill()

        # THEN its return code is -SIGKILL, and it is never signalled again once reaped
        assert child.wait(timeout=30) == -signal.SIGKILL, log_path.read_text()[-2000:]
    child.kill()
    assert child.poll() == -signal.SIGKILL


def test_it_refuses_starts_whose_import_time_inputs_differ(starter: WarmStarter, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(new_authority().pem)

    assert starter.serves(_env(tmp_path), extra_python_path=False)
    assert not starter.serves(_env(tmp_path), extra_python_path=True)
    assert not starter.serves(_env(tmp_path, SSL_CERT_FILE=str(other_ca)), extra_python_path=False)
    assert not starter.serves(_env(tmp_path, SSL_CERT_FILE=str(tmp_path / "missing.pem")), extra_python_path=False)


def test_a_piped_warm_bot_has_the_pipes_and_exit_a_cold_one_has(starter: WarmStarter, tmp_path: Path) -> None:
    # GIVEN the minimal bot's environment without the emulator it needs (so it fails at once, on stderr)
    env = {**_env(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH")

    # WHEN it starts cold, as Popen with three pipes, and warm, with the pipes the starter hands over
    cold = subprocess.run([sys.executable, "-m", "tests.support.minimal_bot"], cwd=ROOT, env=env,
                          input="", capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    warm = starter.start_piped(main="minimal_bot", cwd=ROOT, env=env)
    assert warm.stdin is not None and warm.stdout is not None and warm.stderr is not None
    warm.stdin.close()
    warm_out, warm_err = warm.stdout.read(), warm.stderr.read()  # end of file: the child's ends are closed
    code = warm.wait(timeout=60)

    # THEN both exit the same way and end their stderr with the same error; neither wrote to stdout
    assert code == cold.returncode == 1
    assert warm_err.strip().splitlines()[-1] == cold.stderr.strip().splitlines()[-1] == "KeyError: 'EMU_API_BASE'"
    assert warm_out == cold.stdout == ""


def test_it_answers_a_start_it_cannot_make_with_an_error_and_keeps_serving(
    starter: WarmStarter, tmp_path: Path
) -> None:
    with pytest.raises(AssertionError, match="no such main: 'nothing'"):
        starter.start_piped(main="nothing", cwd=ROOT, env=_env(tmp_path))
    log_path = tmp_path / "task.log"
    log_path.write_bytes(b"")
    assert starter.start(cwd=ROOT, env=_env(tmp_path), log_path=log_path).wait(timeout=60) == 2
