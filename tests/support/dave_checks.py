"""Checks every voice test gets for free: what a Discord listener would see of the bot's DAVE.

- ``privacy_code_problems``: after every DAVE transition the emulator executed in a group of the bot
  and at least one listener, the voice task logged that transition with the privacy code the libdave
  listeners computed for it (the code users compare in Discord's UI): a missing line, a stale code or
  ``privacy code None`` is a problem.
- ``report_problems``: what a finished emulator saw that real listeners would not accept (plain Opus
  frames while DAVE was in force, libdave failures, frames that are not Opus audio).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from tests.support.emulator.dave import DaveEvent
from tests.support.emulator.listener import PrivacyCode
from tests.support.emulator.server import EmulatorReport


class DaveView(Protocol):
    """What the privacy check reads of an emulator (``DiscordEmulator`` has it all)."""

    @property
    def bot_user_id(self) -> int: ...

    def privacy_codes(self, guild_id: int, user_id: int | None = None) -> list[PrivacyCode]: ...

    def dave_events(self, guild_id: int, kind: str | None = None) -> list[DaveEvent]: ...


PRIVACY_CODE_LINE = re.compile(r"privacy code (\d{30})\b")
TRANSITION_LINE = re.compile(r"DAVE transition (\d+) executed; privacy code (\S+)")


def bot_privacy_codes(logs: Iterable[str]) -> list[str]:
    """The privacy codes the voice task logged (``voice_task.voice_client``), in order."""
    return [m.group(1) for text in logs for m in PRIVACY_CODE_LINE.finditer(text)]


def bot_transitions(logs: Iterable[str]) -> list[tuple[int, str | None]]:
    """Each ``(transition id, privacy code)`` the voice task logged on executing a DAVE transition,
    in order; the code is None when the bot logged ``privacy code None``."""
    found = []
    for text in logs:
        for m in TRANSITION_LINE.finditer(text):
            code = m.group(2)
            found.append((int(m.group(1)), None if code == "None" else code))
    return found


def privacy_code_problems(emulator: DaveView, guild_id: int, logs: Iterable[str]) -> list[str]:
    """For every transition the emulator executed in a group of the bot and at least one listener,
    the bot logged that transition id with the code those listeners computed for it."""
    logged: dict[int, list[str | None]] = {}
    for transition_id, code in bot_transitions(logs):
        logged.setdefault(transition_id, []).append(code)
    codes: dict[tuple[int, int], set[str]] = {}
    for computed in emulator.privacy_codes(guild_id):
        codes.setdefault((computed.channel_id, computed.transition_id), set()).add(computed.code)
    bot_id = emulator.bot_user_id
    problems = []
    for event in emulator.dave_events(guild_id, "transition_executed"):
        members = set(event.data.get("members", ()))
        if bot_id not in members or len(members) < 2:  # the bot and a listener
            continue
        transition_id = event.data["transition_id"]
        what = f"transition {transition_id} (epoch {event.data.get('epoch')}, channel {event.channel_id})"
        theirs = codes.get((event.channel_id, transition_id), set())
        if not theirs:
            problems.append(f"{what}: no listener computed a privacy code")
            continue
        if len(theirs) > 1:
            problems.append(f"{what}: the listeners disagree on the privacy code: {sorted(theirs)}")
            continue
        (expected,) = theirs
        mine = logged.get(transition_id)
        if not mine:
            problems.append(f"{what}: shared with a listener, but the bot logged no privacy code for it")
        elif expected not in mine:
            shown = ", ".join(str(c) for c in mine)
            problems.append(f"{what}: the bot's privacy code {shown} is not the listeners' {expected}")
    return problems


def report_problems(report: EmulatorReport, *, plaintext_ok: bool = False, not_audio_ok: bool = False) -> list[str]:
    problems = []
    if report.plaintext_frames and not plaintext_ok:
        problems.append(f"{report.plaintext_frames} Opus frames went out in plain text while DAVE was in force")
    problems += [f"a libdave listener failed: {failure}" for failure in report.listener_failures[:5]]
    if report.not_audio_frames and not not_audio_ok:
        problems.append(f"{report.not_audio_frames} frames were not Opus audio (Ogg headers or empty)")
    return problems
