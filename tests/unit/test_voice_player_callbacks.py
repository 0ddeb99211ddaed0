"""GIVEN discord.py's player thread WHEN it reports a source's end THEN the task's loop hears it,
and after the loop closed (the task exiting) the late report is dropped, not a traceback."""

from __future__ import annotations

import asyncio

from voice_task.player import _to_loop


def test_a_callback_reaches_an_open_loop_and_is_dropped_once_it_closed() -> None:
    heard: list[int] = []
    loop = asyncio.new_event_loop()
    try:
        _to_loop(loop, heard.append, 1)
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    _to_loop(loop, heard.append, 2)  # the task has exited: nothing to tell, nothing raised

    assert heard == [1]
