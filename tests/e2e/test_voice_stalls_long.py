"""The lease heartbeat never waits on a resolve: with more hung resolves than a default thread pool
has workers, for 90 s, the lease is renewed on time and controls still work."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.voice_stack import VoiceStack
from timmybot.models import LeaseState, QueueEntry, Track

pytestmark = [pytest.mark.e2e, pytest.mark.long, pytest.mark.timeout(240)]

HUNG_YTDLP = Path(__file__).resolve().parents[1] / "support" / "hung_ytdlp"
HANG_S = 90.0
HEARTBEAT_S = 1.0
TTL_S = 4.0


@pytest.fixture
def stack(make_stack: Callable[..., VoiceStack]) -> VoiceStack:
    return make_stack(
        TIMMYBOT_LEASE_TTL_S=str(int(TTL_S)),
        TIMMYBOT_HEARTBEAT_S=str(int(HEARTBEAT_S)),
        TIMMYBOT_PAUSE_AFTER_FAILURES="50",
    )


def _video(index: int) -> QueueEntry:
    video_id = f"hung{index:07d}"
    url = f"https://www.youtube.com/watch?v={video_id}"
    track = Track(source="youtube", source_id=video_id, title=f"Hung {index}", url=url, duration_s=200,
                  thumbnail=None, artist=None)  # fmt: skip
    return QueueEntry(entry_id=f"hung-{index}", track=track, requester_id="1", added_at=time.time())


def test_the_lease_is_renewed_on_time_while_ten_resolves_hang_for_90_s(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN a queue of videos whose site never answers (each extraction blocks for 90 s)
    emulator.add_listener(guild.id, guild.voice_channel_id)
    gid = str(guild.id)
    stack.enqueue(gid, *[_video(i) for i in range(14)], voice_channel_id=str(guild.voice_channel_id),
                  text_channel_id=str(guild.text_channel_id))  # fmt: skip
    task = stack.launch(gid, python_path=[HUNG_YTDLP], HUNG_YTDLP_S=str(HANG_S))
    generation = stack.record(gid).lease.generation

    # WHEN a listener skips ten times, a second apart: ten resolves hang at once, more than the
    # six workers a default pool has on two cores
    started = time.monotonic()
    for _ in range(10):
        time.sleep(1.0)
        stack.store.skip(gid)

    # THEN for the whole hang the lease stays live and is renewed every heartbeat
    renewals: list[float] = []
    worst_margin = TTL_S
    last_expiry = 0.0
    while time.monotonic() - started < HANG_S:
        lease = stack.record(gid).lease
        assert lease.state is LeaseState.RUNNING and lease.generation == generation, lease
        worst_margin = min(worst_margin, lease.expires_at - time.time())
        if lease.expires_at != last_expiry:
            renewals.append(time.monotonic())
            last_expiry = lease.expires_at
        time.sleep(0.2)
    gaps = [b - a for a, b in itertools.pairwise(renewals)]
    assert worst_margin > 1.0, worst_margin
    assert max(gaps) <= HEARTBEAT_S * 2.5, max(gaps)
    assert len(renewals) >= HANG_S / HEARTBEAT_S * 0.8, len(renewals)
    assert task.process.poll() is None

    # AND a /stop is obeyed at once, hung resolves or not: the task leaves and exits
    stopped = time.monotonic()
    stack.store.stop(gid)
    assert task.wait(timeout=15) == 0
    assert time.monotonic() - stopped < 5.0, task.log[-2000:]
    assert stack.record(gid).lease.state is LeaseState.RELEASED
