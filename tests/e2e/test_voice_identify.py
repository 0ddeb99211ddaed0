"""Every voice-task start costs one IDENTIFY: they are spaced, counted and sharded."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulator import DiscordEmulator, shard_for
from tests.support.media import MediaServer
from tests.support.voice_stack import VoiceStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

SHARDS = 4


@pytest.fixture
def stack(emulator: DiscordEmulator, media_server: MediaServer, tmp_path: Path) -> Iterator[VoiceStack]:
    voice_stack = VoiceStack(emulator, media_server, tmp_path, TIMMYBOT_SHARD_COUNT=str(SHARDS))
    yield voice_stack
    voice_stack.close()


def test_five_launches_at_once_identify_five_seconds_apart_and_all_five_guilds_play(
    stack: VoiceStack, emulator: DiscordEmulator
) -> None:
    guilds = [emulator.add_guild(f"Guild {n}") for n in range(5)]
    for n, guild in enumerate(guilds):
        user = emulator.add_member(guild.id, f"listener-{n}")
        emulator.set_member_voice(guild.id, user, guild.voice_channel_id)
        stack.enqueue(
            str(guild.id),
            stack.tone_entry(440 + 110 * n, 40),
            voice_channel_id=str(guild.voice_channel_id),
            text_channel_id=str(guild.text_channel_id),
        )

    tasks = [stack.launch(str(guild.id)) for guild in guilds]
    for guild in guilds:
        stack.wait_for_audio(str(guild.id), since=0, timeout=60)

    identify_times = sorted(record.time for record in emulator.identifies())
    gaps = [later - earlier for earlier, later in itertools.pairwise(identify_times)]
    assert len(identify_times) == 5
    assert min(gaps) >= 4.9, gaps
    assert stack.store.get_record("B#identify", "BUDGET")["remaining"] == emulator.session_start_remaining()

    for guild, task in zip(guilds, tasks, strict=True):
        shard = shard_for(guild.id, SHARDS)
        seen = re.search(r"gateway ready on shard (\d+)/(\d+) with guilds \[(.*?)\]", task.log)
        assert seen is not None, task.log[-2000:]
        assert int(seen.group(1)) == shard
        received = {int(g.strip().strip("'")) for g in seen.group(3).split(",") if g.strip()}
        assert guild.id in received
        assert all(shard_for(other, SHARDS) == shard for other in received)
