"""Spotify links end to end: a signed /play of a Spotify playlist → the worker reads it from the fake
Spotify API (metadata only) → unresolved entries → the real voice task mirrors each one through the
chain's loopback "sites" at play time → the emulated voice server hears the mirrored tones; a track
no site has is skipped with a notice naming it, and matches land in the track cache."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import analyse
from tests.support.dave_checks import privacy_code_problems
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.fake_spotify_api import FakeSpotifyApi, spotify_id, spotify_track
from tests.support.media import MediaServer, tone_file
from tests.support.signing import APPLICATION_ID, GUILD_ID, USER_ID, SignedApi, command, signed_api
from tests.support.sources import ENV_CONFIG, write_config
from timmybot.library.spotify import forget_app_tokens
from timmybot.models import GuildRecord
from timmybot.sources.mirroring import mirror_pk
from timmybot.store.keys import MIRROR_SK

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CHAIN = ("tests.support.sources:loopback_youtube", "tests.support.sources:loopback_soundcloud")
ALPHA = spotify_track(spotify_id(1), "Alpha", "Test Signals", 4, isrc="QZTST2600001")
GHOST = spotify_track(spotify_id(2), "Ghost Song", "Nobody Knows", 3)
BETA = spotify_track(spotify_id(3), "Beta", "Test Signals", 4)
PLAYLIST = spotify_id(99)


@dataclass
class SpotifyWorld:
    emulator: DiscordEmulator
    guild: GuildHandle
    api: SignedApi
    spotify: FakeSpotifyApi

    def play(self, query: str) -> str:
        payload = command("play", {"query": query}, user_id=USER_ID)
        payload["channel_id"] = str(self.guild.text_channel_id)
        payload["token"] = f"token-{payload['id']}"
        assert self.api.post(payload).json_body == {"type": 5}
        return str(payload["token"])

    def record(self) -> GuildRecord:
        return self.api.store.get_guild(GUILD_ID)

    def wait(self, predicate: Any, what: str, timeout: float = 30.0) -> GuildRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.record()
            if predicate(record):
                return record
            time.sleep(0.05)
        logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in Path(self.api.db_path.parent).glob("*.log"))
        raise AssertionError(f"timed out waiting for {what}: {self.record()!r}\n{logs}")

    def notices(self) -> list[str]:
        return [str(m.body.get("content") or "") for m in self.emulator.messages(self.guild.text_channel_id)]


@contextlib.contextmanager
def spotify_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Iterator[SpotifyWorld]:
    with DiscordEmulator(application_id=int(APPLICATION_ID)) as emulator, FakeSpotifyApi(page_size=2) as spotify:
        monkeypatch.setenv("SSL_CERT_FILE", str(emulator.ca_file))
        guild = emulator.add_guild("Spotify Guild", guild_id=int(GUILD_ID))
        emulator.add_member(guild.id, "alice", user_id=int(USER_ID))
        emulator.set_member_voice(guild.id, int(USER_ID), guild.voice_channel_id)
        settings: dict[str, Any] = {
            "dispatcher": "inline",
            "discord_api_base": emulator.api_base,
            "discord_gateway_url": emulator.gateway_url,
            "discord_bot_token": emulator.bot_token,
            "launcher": "local",
            "voice_task_command": (sys.executable, "-m", "voice_task"),
            "voice_task_log_dir": str(tmp_path),
            "allow_local_media": True,
            "source_chain": CHAIN,
            "tick_s": 0.1,
            "spotify_api_url": spotify.api_url,
            "spotify_token_url": spotify.token_url,
            "spotify_client_id": spotify.client_id,
            "spotify_client_secret": spotify.client_secret,
        }
        settings.update(overrides)
        forget_app_tokens()
        with signed_api(tmp_path, **settings) as api:
            try:
                yield SpotifyWorld(emulator, guild, api, spotify)
            finally:
                api.store.stop(GUILD_ID)
                wait = getattr(api.services.launcher, "wait_children", None)
                if wait is not None:
                    wait(30)
            logs = [path.read_text(errors="replace") for path in tmp_path.glob("voice_task-*.log")]
            problems = privacy_code_problems(emulator, guild.id, logs)
            assert not problems, problems


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """YouTube stand-in finds "Alpha" by its ISRC (titled differently there); SoundCloud's has "Beta";
    nobody has "Ghost Song"."""
    with MediaServer() as youtube, MediaServer() as soundcloud:
        youtube.add("alpha.webm", tone_file(440, 4, "webm"))
        soundcloud.add("beta.webm", tone_file(660, 4, "webm"))
        calls = tmp_path / "calls.txt"
        config = write_config(tmp_path / "sites.json", {
            "ytfake": {"base_url": youtube.base_url, "isrc_lookup": True, "calls_file": str(calls), "tracks": [
                {"file": "alpha.webm", "title": "Alpha (Official Audio)", "artist": "Signals Inc", "duration_s": 5,
                 "isrc": "QZTST2600001"}]},
            "scfake": {"base_url": soundcloud.base_url, "calls_file": str(calls), "tracks": [
                {"file": "beta.webm", "title": "Beta", "artist": "Test Signals", "duration_s": 4}]},
        })  # fmt: skip
        monkeypatch.setenv(ENV_CONFIG, str(config))
        yield calls


def _near(value: float | None, target: float, tolerance: float = 0.03) -> bool:
    return value is not None and abs(value - target) <= target * tolerance


def _hear(world: SpotifyWorld, seconds: float) -> float | None:
    start = time.monotonic()
    time.sleep(seconds)
    return analyse(world.emulator.packets(world.guild.id, since=start, until=time.monotonic())).dominant_hz


def test_a_spotify_playlist_plays_its_mirrored_tones_and_skips_what_no_site_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sites: Path
) -> None:
    with spotify_world(tmp_path, monkeypatch) as world:
        # GIVEN a public Spotify playlist: Alpha (has an ISRC), Ghost Song (nowhere), Beta
        world.spotify.add_playlist(PLAYLIST, "Signals", [ALPHA, GHOST, BETA])
        # WHEN a member /plays its link
        token = world.play(f"https://open.spotify.com/playlist/{PLAYLIST}")
        # THEN the worker queued three unresolved Spotify entries from two API pages, with no search
        original = world.emulator.original_message(token)
        assert original is not None and original["embeds"][0]["title"] == "Added 3 tracks"
        assert ("GET", f"/v1/playlists/{PLAYLIST}/items", "app") in world.spotify.requests
        record = world.record()
        queued = world.api.store.get_entries(GUILD_ID, record.queue)
        assert [(e.track.source, e.title, e.track.isrc) for e in queued[-2:]] == [
            ("spotify", "Ghost Song", None),
            ("spotify", "Beta", None),
        ]
        # AND the real voice task plays Alpha's mirror (found by ISRC on the YouTube stand-in): 440 Hz
        world.wait(lambda r: r.actual.now_playing is not None, "the first track")
        start = time.monotonic()
        deadline = start + 30
        while time.monotonic() < deadline and len(world.emulator.packets(world.guild.id, since=0)) < 10:
            time.sleep(0.05)
        assert _near(_hear(world, 1.5), 440)
        # AND Ghost Song is skipped with a notice naming it, then Beta's mirror plays: 660 Hz
        world.wait(
            lambda r: r.actual.now_playing is not None and r.actual.now_playing.title == "Beta", "Beta", timeout=30
        )
        time.sleep(0.5)
        assert _near(_hear(world, 1.5), 660)
        skipped = [text for text in world.notices() if text.startswith("Skipped **Ghost Song**")]
        assert skipped == [
            "Skipped **Ghost Song**: I couldn't find “Ghost Song” by Nobody Knows on any source I can play from."
        ]
        # AND both matches are cached under their Spotify ids for the next time (7 days)
        alpha = world.api.store.get_record(mirror_pk("spotify", ALPHA["id"]), MIRROR_SK)
        beta = world.api.store.get_record(mirror_pk("spotify", BETA["id"]), MIRROR_SK)
        assert (alpha or {}).get("source_id") == "alpha.webm"
        assert (beta or {}).get("source") == "scfake"
        assert "ytfake isrc" in sites.read_text(encoding="utf-8")


def test_a_spotify_track_link_queues_one_entry_and_an_unknown_one_gets_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sites: Path
) -> None:
    with spotify_world(tmp_path, monkeypatch, launcher="none") as world:
        world.spotify.add_track(BETA)
        token = world.play(f"https://open.spotify.com/track/{BETA['id']}")
        original = world.emulator.original_message(token)
        assert original is not None and original["embeds"][0]["title"] == "Beta"
        missing = world.play(f"https://open.spotify.com/track/{spotify_id(404)}")
        assert (world.emulator.original_message(missing) or {})["content"] == (
            "That Spotify track doesn't exist or isn't public."
        )


def test_wrong_spotify_app_credentials_say_spotify_links_cannot_play(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sites: Path
) -> None:
    with spotify_world(tmp_path, monkeypatch, launcher="none", spotify_client_secret="not-the-secret") as world:
        token = world.play(f"https://open.spotify.com/album/{spotify_id(5)}")
        assert (world.emulator.original_message(token) or {})["content"] == (
            "Spotify refused this bot's app credentials, so Spotify links can't play right now."
        )
