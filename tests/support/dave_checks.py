"""Checks every voice test gets for free: what a Discord listener would see of the bot's DAVE.

- ``privacy_code_problems``: each privacy code the voice task logged after a DAVE transition must be
  one the libdave listeners computed from the same epoch (the codes users compare in Discord's UI),
  and a bot that shared a group with a listener must have logged one.
- ``report_problems``: what a finished emulator saw that real listeners would not accept (plain Opus
  frames while DAVE was in force, libdave failures, frames that are not Opus audio).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tests.support.emulator import DiscordEmulator
from tests.support.emulator.server import EmulatorReport

PRIVACY_CODE_LINE = re.compile(r"privacy code (\d{30})\b")


def bot_privacy_codes(logs: Iterable[str]) -> list[str]:
    """The privacy codes the voice task logged (``voice_task.voice_client``), in order."""
    return [m.group(1) for text in logs for m in PRIVACY_CODE_LINE.finditer(text)]


def privacy_code_problems(emulator: DiscordEmulator, guild_id: int, logs: Iterable[str]) -> list[str]:
    bot = bot_privacy_codes(logs)
    heard = {code.code for code in emulator.privacy_codes(guild_id)}
    problems = [f"the bot's privacy code {code} matches no listener's" for code in bot if code not in heard]
    joined_bot = any(e.kind == "mls_announce_commit_transition" for e in emulator.dave_events(guild_id))
    if heard and joined_bot and not bot:
        problems.append("listeners shared a DAVE group with the bot, but the bot logged no privacy code")
    return problems


def report_problems(report: EmulatorReport, *, plaintext_ok: bool = False, not_audio_ok: bool = False) -> list[str]:
    problems = []
    if report.plaintext_frames and not plaintext_ok:
        problems.append(f"{report.plaintext_frames} Opus frames went out in plain text while DAVE was in force")
    problems += [f"a libdave listener failed: {failure}" for failure in report.listener_failures[:5]]
    if report.not_audio_frames and not not_audio_ok:
        problems.append(f"{report.not_audio_frames} frames were not Opus audio (Ogg headers or empty)")
    return problems
