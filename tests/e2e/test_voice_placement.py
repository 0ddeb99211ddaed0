"""/play placement, by ear, on the emulator under DAVE: the worker's ``enqueue_tracks`` queues at the
end, next, or now (cutting the current track, which comes back as ``play_now_interrupted`` says),
and the real voice task plays what the queue says.

The cut track is a rising sweep, so where it resumes is heard (``sweep_position``), not read back."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Literal

import pytest

from tests.support.audio import sweep_position
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.voice_stack import VoiceStack
from timmybot.controls import go_back
from timmybot.models import LoopMode, QueueEntry, root_id
from timmybot.worker.jobs import PlayJob
from timmybot.worker.play import enqueue_tracks

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(150)]

_ids = itertools.count(1)


def _start(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, *entries: QueueEntry) -> str:
    listener = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, listener, guild.voice_channel_id)
    gid = str(guild.id)
    stack.enqueue(
        gid, *entries, voice_channel_id=str(guild.voice_channel_id), text_channel_id=str(guild.text_channel_id)
    )
    stack.launch(gid)
    stack.wait_for_audio(gid, since=0)
    return gid


def _worker_adds(
    stack: VoiceStack,
    gid: str,
    entries: list[QueueEntry],
    placement: str,
    interrupted: Literal["resume", "restart", "drop"] = "resume",
) -> list[str]:
    """What the /play worker does after resolving: ``enqueue_tracks`` with the job's placement."""
    job = PlayJob(
        interaction_id=f"90000000000000{next(_ids):04d}",
        application_id=stack.settings.discord_application_id or "1",
        guild_id=gid,
        user_id="1",
        query="(resolved)",
        placement=placement,
    )
    settings = replace(stack.settings, play_now_interrupted=interrupted)
    tracks = [entry.track for entry in entries]
    _, queued = enqueue_tracks(job, tracks, store=stack.store, settings=settings, now=time.time(), placement=placement)
    return [entry.entry_id for entry in queued]


def _playing(stack: VoiceStack, gid: str, entry_id: str, *, timeout: float = 20.0, what: str = "") -> None:
    stack.wait_record(
        gid,
        lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id == entry_id,
        timeout=timeout,
        what=what or entry_id,
    )


def _near(value: float | None, target: float, tolerance: float = 0.03) -> bool:
    return value is not None and abs(value - target) <= target * tolerance


def test_play_next_is_heard_right_after_the_current_track(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    a, b, c = stack.tone_entry(440, 4), stack.tone_entry(550, 4), stack.tone_entry(660, 4)
    gid = _start(stack, emulator, guild, a, b, c)
    (d,) = _worker_adds(stack, gid, [stack.tone_entry(770, 4)], "next")
    assert stack.record(gid).queue == (d, b.entry_id, c.entry_id)

    _playing(stack, gid, d, what="D after A")
    assert _near(stack.hear(gid, 1.0, settle=0.5).dominant_hz, 770)


def test_a_playlist_played_next_keeps_its_order(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    a, b = stack.tone_entry(440, 3), stack.tone_entry(550, 3)
    gid = _start(stack, emulator, guild, a, b)
    added = _worker_adds(stack, gid, [stack.tone_entry(hz, 2) for hz in (770, 880, 990)], "next")
    assert stack.record(gid).queue == (*added, b.entry_id)

    _playing(stack, gid, added[0], what="the playlist's first track")
    assert _near(stack.hear(gid, 0.8, settle=0.4).dominant_hz, 770)
    _playing(stack, gid, added[1], what="the playlist's second track")
    assert _near(stack.hear(gid, 0.8, settle=0.4).dominant_hz, 880)


@pytest.mark.parametrize(
    ("interrupted", "resumes_near_s"), [("resume", 3.0), ("restart", 0.0), ("drop", None)], ids=str
)
def test_play_now_cuts_the_track_which_then_comes_back_as_the_setting_says(
    stack: VoiceStack,
    emulator: DiscordEmulator,
    guild: GuildHandle,
    interrupted: Literal["resume", "restart", "drop"],
    resumes_near_s: float | None,
) -> None:
    sweep, b = stack.sweep_entry(40), stack.tone_entry(550, 3)
    gid = _start(stack, emulator, guild, sweep, b)
    _playing(stack, gid, sweep.entry_id, what="the sweep")
    # Cut inside the sweep's first WebM cluster (about 5 s): a resume must not start at the cluster
    while stack.record(gid).actual.position_at(time.time()) < 3000:
        time.sleep(0.1)

    (e,) = _worker_adds(stack, gid, [stack.tone_entry(770, 3)], "now", interrupted)
    _playing(stack, gid, e, timeout=5, what="E cutting the sweep")
    assert _near(stack.hear(gid, 0.8, settle=0.4).dominant_hz, 770)

    after_e = stack.wait_record(
        gid,
        lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id != e,
        timeout=15,
        what="the track after E",
    )
    assert after_e.actual.now_playing is not None
    heard = stack.hear(gid, 0.6, settle=0.3)
    if resumes_near_s is None:
        assert after_e.actual.now_playing.entry_id == b.entry_id
        assert _near(heard.dominant_hz, 550)
        return
    assert after_e.actual.now_playing.title == sweep.title
    assert heard.dominant_hz is not None
    # Heard about 0.3-0.9 s after it restarted: within 1.5 s of where it was cut (or of the start)
    assert abs(sweep_position(heard.dominant_hz) - resumes_near_s) < 1.5, heard
    assert after_e.queue == (b.entry_id,)


def test_back_after_a_skip_is_heard_as_the_skipped_tone_and_the_current_one_follows(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    a, b = stack.tone_entry(440, 8), stack.tone_entry(550, 8)
    gid = _start(stack, emulator, guild, a, b)
    _playing(stack, gid, a.entry_id, what="A")
    stack.store.skip(gid)
    _playing(stack, gid, b.entry_id, what="B after the skip")

    back = go_back(stack.store, gid, interaction_id="9100000000000000001", user_id="1", cap=500, now=time.time())
    assert back.previous.title == a.title
    _playing(stack, gid, back.previous.entry_id, timeout=5, what="A again")
    assert _near(stack.hear(gid, 0.8, settle=0.4).dominant_hz, 440)
    assert [e.title for e in stack.store.get_entries(gid, stack.record(gid).queue)] == [b.title]


# ---------------------------------------------------------------------------------------------- loop modes
def test_skipto_under_loop_queue_is_heard_as_the_track_named_and_the_skipped_ones_come_round_again(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    a, b, c, d = (stack.tone_entry(hz, 3) for hz in (440, 550, 660, 770))
    gid = _start(stack, emulator, guild, a, b, c, d)
    stack.store.set_loop(gid, LoopMode.QUEUE)
    _playing(stack, gid, a.entry_id, what="A")

    _, passed = stack.store.skip_to(gid, 3)
    assert passed == (b.entry_id, c.entry_id)
    _playing(stack, gid, d.entry_id, timeout=5, what="D, position 3")
    assert _near(stack.hear(gid, 0.8, settle=0.4).dominant_hz, 770)
    # The skipped B and C went to the end, and A after them: each of them once.
    assert stack.record(gid).queue == (b.entry_id, c.entry_id, a.entry_id)
    _playing(stack, gid, b.entry_id, timeout=10, what="B, come round again after D")
    assert _near(stack.hear(gid, 0.8, settle=0.4).dominant_hz, 550)


def test_play_now_under_loop_track_loops_the_new_track_and_the_cut_one_waits_next(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    a, b = stack.tone_entry(440, 8), stack.tone_entry(550, 3)
    gid = _start(stack, emulator, guild, a, b)
    stack.store.set_loop(gid, LoopMode.TRACK)
    _playing(stack, gid, a.entry_id, what="A")

    (e,) = _worker_adds(stack, gid, [stack.tone_entry(770, 2)], "now")
    _playing(stack, gid, e, timeout=5, what="E cutting A")
    assert _near(stack.hear(gid, 0.8, settle=0.4).dominant_hz, 770)
    queued = stack.record(gid).queue
    assert len(queued) == 2 and root_id(queued[0]) == a.entry_id and queued[1] == b.entry_id
    time.sleep(2.0)  # past E's 2 s: it began again
    record = stack.record(gid)
    assert record.actual.now_playing is not None and record.actual.now_playing.entry_id == e
    assert _near(stack.hear(gid, 0.8, settle=0.3).dominant_hz, 770)

    stack.store.set_loop(gid, LoopMode.OFF)
    _playing(stack, gid, queued[0], timeout=10, what="A, resumed once the loop is off")
    assert _near(stack.hear(gid, 0.8, settle=0.4).dominant_hz, 440)
