"""Rolling deploys: for as long as a track lasts, a voice task and a control plane of different
releases share one store. The previous release is its record model, kept unchanged
(``tests/support/golden/models_previous.py``), and what it wrote (``release-before-rebuild.json``:
a guild record mid-track, its queue entries and a /play job)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import sweep_position, windows
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.faults import fault_outcome, play_sweep
from tests.support.golden import models_previous as previous
from tests.support.media import SWEEP_START_HZ
from tests.support.voice_stack import VoiceStack
from timmybot.models import GuildRecord, LeaseState
from timmybot.reaper import needs_relaunch
from timmybot.store.base import GUILD_SK, Store, guild_pk
from timmybot.store.sqlite import SQLiteStore
from timmybot.worker.jobs import PlayJob
from voice_task.polling import PLAYING_POLL_MAX_S

GOLDEN = Path(__file__).resolve().parents[1] / "support" / "golden" / "release-before-rebuild.json"


def _golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text())
    return data


def previous_release_update(store: Store, guild_id: str,
                            change: Callable[[previous.GuildRecord], previous.GuildRecord]) -> None:  # fmt: skip
    """A write by the previous release's control plane: its model, the same conditional put."""
    key = (guild_pk(guild_id), GUILD_SK)
    for _ in range(20):
        item = store._get_item(key)
        assert item is not None
        data = {**item.data, "version": item.version}
        record = previous.GuildRecord.from_dict(data)
        written = change(record).to_dict()
        now = time.time()
        active = GuildRecord.from_dict(written).is_active(now)
        if store._put_item(key, written, expected_version=item.version, now=now, active=active):
            return
        time.sleep(0.01)
    raise AssertionError("the previous release's write kept conflicting")


def test_todays_code_takes_over_a_guild_the_previous_release_left_mid_track(tmp_path: Path) -> None:
    # GIVEN the store as the previous release left it: a task (now gone) mid-track, two queued
    golden = _golden()
    store = SQLiteStore(tmp_path / "state.db")
    store._put_items([((row["pk"], row["sk"]), row["data"], None) for row in golden["records"]])
    gid = "123456789012345678"

    # WHEN today's code reads it, and the reaper, a task and the api act on it
    record = store.get_guild(gid)
    job = PlayJob.from_dict(golden["play_job"])
    later = record.lease.expires_at + 1
    lease = store.acquire_lease(gid, holder="pid:2", state=LeaseState.RUNNING, ttl_s=60,
                                wake="udp://127.0.0.1:40000")  # fmt: skip
    assert lease is not None
    popped = store.pop_head(gid, lease.generation)
    store.resume(gid)
    after = store.get_guild(gid)

    # THEN nothing is lost: the queue, the track left playing, the controls and the job
    assert record.queue == ("g2", "g3") and record.actual.now_playing is not None
    assert record.actual.now_playing.entry_id == "g1" and record.desired.volume == 80 and record.desired.paused
    assert record.lease.wake is None and record.lease.voice_gave_up_at is None
    assert needs_relaunch(record, later, recent_s=3600)
    assert job.query == "https://www.youtube.com/watch?v=g1" and job.guild_id == gid
    assert lease.generation == record.lease.generation + 1
    assert popped is not None and popped.entry_id == "g2"
    assert after.queue == ("g3",) and after.lease.wake == "udp://127.0.0.1:40000" and not after.desired.paused


def test_the_previous_release_reads_and_rewrites_todays_records_and_a_renewal_repairs_them(tmp_path: Path) -> None:
    # GIVEN a record written by today's code, with the fields the previous release does not know
    store = SQLiteStore(tmp_path / "state.db")
    gid = "1"
    lease = store.acquire_lease(gid, holder="pid:3", state=LeaseState.RUNNING, ttl_s=60,
                                wake="udp://127.0.0.1:40001")  # fmt: skip
    assert lease is not None
    store.skip(gid)
    store.set_volume(gid, 70)
    today = store.get_guild(gid)

    # WHEN the previous release's control plane pauses it (reading and rewriting the whole record)
    previous_release_update(store, gid, lambda r: r.evolve(desired=replace(r.desired, paused=True)))
    rewritten = store.get_guild(gid)
    # AND today's task renews its lease
    store.renew_lease(gid, generation=lease.generation, ttl_s=60, wake="udp://127.0.0.1:40001")
    repaired = store.get_guild(gid)

    # THEN the old release kept everything it knows, dropped only the wake address, and the
    # renewal put it back (a lost hint address only means polling until then)
    assert rewritten.desired == replace(today.desired, paused=True)
    assert rewritten.lease.generation == today.lease.generation and rewritten.lease.state is LeaseState.RUNNING
    assert rewritten.lease.wake is None
    assert repaired.lease.wake == "udp://127.0.0.1:40001"


# The sweep: paused 5 s in for 4 s, it still has 8 s to play after the resume (the long fault tests
# play 90 s for late failures).
SWEEP_S = 13.0


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_todays_task_plays_a_whole_track_under_the_previous_releases_control_plane(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN today's voice task playing a SWEEP_S sweep, with a tone after it
    run = play_sweep(stack, emulator, guild, SWEEP_S, after_s=2)
    gid, after, task, started = run.gid, run.after, run.task, run.started
    wake = stack.record(gid).lease.wake

    # WHEN, 5 s in, the previous release's control plane pauses it for 4 s, then resumes it (no
    # wake hints: that release sends none, and its writes drop the task's wake address, so the task
    # sees each write only at its next poll: at most PLAYING_POLL_MAX_S, 2 s, mid-track)
    time.sleep(max(0.0, started + 5.0 - time.monotonic()))
    paused_at = time.monotonic()
    previous_release_update(stack.store, gid, lambda r: r.evolve(desired=replace(r.desired, paused=True)))
    dropped = stack.record(gid).lease.wake
    time.sleep(4.0)
    previous_release_update(stack.store, gid, lambda r: r.evolve(desired=replace(r.desired, paused=False)))

    # THEN the task obeyed both, the sweep went on from where it paused to its end, the next
    # track followed, and the task's wake address came back
    stack.wait_record(gid, lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id
                      == after.entry_id, timeout=40, what="the track after the sweep")  # fmt: skip
    time.sleep(1.5)
    packets = emulator.packets(guild.id, since=started)
    outcome = fault_outcome(packets, paused_at)
    sweep = [w for w in windows(packets) if w.hz >= SWEEP_START_HZ - 10]
    pause = max(itertools.pairwise(sweep), key=lambda pair: pair[1].time - pair[0].time)
    assert wake is not None and dropped is None
    assert stack.record(gid).lease.wake == wake
    assert 4.0 - PLAYING_POLL_MAX_S <= pause[1].time - pause[0].time <= 4.0 + PLAYING_POLL_MAX_S + 0.5, pause
    # the gap began at the pause, not before: the last window before it (10 packets of 20 ms, timed
    # by its first) was still being heard when the pause was written
    assert pause[0].time + pause[0].packets * 0.020 >= paused_at - 0.05, (pause, paused_at)
    assert abs(sweep_position(pause[1].hz) - sweep_position(pause[0].hz)) <= 0.7, pause  # nothing skipped
    assert outcome.last_sweep_s >= SWEEP_S - 1.5 and outcome.next_track_after_sweep, outcome.describe()
    assert task.process.poll() is None
