"""``python -m voice_task --self-check``: is everything the task needs present?

Checks ffmpeg (its libopus encoder, and every filter the audio chain may use: ``ffmpeg -filters``),
libopus for discord.py's PCM path, davey (DAVE E2EE, mandatory since March 2026), PyNaCl, a
JavaScript runtime for current yt-dlp, and the settings.
Prints one line per check and exits non-zero naming what is missing.
"""

from __future__ import annotations

import ctypes.util
import importlib
import shutil
import subprocess
import sys
from collections.abc import Callable

from timmybot.config import Settings

Check = tuple[str, Callable[[], str]]


class Missing(Exception):
    """The check failed; the message says what is missing and how to get it."""


def _ffmpeg(settings: Settings) -> str:
    from voice_task.audio import ffmpeg_executable  # noqa: PLC0415

    exe = ffmpeg_executable(settings.ffmpeg_path)
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-encoders"], check=False, capture_output=True, text=True, timeout=20
        )
    except OSError as exc:
        raise Missing(f"ffmpeg could not run ({exc})") from exc
    if "libopus" not in out.stdout:
        raise Missing(f"{exe} has no libopus encoder")
    return exe


def _ffmpeg_filters(settings: Settings) -> str:
    """Every filter ``timmybot.filters.audio_filter_chain`` can ask for is in this ffmpeg's ``-filters``."""
    from timmybot.filters import required_filters  # noqa: PLC0415
    from voice_task.audio import ffmpeg_executable  # noqa: PLC0415

    exe = ffmpeg_executable(settings.ffmpeg_path)
    try:
        out = subprocess.run([exe, "-hide_banner", "-filters"], check=False, capture_output=True, text=True, timeout=20)
    except OSError as exc:
        raise Missing(f"ffmpeg could not run ({exc})") from exc
    listed = {line.split()[1] for line in out.stdout.splitlines() if len(line.split()) >= 3}
    needed = required_filters()
    missing = [name for name in needed if name not in listed]
    if missing:
        raise Missing(f"{exe} lacks the audio filters {', '.join(missing)}")
    return f"{len(needed)} filters: {', '.join(needed)}"


def _libopus() -> str:
    import discord.opus  # noqa: PLC0415

    if discord.opus.is_loaded():
        return "loaded"
    name = ctypes.util.find_library("opus")
    if name is None:
        raise Missing("libopus not found (Debian: apt-get install libopus0); only the re-encode-free path works")
    discord.opus.load_opus(name)
    return name


def _module(name: str) -> Callable[[], str]:
    def check() -> str:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise Missing(f"python package {name} is not installed ({exc})") from exc
        return str(getattr(module, "__version__", "installed"))

    return check


def _js_runtime() -> str:
    for candidate in ("deno", "node"):
        path = shutil.which(candidate)
        if path:
            return path
    raise Missing("no JavaScript runtime (deno or node) on PATH: current yt-dlp needs one for YouTube")


def _settings(settings: Settings, guild_id: str) -> str:
    problems = []
    if not settings.discord_bot_token:
        problems.append("TIMMYBOT_DISCORD_BOT_TOKEN")
    if settings.store_backend == "dynamodb" and not settings.dynamodb_table:
        problems.append("TIMMYBOT_DYNAMODB_TABLE")
    if problems:
        raise Missing("settings missing: " + ", ".join(problems))
    return f"store={settings.store_backend} guild={guild_id or '(given at launch)'}"


def run_self_check(settings: Settings, *, guild_id: str = "", require_js: bool = True) -> int:
    checks: list[Check] = [
        ("ffmpeg", lambda: _ffmpeg(settings)),
        ("ffmpeg filters", lambda: _ffmpeg_filters(settings)),
        ("libopus", _libopus),
        ("davey", _module("davey")),
        ("PyNaCl", _module("nacl")),
        ("discord.py", _module("discord")),
        ("yt-dlp", _module("yt_dlp")),
        ("javascript runtime", _js_runtime),
        ("settings", lambda: _settings(settings, guild_id)),
    ]
    failed = []
    for name, check in checks:
        try:
            detail = check()
        except Missing as exc:
            failed.append(name)
            print(f"MISSING {name}: {exc}")  # noqa: T201
        else:
            print(f"ok      {name}: {detail}")  # noqa: T201
    if failed:
        print(f"self-check failed: {', '.join(failed)}", file=sys.stderr)  # noqa: T201
        return 1
    print("self-check passed")  # noqa: T201
    return 0
