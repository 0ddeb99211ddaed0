"""A personal playlist saved in one guild and loaded in another plays the same tones, in order, heard
under DAVE through a libdave listener; its track that fails to play is marked dead and its owner told.

The real path: signed interactions → api (save on the store) → worker (load: voice checks on the
emulator, entries queued from the stored tracks) → a real voice task (discord.py, davey, FFmpeg)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import windows
from tests.support.emulator import DiscordEmulator
from tests.support.media import MediaServer
from tests.support.signing import APPLICATION_ID, GUILD_ID, OTHER_GUILD_ID, USER_ID, command, signed_api
from tests.support.signing import next_interaction_id as next_id
from tests.support.voice_stack import VoiceStack
from tests.support.warm_start import WarmStarter
from timmybot.playlists.book import Owner, PlaylistBook, track_key

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TONES = (440, 550, 660)
SECONDS = 1.5


@pytest.fixture
def emulator() -> Iterator[DiscordEmulator]:
    with DiscordEmulator(application_id=int(APPLICATION_ID)) as emu:
        yield emu


def _collapse(heard: list[float]) -> list[float]:
    """The distinct tones in the order heard (a tone must last 3 windows: 0.6 s)."""
    runs: list[list[float]] = []
    for hz in heard:
        if runs and abs(runs[-1][0] - hz) <= runs[-1][0] * 0.03:
            runs[-1].append(hz)
        else:
            runs.append([hz])
    return [run[0] for run in runs if len(run) >= 3]


def test_a_personal_playlist_saved_in_one_guild_plays_its_tones_in_order_in_another_under_dave(
    emulator: DiscordEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm_starter: WarmStarter
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(emulator.ca_file))
    with MediaServer() as media:
        stack = VoiceStack(emulator, media, tmp_path, starter=warm_starter)
        try:
            _run(emulator, media, stack, tmp_path)
        finally:
            stack.close()


def _run(emulator: DiscordEmulator, media: MediaServer, stack: VoiceStack, tmp_path: Path) -> None:
    one = emulator.add_guild("One", guild_id=int(GUILD_ID))
    two = emulator.add_guild("Two", guild_id=int(OTHER_GUILD_ID))
    for guild in (one, two):
        emulator.add_member(guild.id, "alice", user_id=int(USER_ID))
    # GIVEN guild One's queue: three tones and, third, one whose file will be gone when it plays
    entries = [stack.tone_entry(hz, SECONDS) for hz in TONES]
    broken = stack.tone_entry(770, SECONDS)
    stack.store.append_entries(GUILD_ID, [entries[0], entries[1], broken, entries[2]], cap=100)
    settings: dict[str, Any] = {
        "dispatcher": "inline",
        "discord_api_base": emulator.api_base,
        "discord_bot_token": emulator.bot_token,
        "launcher": "none",  # the test starts the voice task itself
        "allow_local_media": True,
        "allowlist_extra": (GUILD_ID, OTHER_GUILD_ID),
        "rate_play_user": "off",
    }
    with signed_api(tmp_path, **settings) as api:

        def playlist(sub: str, options: dict[str, Any], guild_id: str, channel: int | None) -> tuple[Any, str]:
            payload = command("playlist", options, sub=sub, guild_id=guild_id, interaction_id=next_id())
            payload["channel_id"], payload["token"] = str(channel), f"token-{payload['id']}"
            return api.post(payload).json_body, payload["token"]

        # WHEN the member saves it as a personal playlist in One
        saved, _ = playlist("save", {"name": "Tones"}, GUILD_ID, one.text_channel_id)
        assert "Saved 4 tracks as your personal playlist **Tones**" in saved["data"]["content"]
        media.fail(f"tone-770-{SECONDS}.webm", 404)
        # AND loads it in Two, where they listen in the voice channel
        assert two.voice_channel_id is not None
        emulator.set_member_voice(two.id, int(USER_ID), two.voice_channel_id)
        _, token = playlist("load", {"name": "tones"}, OTHER_GUILD_ID, two.text_channel_id)
        loaded = emulator.original_message(token)
        assert loaded is not None and "Loaded **Tones**: 4 of its 4 tracks." in str(loaded["content"])
        started = time.monotonic()
        stack.launch(OTHER_GUILD_ID)
        stack.wait_record(OTHER_GUILD_ID, lambda r: not r.queue and r.actual.now_playing is None
                          and r.actual.played_seq >= 3, timeout=45, what="the playlist played out")  # fmt: skip

    # THEN the listener in Two heard the same tones, in order, under DAVE
    heard = emulator.heard(two.id, int(USER_ID), since=started)
    tones = _collapse([w.hz for w in windows(heard)])
    assert len(tones) == 3, tones
    for got, want in zip(tones, TONES, strict=True):
        assert got == pytest.approx(want, rel=0.03)
    # AND the track that failed is marked dead in the playlist, and its owner was told in Two
    owner = Owner("personal", USER_ID)
    book = PlaylistBook(stack.store)
    header = book.get(owner, "Tones")
    assert book.dead_keys(owner, header) == {track_key(broken.track.to_dict())}
    notices = [str(m.body.get("content")) for m in emulator.messages(two.text_channel_id)]
    assert any(f"as dead in <@{USER_ID}>'s playlist **Tones**" in n for n in notices), notices
