"""The README's RUN command, as a newcomer runs it (minus the venv set-up, which CI's TEST command does)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.signing import SigningKey

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_without_credentials_answers_a_signed_ping_and_the_demo_plays_440_hz(tmp_path: Path) -> None:
    # GIVEN a fresh data folder and no Discord credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMMYBOT_")}
    port = _free_port()

    # WHEN the run script starts the local stack and its demo once
    result = subprocess.run(
        [
            sys.executable,
            "scripts/run_local.py",
            "--once",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--env-file",
            str(tmp_path / "no.env"),
        ],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    output = result.stdout + result.stderr

    # THEN it made a development key pair, printed its public half and the endpoint,
    assert result.returncode == 0, output[-4000:]
    key_file = tmp_path / "data" / "dev_signing_key.hex"
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    public = SigningKey(bytes.fromhex(key_file.read_text().strip())).verify_key.encode().hex()
    assert f"public key: {public}" in output
    assert f"http://127.0.0.1:{port}/interactions" in output
    # and named the three settings real Discord still needs, each with where the portal shows it
    assert "Real Discord would still need 3 setting(s), from https://discord.com/developers/applications" in output
    assert "    TIMMYBOT_DISCORD_APPLICATION_ID: General Information > Application ID" in output
    assert "    TIMMYBOT_DISCORD_PUBLIC_KEY: General Information > Public Key" in output
    assert "    TIMMYBOT_DISCORD_BOT_TOKEN: Bot > Reset Token" in output
    assert "Real Discord would still need: ." not in output
    # and a PING signed with that key was answered with PONG by the real server.
    assert re.search(r"-> PING\n\s+<- HTTP 200 in \d+ ms: type 1", output), output[-4000:]
    assert re.search(r"-> /queue\n\s+<- HTTP 200", output)
    # and the demo's /play became audio the emulated voice server heard.
    heard = re.search(r"Heard (\d+) Hz for ([\d.]+) s", output)
    assert heard is not None, output[-4000:]
    assert abs(int(heard.group(1)) - 440) <= 10
    assert float(heard.group(2)) >= 1.0
    # through a DAVE listener, as Discord requires, with nothing sent in plain text
    dave = r"decrypted by a DAVE listener \(libdave; privacy code \d{30}\); 0 frames sent in plain text"
    assert re.search(dave, output), output[-4000:]
    # and the privacy code the bot logged after each transition is the one the listener computed.
    codes = r"Privacy codes: the bot's match the listener's \([1-9]\d* DAVE transition"
    assert re.search(codes, output), output[-4000:]
