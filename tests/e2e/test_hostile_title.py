"""A track titled to attack the server it is played in: 2100 characters of mentions, a masked link,
bold and spoilers. Every body the bot sends about it must be one Discord takes (the suite's body
guard checks each), none may ping, and none may hold a masked link the title made.

The title reaches the bot two ways: through /play (the source reads it; it is capped when stored),
and written straight into the store, as a record from before the cap would be.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_play_flow import play_world
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.media import MediaServer, titled_tone_file
from tests.support.signing import GUILD_ID, MANAGE_GUILD, USER_ID, SignedApi, command
from tests.support.voice_stack import VoiceStack
from timmybot.models import Actual, QueueEntry

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

UNIT = "@everyone <@&1> [Free Nitro](https://evil.example) **x** ||y|| "
HOSTILE = (UNIT * (2100 // len(UNIT) + 1))[:2100]
LISTENERS = (USER_ID, "222222222222222222", "333333333333333333")
#: A masked link Discord would render: ``[text](target`` with none of the three escaped.
MASKED_LINK = re.compile(r"(?<!\\)\[(?:[^\]\\]|\\.)*(?<!\\)\]\((?P<target>[^)\s]*)")


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def assert_safe(body: Any, *, message: bool = True) -> None:
    """No masked link but ours to the track's own page, no live mass mention, nothing that pings."""
    for value in _strings(body):
        for match in MASKED_LINK.finditer(value):
            assert "evil.example" not in match.group("target"), value[:300]
        assert "@everyone" not in value and "<@&1>" not in value, value[:300]
    if message:
        assert body.get("allowed_mentions") == {"parse": []}, json.dumps(body)[:300]


def _raw_entry(entry_id: str, url: str) -> QueueEntry:
    """A queue entry as an older release stored it (the whole title, no cap), read as the store reads it."""
    return QueueEntry.from_dict(
        {
            "entry_id": entry_id,
            "track": {
                "source": "local",
                "source_id": entry_id,
                "title": HOSTILE,
                "url": url,
                "duration_s": 30,
                "thumbnail": None,
                "artist": HOSTILE,
            },
            "requester_id": USER_ID,
            "added_at": time.time(),
        }
    )


def _now_playing(api: SignedApi, entry: QueueEntry) -> None:
    """What the voice task holding the lease reports: ``entry`` playing, three listening."""
    lease = api.store.get_guild(GUILD_ID).lease
    api.store.write_actual(GUILD_ID, lease.generation, Actual(
        now_playing=entry, started_at=time.time() - 5, position_ms=5000, listener_ids=LISTENERS,
    ))  # fmt: skip


def _answer(api: SignedApi, payload: dict[str, Any]) -> dict[str, Any]:
    response = api.post(payload)
    assert response.status_code == 200
    body = response.json_body
    if body["type"] in (4, 7):
        assert_safe(body["data"])
    return body


def test_the_hostile_title_through_play_queue_nowplaying_and_every_control(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MediaServer() as media, play_world(tmp_path, monkeypatch) as world:
        # GIVEN a file whose title tag is the hostile title
        media.add("song.webm", titled_tone_file(440, 3, HOSTILE))
        api = world.api

        # WHEN it is played: the worker's edit of the reply quotes it
        _, token = world.play(media.url_for("song.webm"))
        original = world.original(token)
        assert_safe(original, message=False)
        played = api.store.get_guild(GUILD_ID).queue
        stored = api.store.get_entries(GUILD_ID, played)
        assert stored and all(len(e.title) <= 256 for e in stored)

        # AND a record from before the cap plays, with more of them queued
        raw = [_raw_entry(f"raw{i}", media.url_for("song.webm")) for i in range(3)]
        api.store.append_entries(GUILD_ID, raw[1:], cap=500)
        _now_playing(api, raw[0])
        queued = len(api.store.get_guild(GUILD_ID).queue)

        # THEN every answer about it is one Discord takes, that cannot ping nor link anywhere else
        answers = [
            _answer(api, command("queue")),
            _answer(api, command("nowplaying")),
            _answer(api, command("pause", user_id=USER_ID)),
            _answer(api, command("resume", user_id=USER_ID)),
            _answer(api, command("seek", {"position": "0:01"}, user_id=USER_ID)),
            _answer(api, command("move", {"from": queued, "to": 1}, user_id=USER_ID)),
            _answer(api, command("remove", {"position": queued}, user_id=USER_ID)),
            _answer(api, command("skip", user_id=LISTENERS[1])),  # a vote: three listen
            _answer(api, command("skip", user_id=LISTENERS[2])),  # the vote passes
        ]
        _now_playing(api, raw[1])
        answers.append(_answer(api, command("skip", user_id=USER_ID, permissions=MANAGE_GUILD)))
        texts = [str(a["data"].get("content", "")) for a in answers]
        assert any("voted to skip" in t for t in texts) and any("Vote passed" in t for t in texts)
        assert any("paused" in t for t in texts) and any("removed" in t for t in texts)
        assert all(len(t) <= 2000 for t in texts)
        # AND the emulator saw no body it had to refuse and none that could ping
        assert world.emulator.refused_bodies() == [] and world.emulator.ping_bodies() == []


def test_the_voice_tasks_notices_and_exit_edit_about_it_are_taken_and_cannot_ping(
    stack: VoiceStack, emulator: DiscordEmulator, guild: GuildHandle, media_server: MediaServer
) -> None:
    # GIVEN a queue, stored before the cap, of a track that is gone and one that plays
    emulator.add_listener(guild.id, guild.voice_channel_id)
    media_server.add("song.webm", titled_tone_file(440, 6, "plain"))
    gone = _raw_entry("gone1", media_server.url_for("gone.webm"))
    plays = _raw_entry("plays1", media_server.url_for("song.webm"))
    gid = str(guild.id)
    stack.enqueue(gid, gone, plays, voice_channel_id=str(guild.voice_channel_id),
                  text_channel_id=str(guild.text_channel_id))  # fmt: skip

    # WHEN the task skips the gone one, plays the other (its card), and is stopped
    task = stack.launch(gid)
    stack.wait_for_audio(gid, since=0, timeout=20)
    stack.store.stop(gid)
    assert task.wait(timeout=30) == 0

    # THEN the notice, the card and the exit edit were all taken, and none can ping or link away
    messages = emulator.messages(guild.text_channel_id)
    kinds = [m.action for m in messages]
    assert "create" in kinds and "edit" in kinds
    notice = next(m for m in messages if (m.content or "").startswith("Skipped"))
    assert len(notice.content or "") <= 2000
    for record in messages:
        assert_safe(record.body)
    assert emulator.refused_bodies() == [] and emulator.ping_bodies() == []
