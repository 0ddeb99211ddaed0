"""The real voice task honours a requester's preferences per track, and counts plays per platform.

A track whose requester asked to be told (/preferences notify) gets one new message naming them, the
only message allowed to ping, and only them; other tracks ping nobody. ``TracksPlayed`` is counted
once per track that really started, by the source it played from, and never for a track that failed
before playing."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.media import MediaServer
from tests.support.signing import OTHER_USER_ID, USER_ID
from tests.support.voice_stack import VoiceStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]

PLAYED = re.compile(r"metric=TracksPlayed value=1 source=(\S+)")


def test_a_requester_who_asked_is_pinged_alone_and_each_started_track_counts_once_by_source(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, media_server: MediaServer
) -> None:
    # GIVEN a queue: USER's track (notify on), a track whose file is gone, and another member's track
    emulator.set_member_voice(guild.id, emulator.add_member(guild.id, "listener"), guild.voice_channel_id)
    gid = str(guild.id)
    mine = replace(stack.tone_entry(440, 2, requester=USER_ID), notify=True)
    broken = stack.tone_entry(660, 2, requester=USER_ID)
    theirs = stack.tone_entry(880, 2, requester=OTHER_USER_ID)
    media_server.fail(broken.url.rsplit("/", 1)[-1], 404)
    stack.enqueue(gid, mine, replace(broken, notify=True), theirs, voice_channel_id=str(guild.voice_channel_id),
                  text_channel_id=str(guild.text_channel_id))  # fmt: skip

    # WHEN the voice task plays the queue to its end and is stopped
    task = stack.launch(gid)
    stack.wait_record(
        gid, lambda r: r.actual.now_playing is not None and r.actual.now_playing.entry_id == theirs.entry_id,
        what="the third track", timeout=30,
    )  # fmt: skip
    deadline = time.monotonic() + 10  # its first frames go out, the next tick counts them
    while len(PLAYED.findall(task.log)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stack.store.stop(gid)
    assert task.wait(timeout=30) == 0

    # THEN USER was pinged once, for their own track that played, and the message names only them
    messages = emulator.messages(guild.text_channel_id)
    pings = [m for m in messages if (m.body.get("allowed_mentions") or {}).get("users")]
    assert [(m.action, m.body["allowed_mentions"]) for m in pings] == [("create", {"parse": [], "users": [USER_ID]})]
    content = pings[0].content or ""
    assert content.startswith(f"<@{USER_ID}> your track is playing now: **") and "440" in content
    # AND the broken track (notify on too) pinged nobody: it never started
    assert any((m.content or "").startswith("Skipped") for m in messages)
    # AND every body passed the spec and the ping rule
    assert emulator.refused_bodies() == [] and emulator.ping_bodies() == []
    # AND the two tracks that started were counted, by the source they played from; the broken one not
    played = PLAYED.findall(task.log)
    assert played == [mine.track.source, theirs.track.source]
    assert "metric=TracksFailed" in task.log
