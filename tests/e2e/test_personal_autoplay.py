"""Autoplay on the real voice task: when the queue runs out, the task queues the next track of the
YouTube mix seeded by the last one played (a loopback "YouTube" that answers mixes) and plays it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.audio import analyse
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.media import MediaServer, tone_file
from tests.support.sources import ENV_CONFIG, write_config
from tests.support.voice_stack import VoiceStack
from timmybot.models import QueueEntry
from timmybot.sources import MemoryRecords, SourceChain, resolve_query

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def stack(
    make_stack: Callable[..., VoiceStack], media_server: MediaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> VoiceStack:
    media_server.add("first.webm", tone_file(440, 2, "webm"))
    media_server.add("next.webm", tone_file(660, 6, "webm"))
    config = write_config(tmp_path / "sites.json", {"ytfake": {"base_url": media_server.base_url, "tracks": [
        {"file": "first.webm", "title": "First", "artist": "Band", "duration_s": 2},
        {"file": "next.webm", "title": "Next", "artist": "Band", "duration_s": 6},
    ]}})  # fmt: skip
    monkeypatch.setenv(ENV_CONFIG, str(config))
    voice_stack = make_stack(TIMMYBOT_SOURCE_CHAIN="tests.support.fake_youtube_api:loopback_youtube_mix")
    voice_stack.env[ENV_CONFIG] = str(config)
    return voice_stack


def _listener(emulator: DiscordEmulator, guild: GuildHandle) -> None:
    user = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, user, guild.voice_channel_id)


def _queue_first(stack: VoiceStack, guild: GuildHandle) -> None:
    [track] = resolve_query(
        stack.media.url_for("first.webm"), SourceChain(stack.settings.source_settings(), MemoryRecords())
    )
    entry = QueueEntry(entry_id="e-first", track=track, requester_id="1", added_at=time.time())
    stack.enqueue(
        str(guild.id), entry, voice_channel_id=str(guild.voice_channel_id), text_channel_id=str(guild.text_channel_id)
    )


def test_with_autoplay_on_the_exhausted_queue_continues_with_the_mix(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN one short track queued and autoplay on
    _listener(emulator, guild)
    _queue_first(stack, guild)
    gid = str(guild.id)
    stack.store.set_autoplay(gid, True)
    # WHEN the task plays it to the end
    stack.launch(gid)
    stack.wait_for_audio(gid, since=0)
    # THEN it queues and plays the mix's next track, requested by "autoplay"
    record = stack.wait_record(
        gid,
        lambda r: r.actual.now_playing is not None and r.actual.now_playing.title == "Next",
        timeout=20,
        what="the autoplayed track",
    )
    assert record.actual.now_playing is not None and record.actual.now_playing.requester_id == "autoplay"
    start = time.monotonic()
    time.sleep(1.5)
    heard = analyse(stack.packets(gid, since=start, until=time.monotonic()))
    assert heard.dominant_hz is not None and abs(heard.dominant_hz - 660) <= 20


def test_with_autoplay_off_the_task_stops_when_the_queue_runs_out(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    _listener(emulator, guild)
    _queue_first(stack, guild)
    gid = str(guild.id)
    stack.launch(gid)
    stack.wait_for_audio(gid, since=0)
    record = stack.wait_record(
        gid, lambda r: r.actual.now_playing is None and r.actual.started_at is None, timeout=20, what="an idle task"
    )
    time.sleep(1.0)
    assert stack.record(gid).queue == () and record.actual.now_playing is None
