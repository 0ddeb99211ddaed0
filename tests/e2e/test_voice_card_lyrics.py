"""The synced lyrics line in the now-playing card, as the real voice task shows it on the emulator:
with the guild's setting on, the task finds the track's synced lyrics (by signature, from a
loopback LRCLIB, and caches them), shows the previous, current and next lines, edits the card as
the lines change through the one card editor (never two edits within its minimum interval, a 429
waited out), and stops while paused. The line shown matches the position ±1 line.

The minimum interval is 5 s by default; here 1 s keeps the test short."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.emulator.records import MessageRecord
from tests.support.fake_lrclib import FakeLrclib, record
from tests.support.voice_stack import VoiceStack, cards
from timmybot.lyrics import service
from timmybot.store.keys import LYRICS_SK, lyrics_pk

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MIN_EDIT_S = 1.0
LINE_S = 2.0
SECONDS = 20
LRC = "[ar:Test Signals]\n[ti:Signal Song]\n" + "\n".join(
    f"[00:{int(n * LINE_S):02d}.00]Line {n} of the signal" for n in range(int(SECONDS / LINE_S))
)
_PROGRESS = re.compile(r"(\d+):(\d\d) / \d+:\d\d")
_CURRENT = re.compile(r"\*\*Line (\d+) of the signal\*\*")


@pytest.fixture
def lrclib() -> Iterator[FakeLrclib]:
    with FakeLrclib() as fake:
        yield fake


@pytest.fixture
def stack(make_stack: Callable[..., VoiceStack], lrclib: FakeLrclib) -> VoiceStack:
    return make_stack(TIMMYBOT_CARD_MIN_EDIT_S=str(MIN_EDIT_S), TIMMYBOT_LYRICS_API_URL=lrclib.url)


def _lyrics(card: MessageRecord) -> tuple[float, int] | None:
    """(position in seconds the card's progress bar shows, the current line's number), if it shows one."""
    embed = card.embeds[0]
    field = next((f for f in embed.get("fields", []) if f["name"] == "Lyrics"), None)
    progress = _PROGRESS.search(embed["description"])
    if field is None or progress is None:
        return None
    current = _CURRENT.search(field["value"])
    assert current is not None, field["value"]
    return int(progress.group(1)) * 60 + int(progress.group(2)), int(current.group(1))


def test_the_card_follows_the_synced_lines_within_the_edit_cap_and_rests_while_paused(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, lrclib: FakeLrclib
) -> None:
    # GIVEN a Topic upload of a song LRCLIB has synced lyrics for (same length), and the setting on
    listener = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, listener, guild.voice_channel_id)
    gid = str(guild.id)
    tone = stack.tone_entry(440, SECONDS)
    entry = replace(tone, track=replace(tone.track, title="Signal Song", artist="Test Signals - Topic"))
    duration = entry.track.duration_s or SECONDS
    lrclib.records.append(record(1, "Signal Song", "Test Signals", "Loopback Sessions", duration, synced=LRC,
                                 plain="\n".join(f"Line {n} of the signal" for n in range(10))))  # fmt: skip
    stack.enqueue(gid, entry, voice_channel_id=str(guild.voice_channel_id), text_channel_id=str(guild.text_channel_id))
    stack.store.update_settings(gid, lyrics_in_card=True)
    stack.launch(gid)

    # WHEN it plays
    emulator.wait_for(lambda: any(m.action == "create" for m in cards(emulator, guild)), timeout=20)
    emulator.wait_for(lambda: any(_lyrics(m) for m in cards(emulator, guild)), timeout=10)
    time.sleep(LINE_S * 3 + 0.5)

    # THEN the task found the lyrics by signature and cached them for the next reader
    assert lrclib.paths()[0] == "/api/get"
    track = entry.track
    cached = stack.store.get_record(lyrics_pk(service.track_digest(track)), LYRICS_SK)
    assert cached is not None and cached["in_time"] is True
    # AND the card moved with the lines, each showing the line at its position ±1
    posted = cards(emulator, guild)
    shown = [(m, found) for m in posted if (found := _lyrics(m)) is not None]
    assert len({line for _m, (_p, line) in shown}) >= 3, [found for _m, found in shown]
    for _card, (position_s, line) in shown:
        assert abs(line - int(position_s // LINE_S)) <= 1, (position_s, line)
    # AND never two card writes within the minimum interval
    times = [m.time for m in posted]
    assert min(b - a for a, b in itertools.pairwise(times)) >= MIN_EDIT_S - 0.05, times

    # A 429 on a lyrics edit: retried after retry_after, and nothing sent in between
    created = next(m for m in posted if m.action == "create")
    path = f"/channels/{created.channel_id}/messages/{created.message_id}"
    emulator.rate_limit("PATCH", path, times=1, retry_after=1.5)
    emulator.wait_for(lambda: any(r.status == 429 for r in emulator.requests("PATCH", path)), timeout=LINE_S * 3)
    limited = next(r for r in emulator.requests("PATCH", path) if r.status == 429)
    emulator.wait_for(lambda: any(r.status == 200 and r.time > limited.time for r in emulator.requests("PATCH", path)))
    retried = next(r for r in emulator.requests("PATCH", path) if r.status == 200 and r.time > limited.time)
    assert retried.time - limited.time >= 1.5 - 0.05
    assert [r for r in emulator.requests("PATCH", path) if limited.time < r.time < retried.time] == []

    # PAUSED: one edit for the change, then no lyric edits although the lines would move on
    stack.store.pause(gid)
    paused_at = time.monotonic()
    emulator.wait_for(lambda: stack.record(gid).actual.paused)
    time.sleep(LINE_S * 2 + 0.5)
    assert len(cards(emulator, guild, since=paused_at)) <= 1
    assert emulator.refused_bodies() == []
