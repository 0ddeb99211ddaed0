"""A pause or resume that lands while no track plays (one just failed, the next not yet resolved) is
kept for the next track and moves nothing: it used to raise "failed -> playing is not allowed"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from timmybot.config import Settings
from timmybot.models import LeaseState
from timmybot.store import SQLiteStore
from voice_task.states import PlaybackState
from voice_task.task import VoiceTask

GUILD = "111111111111111111"


def test_a_resume_or_pause_after_a_failed_track_moves_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "store.db")
        lease = store.acquire_lease(GUILD, holder="task", state=LeaseState.RUNNING, ttl_s=60)
        assert lease is not None
        task = VoiceTask(Settings(strict_states=True), store, GUILD, generation=lease.generation, holder="task")
        try:
            # GIVEN a track that failed to play (strict transitions, as in every test)
            task.player.machine.move(PlaybackState.RESOLVING, "test")
            task.player.machine.move(PlaybackState.FAILED, "test")

            # WHEN the user's resume, then a pause, are applied before the next track starts
            task.player.resume()
            task.player.pause()

            # THEN nothing moved and nothing raised: the next track starts as the applied flag says
            assert task.player.machine.state is PlaybackState.FAILED
        finally:
            task._store_pool.shutdown(wait=False)
            task._rest_pool.shutdown(wait=False)

    asyncio.run(scenario())
