"""The real voice task plays the queue on the loopback Discord, and obeys the desired state.

GIVEN a guild record with tone tracks queued (440 Hz, 660 Hz…) and a launched ``python -m voice_task``
WHEN the desired state changes through the Store (as the api Lambda writes it)
THEN what the emulated voice server hears changes accordingly.
"""

from __future__ import annotations

import time

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.voice_stack import VoiceStack
from timmybot.models import LeaseState, LoopMode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _listener(emulator: DiscordEmulator, guild: GuildHandle) -> int:
    user = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, user, guild.voice_channel_id)
    return user


def _start(stack: VoiceStack, guild: GuildHandle, *freqs: int, seconds: float = 6.0) -> list[str]:
    entries = [stack.tone_entry(freq, seconds) for freq in freqs]
    stack.enqueue(
        str(guild.id),
        *entries,
        voice_channel_id=str(guild.voice_channel_id),
        text_channel_id=str(guild.text_channel_id),
    )
    stack.launch(str(guild.id))
    return [e.entry_id for e in entries]


def _near(value: float | None, target: float, tolerance: float = 0.03) -> bool:
    return value is not None and abs(value - target) <= target * tolerance


def test_play_makes_the_first_tone_heard_and_publishes_actual_state(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    listener = _listener(emulator, guild)
    ids = _start(stack, guild, 440, 660)
    gid = str(guild.id)

    stack.wait_for_audio(gid, since=0)
    heard = stack.hear(gid, 1.5)
    record = stack.wait_record(gid, lambda r: str(listener) in r.actual.listener_ids, what="listener ids")

    assert _near(heard.dominant_hz, 440), heard
    assert record.actual.now_playing is not None and record.actual.now_playing.entry_id == ids[0]
    assert record.queue == (ids[1],)
    assert record.lease.state is LeaseState.RUNNING
    assert emulator.bot_voice_channel(guild.id) == guild.voice_channel_id


def test_skip_switches_the_dominant_frequency(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle) -> None:
    _listener(emulator, guild)
    _start(stack, guild, 440, 660)
    gid = str(guild.id)
    stack.wait_for_audio(gid, since=0)

    stack.store.skip(gid)
    skipped_at = time.monotonic()
    stack.wait_record(gid, lambda r: r.actual.now_playing is not None and r.queue == (), what="second track")
    heard = stack.hear(gid, 1.5, settle=0.5)

    assert _near(heard.dominant_hz, 660), heard
    assert stack.packets(gid, since=skipped_at), "audio continued after the skip"


def test_skip_to_is_heard_as_the_chosen_tone_and_loop_queue_brings_the_skipped_back(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    """/skipto 2 with 440 playing and 550, 660, 770 queued: 660 is heard next; under loop queue
    the skipped 550 comes back at the end, after 770 and the looped 440."""
    _listener(emulator, guild)
    gid = str(guild.id)
    stack.store.set_loop(gid, LoopMode.QUEUE)
    ids = _start(stack, guild, 440, 550, 660, 770, seconds=6)
    stack.wait_for_audio(gid, since=0)
    stack.wait_record(gid, lambda r: r.queue == tuple(ids[1:]), what="the first track playing")

    _record, skipped = stack.store.skip_to(gid, 2)
    assert skipped == (ids[1],)
    switched = stack.wait_record(
        gid, lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id == ids[2], what="third"
    )
    heard = stack.hear(gid, 1.5, settle=0.5)

    assert _near(heard.dominant_hz, 660), heard
    assert switched.queue == (ids[3], ids[1], ids[0])


def test_pause_stops_packets_and_resume_starts_them_again(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listener(emulator, guild)
    _start(stack, guild, 440, seconds=10)
    gid = str(guild.id)
    stack.wait_for_audio(gid, since=0)

    stack.store.pause(gid)
    stack.wait_record(gid, lambda r: r.actual.paused, what="paused")
    time.sleep(0.5)
    quiet_from = time.monotonic()
    time.sleep(1.0)
    during_pause = stack.packets(gid, since=quiet_from)

    stack.store.resume(gid)
    resumed_at = time.monotonic()
    stack.wait_for_audio(gid, since=resumed_at, timeout=5)
    heard = stack.hear(gid, 1.0)

    assert during_pause == []
    assert _near(heard.dominant_hz, 440), heard


def test_volume_50_drops_the_level_by_about_6_db(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listener(emulator, guild)
    _start(stack, guild, 440, seconds=12)
    gid = str(guild.id)
    stack.wait_for_audio(gid, since=0)
    loud = stack.hear(gid, 1.5)

    stack.store.set_volume(gid, 50)
    stack.wait_record(gid, lambda r: r.actual.volume == 50, what="volume 50 applied")
    quiet = stack.hear(gid, 1.5, settle=0.6)

    assert loud.rms_dbfs is not None and quiet.rms_dbfs is not None
    assert -7.5 <= quiet.rms_dbfs - loud.rms_dbfs <= -4.5, (loud, quiet)
    assert _near(quiet.dominant_hz, 440), quiet


def test_seek_moves_the_position_and_playback_follows(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listener(emulator, guild)
    _start(stack, guild, 440, 660, seconds=20)
    gid = str(guild.id)
    stack.wait_for_audio(gid, since=0)

    stack.store.seek(gid, 17_000)
    seeked = stack.wait_record(gid, lambda r: r.actual.applied_seek_seq == 1, what="seek applied")
    # 3 s left of the first track after the seek: the second tone must follow within ~3 s, not ~17 s.
    record = stack.wait_record(gid, lambda r: not r.queue, timeout=8, what="next track after the seek")

    assert seeked.actual.position_at(time.time()) >= 16_000
    assert record.actual.now_playing is not None
    assert _near(stack.hear(gid, 1.0).dominant_hz, 660)


def test_loop_track_replays_the_same_tone(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle) -> None:
    _listener(emulator, guild)
    gid = str(guild.id)
    stack.store.set_loop(gid, LoopMode.TRACK)
    ids = _start(stack, guild, 440, 660, seconds=2)
    stack.wait_for_audio(gid, since=0)

    time.sleep(4.5)  # two full passes of the 2 s track
    record = stack.record(gid)
    heard = stack.hear(gid, 1.0)

    assert record.actual.now_playing is not None and record.actual.now_playing.entry_id == ids[0]
    assert record.queue == (ids[1],)
    assert _near(heard.dominant_hz, 440)


def test_loop_queue_wraps_round(stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle) -> None:
    _listener(emulator, guild)
    gid = str(guild.id)
    stack.store.set_loop(gid, LoopMode.QUEUE)
    ids = _start(stack, guild, 440, 660, seconds=2)
    stack.wait_for_audio(gid, since=0)

    stack.wait_record(
        gid, lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id == ids[1], what="second"
    )
    wrapped = stack.wait_record(
        gid,
        lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id == ids[0],
        timeout=6,
        what="wrap to the first track",
    )

    assert wrapped.queue == (ids[1],)


def test_stop_leaves_the_channel_exits_zero_and_frees_the_lease(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listener(emulator, guild)
    _start(stack, guild, 440, 660)
    gid = str(guild.id)
    stack.wait_for_audio(gid, since=0)

    stack.store.stop(gid)
    code = stack.tasks[0].wait(timeout=20)
    record = stack.record(gid)

    assert code == 0
    assert emulator.bot_voice_channel(guild.id) is None
    assert not record.lease.is_live(time.time())
    assert record.queue == ()
