"""Every voice-task start costs one IDENTIFY: they are spaced, counted and sharded."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.emulator import DiscordEmulator, shard_for
from tests.support.media import MediaServer
from tests.support.voice_stack import VoiceStack
from tests.support.warm_start import WarmStarter

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(150)]

SHARDS = 4


@pytest.fixture
def stack(make_stack: Callable[..., VoiceStack]) -> VoiceStack:
    return make_stack(TIMMYBOT_SHARD_COUNT=str(SHARDS))


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


def test_the_task_joins_once_its_guild_is_in_while_the_rest_of_its_shard_still_streams_in(
    make_stack: Callable[..., VoiceStack], emulator: DiscordEmulator
) -> None:
    """discord.py holds READY back until the shard's last GUILD_CREATE plus its guild_ready_timeout;
    the task needs only its own guild, so on a shard whose guilds stream in it does not wait for them."""
    stack = make_stack(TIMMYBOT_SHARD_COUNT="1")
    guild = emulator.add_guild("First on the shard")
    others = {emulator.add_guild(f"Streams in later {n}").id for n in range(3)}
    user = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, user, guild.voice_channel_id)
    stack.enqueue(
        str(guild.id),
        stack.tone_entry(440, 5),
        voice_channel_id=str(guild.voice_channel_id),
        text_channel_id=str(guild.text_channel_id),
    )
    emulator.stream_guild_creates(gap_s=0.6)

    task = stack.launch(str(guild.id))
    stack.wait_for_audio(str(guild.id), since=0, timeout=30)

    heard_at = time.monotonic()
    creates = emulator.guild_creates()
    while len(creates) < 1 + len(others) and time.monotonic() < heard_at + 10:
        time.sleep(0.1)
        creates = emulator.guild_creates()
    assert [gid for _, gid in creates[:1]] == [guild.id] and {gid for _, gid in creates[1:]} == others, creates
    joins = [e.time for e in emulator.gateway_events(op=4)
             if int(e.data.get("guild_id") or 0) == guild.id and e.data.get("channel_id") is not None]  # fmt: skip
    assert joins, "the task never asked to join voice"
    # THEN the join went out while the other guilds were still being sent (1.8 s of them after its own)
    assert joins[0] < creates[-1][0], (joins[0], creates)
    assert "gateway ready on shard 0/1 with guilds" in task.log


def test_repeated_invalid_sessions_back_off_and_give_up_instead_of_looping(
    emulator: DiscordEmulator, media_server: MediaServer, tmp_path: Path, warm_starter: WarmStarter
) -> None:
    stack = VoiceStack(emulator, media_server, tmp_path, starter=warm_starter, TIMMYBOT_IDENTIFY_MAX_ATTEMPTS="3")
    try:
        guild = emulator.add_guild("Invalid sessions")
        stack.enqueue(
            str(guild.id),
            stack.tone_entry(440, 5),
            voice_channel_id=str(guild.voice_channel_id),
            text_channel_id=str(guild.text_channel_id),
        )
        emulator.invalidate_next_identify(times=100)

        task = stack.launch(str(guild.id))
        code = task.wait(timeout=90)
        identifies = sorted(record.time for record in emulator.identifies())
        gaps = [later - earlier for earlier, later in itertools.pairwise(identifies)]

        assert code != 0
        assert len(identifies) == 3  # then it gave up: no loop
        assert gaps[1] > gaps[0]  # the waits grow
        assert "gave up after 3 identifies" in task.log
        assert not stack.record(str(guild.id)).lease.is_live(time.time())
    finally:
        stack.close()
