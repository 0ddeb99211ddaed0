"""The now-playing card's edit window counts from the end of the previous write.

GIVEN a card editor whose writes take 0.3 s to be answered (a slow REST call) and a 0.5 s window
WHEN  the card is posted, then asked to change again and again, some requests while a write is
      still in flight
THEN  no write starts within the window after the previous one was answered, so Discord never
      sees two writes closer together than the window however slowly the first arrived
AND   every request is still served: the last write carries the last request.
"""

from __future__ import annotations

import asyncio
import itertools

from voice_task.card import CardEditor

WINDOW_S = 0.5
WRITE_S = 0.3


def test_no_write_starts_within_the_window_after_the_previous_one_was_answered() -> None:
    async def scenario() -> tuple[list[tuple[float, float]], list[str]]:
        loop = asyncio.get_running_loop()
        writes: list[tuple[float, float]] = []
        shown: list[str] = []
        asked: list[str] = []

        async def send(channel_id: str, message_id: str | None) -> str | None:
            started = loop.time()
            shown.append(asked[-1])
            await asyncio.sleep(WRITE_S)
            writes.append((started, loop.time()))
            return message_id or "m1"

        editor = CardEditor(send, loop.time, refresh_s=15.0, min_edit_s=WINDOW_S)
        for index in range(6):
            asked.append(f"e{index}")
            await editor.show("c1", f"e{index}")  # the first posts; the others edit or are held
            await asyncio.sleep(0.15)
        await asyncio.sleep(WINDOW_S + WRITE_S + 0.2)  # the last held edit goes out
        editor.close()
        return writes, shown

    writes, shown = asyncio.run(scenario())
    assert len(writes) >= 3, writes
    gaps = [b_start - a_end for (_a_start, a_end), (b_start, _b_end) in itertools.pairwise(writes)]
    assert min(gaps) >= WINDOW_S - 0.02, gaps
    assert shown[-1] == "e5", shown
