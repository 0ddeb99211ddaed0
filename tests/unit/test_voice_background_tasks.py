"""Every background task of the voice task says when it fails (issue 13: referenced, with a
done-callback that logs), beyond those ``VoiceTask.spawn`` starts.

GIVEN the now-playing card's held edit, the gateway client and the log context's generation tracker
WHEN  one of them fails
THEN  its exception is logged at once, with its traceback, by the module that started it
AND   the gateway's end wakes the tick (whose gateway check then requests the task's exit).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import discord
import pytest

from timmybot.config import Settings
from voice_task import __main__ as entry
from voice_task.card import CardEditor
from voice_task.connection import Connection, ConnectionEvents
from voice_task.exits import ExitReason

GUILD = "111111111111111111"


class Boom(RuntimeError):
    pass


def _failures(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.exc_info is not None and r.exc_info[0] is Boom]


def test_a_held_card_edit_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        sent: list[str | None] = []

        async def send(channel_id: str, message_id: str | None) -> str | None:
            sent.append(message_id)
            if message_id is not None:
                raise Boom("the edit failed")
            return "m1"

        loop = asyncio.get_running_loop()
        editor = CardEditor(send, loop.time, refresh_s=15.0, min_edit_s=0.05)
        await editor.show("c1", "e1")  # posted
        await editor.show("c1", "e1")  # inside the edit window: held
        await asyncio.sleep(0.2)
        assert sent == [None, "m1"]

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert _failures(caplog, "voice_task.card"), caplog.text


def test_a_gateway_that_fails_after_ready_is_logged_and_wakes_the_tick(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    woken: list[str] = []

    async def start(client: discord.Client, token: str, *, reconnect: bool = True) -> None:
        # discord.py's side, faked at its boundary: READY, then the session dies
        await client.on_ready()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        raise Boom("the gateway session died")

    monkeypatch.setattr(discord.Client, "start", start)

    async def moved(channel_id: int | None) -> None:
        return None

    events = ConnectionEvents(
        on_voice_close=lambda code: None,
        on_transition=lambda: None,
        on_recovered=lambda seconds: None,
        on_bot_moved=moved,
        on_change=lambda: woken.append("tick"),
        on_identify_refused=lambda why: None,
    )

    async def scenario() -> None:
        async def blocking(fn: Any, *args: Any) -> Any:
            return fn(*args)

        connection = Connection(Settings(), GUILD, events, run_blocking=blocking)
        assert await connection.connect()
        await asyncio.sleep(0.2)
        assert not connection.gateway_alive()
        await connection.close()

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert _failures(caplog, "voice_task.connection"), caplog.text
    assert woken, "the gateway's end did not wake the tick"


def test_a_generation_tracker_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Task:
        """Stands in for the voice task: runs a moment; its generation cannot be read."""

        @property
        def generation(self) -> int:
            raise Boom("no generation")

        async def run(self) -> ExitReason:
            await asyncio.sleep(0.1)
            return ExitReason.IDLE

    with caplog.at_level(logging.ERROR):
        reason = asyncio.run(entry._run(cast(Any, Task()), entry._TaskContext(GUILD, "task")))
    assert reason is ExitReason.IDLE
    assert _failures(caplog, "voice_task"), caplog.text
