"""The now-playing card, edited by the real voice task through its one card editor, as the emulator
records every create, edit and delete: its progress is refreshed while playing, never while paused,
never more than once per minimum interval; a deleted card is never edited again, and the next
track gets a new one.

The intervals are the settings' (15 s and 5 s by default); here 2 s and 1 s keep the test short."""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.voice_stack import VoiceStack, cards

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]

REFRESH_S = 2.0
MIN_EDIT_S = 1.0


@pytest.fixture
def stack(make_stack: Callable[..., VoiceStack]) -> VoiceStack:
    return make_stack(TIMMYBOT_CARD_REFRESH_S=str(REFRESH_S), TIMMYBOT_CARD_MIN_EDIT_S=str(MIN_EDIT_S))


def test_the_card_refreshes_while_playing_rests_while_paused_and_never_edits_a_deleted_card(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    listener = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, listener, guild.voice_channel_id)
    gid = str(guild.id)
    log = functools.partial(cards, emulator, guild, deletes=True)  # the card's creates, edits and deletes
    first, second = stack.tone_entry(440, 30), stack.tone_entry(550, 30)
    stack.enqueue(gid, first, second, voice_channel_id=str(guild.voice_channel_id),
                  text_channel_id=str(guild.text_channel_id))  # fmt: skip
    stack.launch(gid)
    emulator.wait_for(lambda: any(m.action == "create" for m in log()), timeout=20)
    created = next(m for m in log() if m.action == "create")

    # WHILE PLAYING: refreshed about every REFRESH_S, and never two edits within MIN_EDIT_S
    time.sleep(REFRESH_S * 3 + 0.5)
    playing = [m for m in log() if m.action == "edit"]
    assert 2 <= len(playing) <= 4, [round(m.time - created.time, 2) for m in playing]
    times = [created.time] + [m.time for m in playing]
    assert min(b - a for a, b in itertools.pairwise(times)) >= MIN_EDIT_S - 0.05

    # A 429 on an edit: the edit is retried after retry_after, not before, and nothing floods
    path = f"/channels/{created.channel_id}/messages/{created.message_id}"
    emulator.rate_limit("PATCH", path, times=1, retry_after=1.5)
    emulator.wait_for(lambda: any(r.status == 429 for r in emulator.requests("PATCH", path)), timeout=REFRESH_S * 3)
    limited = next(r for r in emulator.requests("PATCH", path) if r.status == 429)
    emulator.wait_for(lambda: any(r.status == 200 and r.time > limited.time for r in emulator.requests("PATCH", path)))
    retried = next(r for r in emulator.requests("PATCH", path) if r.status == 200 and r.time > limited.time)
    assert retried.time - limited.time >= 1.5 - 0.05
    assert [r for r in emulator.requests("PATCH", path) if limited.time < r.time < retried.time] == []

    # PAUSED: one edit for the change, then nothing
    stack.store.pause(gid)
    paused_at = time.monotonic()
    emulator.wait_for(lambda: stack.record(gid).actual.paused)
    time.sleep(REFRESH_S * 2 + 0.5)
    while_paused = log(since=paused_at)
    assert len(while_paused) <= 1, while_paused

    # DELETED while playing: never edited again; the next track posts a new card
    stack.store.resume(gid)
    time.sleep(0.5)
    assert emulator.delete_message(int(created.channel_id), created.message_id)
    deleted_at = time.monotonic()
    time.sleep(REFRESH_S * 2 + 0.5)
    assert not [m for m in log(since=deleted_at) if m.message_id == created.message_id]
    stack.store.skip(gid)
    emulator.wait_for(lambda: any(m.action == "create" for m in log(since=deleted_at)), timeout=10)
    fresh = next(m for m in log(since=deleted_at) if m.action == "create")
    assert fresh.message_id != created.message_id
    assert stack.wait_record(gid, lambda r: r.actual.message_id == str(fresh.message_id), what="the new card")
