"""Run TimmyBot on this machine: SQLite store, local launcher, ``chalice local`` on 127.0.0.1.

Started by ``python3 scripts/dev.py run`` inside the project's venv.

* With Discord credentials in the environment (TIMMYBOT_DISCORD_APPLICATION_ID,
  TIMMYBOT_DISCORD_PUBLIC_KEY, TIMMYBOT_DISCORD_BOT_TOKEN) it serves the real Discord: expose
  port 8000 with any tunnel and paste ``<tunnel>/interactions`` into the Developer Portal.
* Without them it generates a development Ed25519 key pair under the data folder, starts the
  loopback Discord emulator, and runs the demo: signed interactions, each round trip printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "core" / "python"), str(ROOT)]

PORTAL = "https://discord.com/developers/applications"
# What serving the real Discord takes, and where each value is in the Developer Portal (your application).
REAL_DISCORD_SETTINGS: dict[str, str] = {
    "TIMMYBOT_DISCORD_APPLICATION_ID": "General Information > Application ID",
    "TIMMYBOT_DISCORD_PUBLIC_KEY": "General Information > Public Key",
    "TIMMYBOT_DISCORD_BOT_TOKEN": "Bot > Reset Token (shown once; keep it secret)",
}


def missing_real_discord(env: dict[str, str]) -> list[str]:
    """The real-Discord settings ``env`` lacks (read before the demo fills in its stand-ins)."""
    return [name for name in REAL_DISCORD_SETTINGS if not env.get(name)]


def real_discord_needs(missing: list[str]) -> list[str]:
    """The first screen's lines: each missing setting and where to get it."""
    if not missing:
        return []
    lines = [f"  Real Discord would still need {len(missing)} setting(s), from {PORTAL} (your application):"]
    lines += [f"    {name}: {REAL_DISCORD_SETTINGS[name]}" for name in missing]
    lines.append("  Put them in .env (or the environment) and run again.")
    return lines


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (comments and blanks skipped; no interpolation)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip().strip('"').strip("'")
        if key.startswith("TIMMYBOT_") and value:
            values[key] = value
    return values


def dev_signing_key(data_dir: Path) -> tuple[str, str, bool]:
    """(private seed hex, public key hex, created now) of the development key pair."""
    from nacl.signing import SigningKey  # noqa: PLC0415 - imported inside the venv

    path = data_dir / "dev_signing_key.hex"
    created = False
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        seed = SigningKey.generate().encode().hex()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(seed + "\n")
        created = True
    seed = path.read_text().strip()
    public = SigningKey(bytes.fromhex(seed)).verify_key.encode().hex()
    return seed, public, created


def wait_for_health(base_url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"chalice local exited with code {process.returncode} before it was ready.")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
                return dict(json.loads(response.read()))
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
            time.sleep(0.2)
    raise SystemExit(f"chalice local did not answer /health within {timeout_s:.0f} s ({last_error}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data-dir", default=os.environ.get("TIMMYBOT_DATA_DIR", str(ROOT / ".local")))
    parser.add_argument("--once", action="store_true", help="run the demo (if any) and exit instead of serving")
    parser.add_argument("--env-file", default=str(ROOT / ".env"), help="TIMMYBOT_* settings file (default: .env)")
    args = parser.parse_args(argv)

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://{args.host}:{args.port}"
    env = dict(os.environ)
    for key, value in read_env_file(Path(args.env_file)).items():
        env.setdefault(key, value)  # the real environment wins over .env
    env.setdefault("TIMMYBOT_STORE_BACKEND", "sqlite")
    env.setdefault("TIMMYBOT_SQLITE_PATH", str(data_dir / "timmybot.sqlite3"))
    env.setdefault("TIMMYBOT_DATA_DIR", str(data_dir))
    env.setdefault("TIMMYBOT_LAUNCHER", "local")
    env.setdefault("TIMMYBOT_DISPATCHER", "thread")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "layers" / "core" / "python"), str(ROOT), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)

    missing = missing_real_discord(env)
    real_discord = not missing
    signing_seed: str | None = None
    if not env.get("TIMMYBOT_DISCORD_PUBLIC_KEY"):
        signing_seed, public_key, created = dev_signing_key(data_dir)
        env["TIMMYBOT_DISCORD_PUBLIC_KEY"] = public_key
        verb = "Generated" if created else "Using"
        print(f"{verb} a development Ed25519 key pair in {data_dir.name}/dev_signing_key.hex")
        print(f"  public key: {public_key}")

    demo = None
    if not real_discord:
        from scripts.demo import Demo  # noqa: PLC0415 - test-support code, demo mode only

        demo = Demo(data_dir=data_dir, signing_seed=signing_seed)
        env.update(demo.start())

    print(f"Starting chalice local on {base_url} (SQLite store: {Path(env['TIMMYBOT_SQLITE_PATH']).name})")
    chalice = Path(sys.executable).with_name("chalice")
    server = subprocess.Popen(
        [str(chalice), "local", "--stage", "local", "--host", args.host, "--port", str(args.port), "--no-autoreload"],
        cwd=ROOT / "chalice_app",
        env=env,
    )
    try:
        health = wait_for_health(base_url, server)
        print(f"TimmyBot {health.get('version')} is listening.")
        print(f"  Interactions endpoint: {base_url}/interactions")
        print("  Expose it with any HTTPS tunnel and paste <tunnel-url>/interactions into the Discord")
        print("  Developer Portal (General Information → Interactions Endpoint URL).")
        if real_discord:
            print("  Discord credentials found: serving the real Discord.")
        else:
            for line in real_discord_needs(missing):
                print(line)
            print("  No credentials: running the demo against the loopback Discord emulator.\n")
            assert demo is not None
            demo.run(f"{base_url}/interactions")
        if args.once:
            return 0
        print("\nServing until Ctrl-C.")
        server.wait()
        return server.returncode or 0
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if demo is not None:
            demo.stop()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
