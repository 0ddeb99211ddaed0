"""Playback keeps going through broken streams, and a superseded task can change nothing."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.media import MediaServer, tone_file
from tests.support.voice_stack import VoiceStack
from tests.support.warm_start import WarmStarter
from timmybot.models import LeaseState

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def stack(make_stack: Callable[..., VoiceStack]) -> VoiceStack:
    return make_stack(TIMMYBOT_LEASE_TTL_S="4", TIMMYBOT_HEARTBEAT_S="1")


def _listen(emulator: DiscordEmulator, guild: GuildHandle) -> None:
    user = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, user, guild.voice_channel_id)


def _channels(guild: GuildHandle) -> dict[str, str]:
    return {"voice_channel_id": str(guild.voice_channel_id), "text_channel_id": str(guild.text_channel_id)}


def _near(value: float | None, target: float) -> bool:
    return value is not None and abs(value - target) <= target * 0.03


def _notices_once(emulator: DiscordEmulator, guild: GuildHandle, wanted: str) -> list[str] | None:
    """The text channel's messages, once one of them holds ``wanted``."""
    notices = [m.content or "" for m in emulator.messages(guild.text_channel_id)]
    return notices if any(wanted in text for text in notices) else None


def test_a_track_that_fails_to_stream_is_skipped_with_a_notice_and_the_next_plays(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, media_server: MediaServer
) -> None:
    _listen(emulator, guild)
    gid = str(guild.id)
    first, broken, last = stack.tone_entry(440, 2), stack.tone_entry(660, 2), stack.tone_entry(880, 6)
    media_server.fail("tone-660-2.webm", 404)
    stack.enqueue(gid, first, broken, last, **_channels(guild))
    stack.launch(gid)

    stack.wait_record(
        gid, lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id == last.entry_id, what="third"
    )
    heard = stack.hear(gid, 1.0, settle=0.5)
    notices = [m.content or "" for m in emulator.messages(guild.text_channel_id)]

    assert _near(heard.dominant_hz, 880), heard
    assert any("Skipped" in text and "660" in text for text in notices), notices


def test_a_stream_that_answers_403_mid_track_is_re_resolved_and_continues(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, media_server: MediaServer
) -> None:
    _listen(emulator, guild)
    gid = str(guild.id)
    entry = stack.tone_entry(440, 10)
    size = tone_file(440, 10, "webm").stat().st_size
    media_server.fail_after("tone-440-10.webm", size // 3, 403, times=1)
    stack.enqueue(gid, entry, **_channels(guild))
    stack.launch(gid)
    first_audio = stack.wait_for_audio(gid, since=0)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(r.status == 403 for r in media_server.requests()):
        time.sleep(0.1)
    cut_at = time.monotonic()
    stack.wait_for_audio(gid, since=cut_at + 0.5, timeout=10)
    heard = stack.hear(gid, 1.0)
    record = stack.record(gid)

    assert any(r.status == 403 for r in media_server.requests())
    assert _near(heard.dominant_hz, 440), heard
    assert record.actual.now_playing is not None and record.actual.now_playing.entry_id == entry.entry_id
    # it continued where it broke instead of starting the track over
    played_s = time.monotonic() - first_audio
    assert record.actual.position_at(time.time()) / 1000 == pytest.approx(played_s, abs=1.5)


def test_a_superseded_task_can_neither_pop_the_queue_nor_write_state(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listen(emulator, guild)
    gid = str(guild.id)
    entries = [stack.tone_entry(440, 2), stack.tone_entry(660, 8), stack.tone_entry(880, 8)]
    stack.enqueue(gid, *entries, **_channels(guild))
    old = stack.launch(gid)
    stack.wait_for_audio(gid, since=0)

    # GIVEN the task stalls (SIGSTOP) long enough for its lease to expire and someone else takes it
    old.signal(signal.SIGSTOP)
    stack.wait_record(gid, lambda r: not r.lease.is_live(time.time()), timeout=10, what="the lease to expire")
    new_lease = stack.store.acquire_lease(gid, holder="usurper", state=LeaseState.RUNNING, ttl_s=600)
    assert new_lease is not None
    before = stack.record(gid)

    # WHEN the stalled task wakes up (its first track ends around now)
    old.signal(signal.SIGCONT)
    code = old.wait(timeout=20)
    after = stack.record(gid)

    # THEN it exits without having popped the queue or written its actual state
    assert code == 0
    assert after.queue == before.queue
    assert after.actual == before.actual
    assert after.lease.generation == new_lease.generation and after.lease.holder == "usurper"
    assert "superseded" in old.log


def test_two_guilds_play_different_tones_at_once_without_crosstalk(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    other = emulator.add_guild("Second guild")
    for g in (guild, other):
        _listen(emulator, g)
    # 20 s each: the two tasks' identifies are spaced (5 s), so either may start first and must still
    # be playing when the other is heard
    stack.enqueue(str(guild.id), stack.tone_entry(440, 20), **_channels(guild))
    stack.enqueue(str(other.id), stack.tone_entry(660, 20), **_channels(other))
    stack.launch(str(guild.id))
    stack.launch(str(other.id))
    stack.wait_for_audio(str(guild.id), since=0)
    stack.wait_for_audio(str(other.id), since=0)

    first = stack.hear(str(guild.id), 1.5)
    second = analyse_recent(stack, str(other.id), 1.5)

    assert _near(first.dominant_hz, 440), first
    assert _near(second.dominant_hz, 660), second


def analyse_recent(stack: VoiceStack, guild_id: str, seconds: float):  # type: ignore[no-untyped-def]
    from tests.support.audio import analyse  # noqa: PLC0415

    now = time.monotonic()
    return analyse(stack.packets(guild_id, since=now - seconds, until=now))


def test_a_skip_sent_before_any_task_exists_does_not_skip_the_first_track(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listen(emulator, guild)
    gid = str(guild.id)
    stack.store.skip(gid)
    stack.store.skip(gid)
    first, second = stack.tone_entry(440, 6), stack.tone_entry(660, 6)
    stack.enqueue(gid, first, second, **_channels(guild))

    stack.launch(gid)
    stack.wait_for_audio(gid, since=0)
    heard = stack.hear(gid, 1.0)
    record = stack.record(gid)

    assert _near(heard.dominant_hz, 440), heard
    assert record.actual.now_playing is not None and record.actual.now_playing.entry_id == first.entry_id
    assert record.actual.applied_skip_seq == record.desired.skip_seq == 2


def test_a_second_task_for_the_same_guild_exits_and_only_one_plays(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listen(emulator, guild)
    gid = str(guild.id)
    stack.enqueue(gid, stack.tone_entry(440, 8), **_channels(guild))
    first = stack.start_task(gid)
    stack.wait_for_audio(gid, since=0)

    second = stack.start_task(gid)
    code = second.wait(timeout=30)

    assert code == 0
    assert "held by another task" in second.log
    assert first.process.poll() is None
    assert len({p.ssrc for p in stack.packets(gid, since=0)}) == 1


def test_a_rate_limited_now_playing_post_is_retried_after_retry_after(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listen(emulator, guild)
    gid = str(guild.id)
    path = f"/channels/{guild.text_channel_id}/messages"
    emulator.rate_limit("POST", path, times=1, retry_after=0.6)
    stack.enqueue(gid, stack.tone_entry(440, 6), **_channels(guild))

    task = stack.launch(gid)
    stack.wait_for_audio(gid, since=0)
    record = stack.wait_record(gid, lambda r: r.actual.message_id is not None, what="now-playing post")
    posts = emulator.requests(method="POST", path=path)

    assert len(posts) == 2 and posts[1].time - posts[0].time >= 0.55
    assert record.actual.message_id is not None
    assert task.process.poll() is None


def test_three_failures_in_a_row_pause_the_guild_with_a_notice(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, media_server: MediaServer
) -> None:
    _listen(emulator, guild)
    gid = str(guild.id)
    broken = [stack.tone_entry(freq, 2) for freq in (330, 550, 770)]
    for freq in (330, 550, 770):
        media_server.fail(f"tone-{freq}-2.webm", 404)
    last = stack.tone_entry(880, 4)
    stack.enqueue(gid, *broken, last, **_channels(guild))

    task = stack.launch(gid)
    record = stack.wait_record(gid, lambda r: r.desired.paused, timeout=30, what="paused after three failures")
    # the pause is stored before its notice is posted: wait for the notice, not just the flag
    notices = emulator.wait_for(lambda: _notices_once(emulator, guild, "Paused after 3 tracks failed in a row"),
                                message="the pause notice")  # fmt: skip

    assert any("Paused after 3 tracks failed in a row" in text for text in notices), notices
    assert sum("Skipped" in text for text in notices) == 3
    assert task.process.poll() is None  # no crash loop: it waits for /resume
    assert record.desired.paused


def test_ten_unplayable_tracks_in_a_row_keep_a_bounded_stack_and_pause_as_the_setting_says(
    emulator: DiscordEmulator, guild: GuildHandle, media_server: MediaServer, tmp_path: Path,
    warm_starter: WarmStarter,
) -> None:  # fmt: skip
    # GIVEN ten tracks whose media answers 404, then a good one, and the pause set at ten failures
    stack = VoiceStack(emulator, media_server, tmp_path, starter=warm_starter, TIMMYBOT_PAUSE_AFTER_FAILURES="10")
    try:
        _listen(emulator, guild)
        gid = str(guild.id)
        freqs = [300 + 20 * i for i in range(10)]
        broken = [stack.tone_entry(freq, 2) for freq in freqs]
        for freq in freqs:
            media_server.fail(f"tone-{freq}-2.webm", 404)
        good = stack.tone_entry(880, 4)
        stack.enqueue(gid, *broken, good, **_channels(guild))

        # WHEN the task plays the queue
        task = stack.launch(gid)
        paused = stack.wait_record(gid, lambda r: r.desired.paused, timeout=60, what="paused after ten failures")
        notices = emulator.wait_for(lambda: _notices_once(emulator, guild, "Paused after 10 tracks failed in a row"),
                                    message="the pause notice")  # fmt: skip
        time.sleep(1.0)  # nothing more starts while paused
        still = stack.record(gid)
        failures = re.findall(r"failed \((\d+) in a row; stack depth (\d+)\)", task.log)
        counts, depths = [int(n) for n, _ in failures], [int(depth) for _, depth in failures]

        # THEN each failure was tried from the same depth (a loop, not recursion), it paused after
        # the tenth with a notice, and the good track waits at the head of the queue
        assert counts == list(range(1, 11)), task.log[-3000:]
        assert len(set(depths)) == 1, depths
        assert sum("Skipped" in text for text in notices) == 10, notices
        assert any("Paused after 10 tracks failed in a row" in text for text in notices), notices
        assert paused.desired.paused and still.actual.now_playing is None
        assert still.queue == (good.entry_id,)

        # AND /resume plays it
        stack.store.resume(gid)
        stack.wait_record(gid, lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id
                          == good.entry_id, what="the good track")  # fmt: skip
        heard = stack.hear(gid, 1.0, settle=0.5)
        assert _near(heard.dominant_hz, 880), heard
        assert task.process.poll() is None
    finally:
        stack.close()


def test_skipping_the_last_track_leaves_the_guild_idle_every_time(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN a playing task; WHEN the only track is skipped, ten times over (its own state write and
    # the skip's run at once: the older picture must never land last)
    _listen(emulator, guild)
    gid = str(guild.id)
    stack.enqueue(gid, stack.tone_entry(440, 20), **_channels(guild))
    task = stack.launch(gid)
    for round_ in range(10):
        if round_:
            stack.enqueue(gid, stack.tone_entry(440, 20), **_channels(guild))
        playing = stack.wait_record(gid, lambda r: r.actual.now_playing is not None, what=f"playing ({round_})")
        stack.wait_for_audio(gid, since=time.monotonic(), timeout=10, packets=3)
        stack.store.skip(gid)

        # THEN the record says idle: nothing playing, nothing queued, the skip applied
        idle = stack.wait_record(gid, lambda r: r.actual.now_playing is None and not r.queue
                                 and r.actual.applied_skip_seq == r.desired.skip_seq, timeout=5,
                                 what=f"idle after skip {round_}")  # fmt: skip
        assert idle.actual.applied_skip_seq == playing.desired.skip_seq + 1
    time.sleep(1.0)
    assert stack.record(gid).actual.now_playing is None
    assert task.process.poll() is None
