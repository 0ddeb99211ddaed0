"""The source chain end to end: settings-built chains of loopback sites, a subprocess voice task,
the canary and the freshness check as operators run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.media import MediaServer, tone_file
from tests.support.sources import ENV_CONFIG, timmybot_logs, write_config  # noqa: F401 - fixture
from timmybot import netguard
from timmybot.config import Settings
from timmybot.errors import SourceError
from timmybot.models import Track
from timmybot.sources import (
    BreakerState,
    CircuitBreaker,
    MemoryRecords,
    SourceChain,
    SourceSettings,
    resolve_query,
    stream_for,
)
from timmybot.sources.operator import reset_operator_cache
from timmybot.store import SQLiteStore
from timmybot.worker.play import resolve_tracks

pytestmark = pytest.mark.usefixtures("timmybot_logs")

ROOT = Path(__file__).parents[2]
CHAIN = ("tests.support.sources:loopback_youtube", "tests.support.sources:loopback_soundcloud")
TONE = {"title": "Tone Four Forty", "artist": "Test Signals", "duration_s": 2, "isrc": None}


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MediaServer, MediaServer, Path]]:
    """Two loopback "sites" with the same tone; YouTube's answers every stream with a bot check."""
    with MediaServer() as youtube, MediaServer() as soundcloud:
        youtube.add("tone.webm", tone_file(440, 2, "webm"))
        soundcloud.add("tone-sc.webm", tone_file(440, 2, "webm"))
        config = write_config(
            tmp_path / "sites.json",
            {
                "ytfake": {
                    "base_url": youtube.base_url,
                    "fault": "bot_check",
                    "fail_on": ["stream", "search"],
                    "calls_file": str(tmp_path / "calls.txt"),
                    "tracks": [{"file": "tone.webm", **TONE}],
                },
                "scfake": {"base_url": soundcloud.base_url, "tracks": [{"file": "tone-sc.webm", **TONE}]},
            },
        )
        monkeypatch.setenv(ENV_CONFIG, str(config))
        yield youtube, soundcloud, tmp_path


def _chain() -> SourceChain:
    """One process's chain of the two sites, its breakers in memory."""
    return SourceChain(SourceSettings(allow_local_media=True, source_chain=CHAIN), MemoryRecords())


def test_play_survives_a_bot_check_through_the_fallback(
    sites: tuple[MediaServer, MediaServer, Path], caplog: pytest.LogCaptureFixture
) -> None:
    # WHEN /play searches while YouTube answers with a bot check
    chain = _chain()
    with caplog.at_level("INFO"):
        [track] = resolve_query("tone four forty", chain)
        info = stream_for(track, chain)
    # THEN the track came from SoundCloud, says so, and its audio is really there
    assert (track.source, track.fallback_from, track.label) == ("scfake", "ytfake", "scfake")
    with urllib.request.urlopen(info.stream_url, timeout=5) as response:
        assert response.read(4) == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
    # AND the operator got the hint and the metric
    assert "metric=SourceFailures value=1 source=ytfake reason=bot_check" in caplog.text
    assert "configure cookies or a PO-token provider" in caplog.text


def test_a_queued_youtube_track_is_played_from_the_fallback_at_play_time(
    sites: tuple[MediaServer, MediaServer, Path],
) -> None:
    youtube, _, _ = sites
    # GIVEN a track queued from YouTube when it still worked
    chain = _chain()
    [queued] = resolve_query(youtube.url_for("tone.webm"), chain)
    assert queued.source == "ytfake"
    # WHEN the voice task resolves its stream THEN SoundCloud's copy (same title, ± 3 s) plays
    info = stream_for(queued, chain)
    assert (info.source, info.fallback_from) == ("scfake", "ytfake")
    assert info.stream_url.endswith("/tone-sc.webm")


def test_a_voice_task_subprocess_uses_the_same_chain_from_its_environment(
    sites: tuple[MediaServer, MediaServer, Path],
) -> None:
    youtube, _, tmp_path = sites
    track = Track(
        "ytfake",
        "tone.webm",
        TONE["title"],
        youtube.url_for("tone.webm"),
        2,
        None,  # type: ignore[arg-type]
        TONE["artist"],
    )  # type: ignore[arg-type]
    code = textwrap.dedent("""
        import json, sys
        from timmybot.config import Settings
        from timmybot.sources import SourceChain, stream_for
        from timmybot.models import Track
        from timmybot.store import build_store
        settings = Settings.from_env()
        chain = SourceChain.over_store(settings.source_settings(), build_store(settings))  # as its bootstrap does
        info = stream_for(Track.from_dict(json.loads(sys.argv[1])), chain)
        print(info.source, info.fallback_from)
    """)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": f"{ROOT / 'layers/core/python'}:{ROOT}",
        "TIMMYBOT_ALLOW_LOCAL_MEDIA": "true",
        "TIMMYBOT_SOURCE_CHAIN": ",".join(CHAIN),
        "TIMMYBOT_STORE_BACKEND": "sqlite",
        "TIMMYBOT_SQLITE_PATH": str(tmp_path / "store.sqlite3"),
        ENV_CONFIG: os.environ[ENV_CONFIG],
        # the loopback media servers' ports, as a launcher hands them to the voice task it starts
        netguard.ALLOW_ENV: ",".join(netguard.allowance_entries()),
    }
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(track.to_dict())],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["scfake", "ytfake"]
    assert "ytfake stream" in (tmp_path / "calls.txt").read_text(encoding="utf-8")


def test_one_guilds_failing_tracks_leave_youtube_on_and_a_second_guild_switches_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a YouTube whose every stream and link fails with an unknown extractor error, a healthy
    # SoundCloud, and settings that keep the breakers in the bot's SQLite store
    with MediaServer() as youtube, MediaServer() as soundcloud:
        soundcloud.add("tone-sc.webm", tone_file(440, 2, "webm"))
        config = write_config(
            tmp_path / "sites.json",
            {
                "ytfake": {"base_url": youtube.base_url, "fault": "broken", "fail_on": ["stream", "resolve"]},
                "scfake": {"base_url": soundcloud.base_url, "tracks": [{"file": "tone-sc.webm", **TONE}]},
            },
        )
        monkeypatch.setenv(ENV_CONFIG, str(config))
        settings = Settings(
            allow_local_media=True,
            source_chain=CHAIN,
            store_backend="sqlite",
            sqlite_path=str(tmp_path / "store.sqlite3"),
            data_dir=str(tmp_path),
        )
        store = SQLiteStore(settings.sqlite_path)
        worker_store = SQLiteStore(settings.sqlite_path)  # another process's store over the same file
        voice_chain = SourceChain.over_store(settings.source_settings(), store)
        worker_chain = SourceChain.over_store(settings.source_settings(), worker_store)
        queued = [
            Track(
                "ytfake",
                f"t{n}.webm",
                TONE["title"],
                youtube.url_for(f"t{n}.webm"),
                2,
                None,  # type: ignore[arg-type]
                TONE["artist"],
            )
            for n in range(3)
        ]  # type: ignore[arg-type]
        try:
            # WHEN one guild's voice task plays three queued YouTube tracks
            played = [stream_for(track, voice_chain, "111").source for track in queued]
            # THEN each played from SoundCloud, and YouTube is still on for everyone
            assert played == ["scfake"] * 3
            breaker = CircuitBreaker(store)
            assert breaker.snapshot("ytfake").state is BreakerState.CLOSED
            # WHEN a second guild's /play link fails the same way in the worker
            with pytest.raises(SourceError):
                resolve_tracks(
                    youtube.url_for("t9.webm"),
                    store=worker_store,
                    sources=worker_chain,
                    settings=settings,
                    guild_id="222",
                )
            # THEN the error has spread (3 tracks, 2 guilds): YouTube rests, in the store every process reads
            snapshot = breaker.snapshot("ytfake")
            assert (snapshot.state, snapshot.reason) == (BreakerState.OPEN, "error")
        finally:
            worker_store.close()
            store.close()


def test_a_deployed_environment_cannot_name_test_sources() -> None:
    code = "from timmybot.config import Settings; Settings.from_env()"
    env = {"PYTHONPATH": str(ROOT / "layers/core/python"), "TIMMYBOT_SOURCE_CHAIN": ",".join(CHAIN)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=False, text=True, timeout=60, env=env
    )
    assert result.returncode != 0 and "allow_local_media" in result.stderr


def _clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TIMMYBOT_", "PIP_"))}
    env.update(extra)
    return env


def test_canary_fails_cleanly_without_network_and_uses_the_operator_secret(tmp_path: Path) -> None:
    # GIVEN an operator secret whose proxy leads nowhere (no network here either way)
    secret = tmp_path / "sources.json"
    secret.write_text(json.dumps({"proxy": "http://canary:pr0xy-pa55word@127.0.0.1:9"}), encoding="utf-8")
    secret.chmod(0o600)
    reset_operator_cache()
    # WHEN the canary runs as operators run it
    result = subprocess.run(
        [sys.executable, "scripts/canary.py", "--timeout", "2", "--source-secret-file", str(secret)],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=_clean_env(TIMMYBOT_DATA_DIR=str(tmp_path), TIMMYBOT_SQLITE_PATH=str(tmp_path / "store.sqlite3")),
    )
    output = result.stdout + result.stderr
    # THEN it fails with one clear line per source, no traceback, and no proxy password
    assert result.returncode == 1, output
    lines = [line for line in output.splitlines() if line.startswith("canary ") and "breaker opened" not in line]
    assert [line.split(":")[0] for line in lines] == ["canary youtube", "canary soundcloud"]
    assert all("FAILED (unreachable)" in line for line in lines), output
    assert "Traceback" not in output
    assert "pr0xy-pa55word" not in output
    # AND it opened both breakers in the bot's store, so no Lambda or voice task asks a dead site
    store = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        for name in ("youtube", "soundcloud"):
            assert CircuitBreaker(store).snapshot(name).state is BreakerState.OPEN
    finally:
        store.close()
    assert "canary youtube: breaker opened for 300 s" in output


def test_version_check_says_clearly_when_the_index_is_unreachable(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "scripts/check_ytdlp_version.py",
            "--index-url",
            "http://127.0.0.1:9/simple",
            "--timeout",
            "10",
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=_clean_env(PIP_CONFIG_FILE=os.devnull),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pinned 2026.10.26; newest unknown" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_play_through_the_api_tells_the_user_which_source_played(
    sites: tuple[MediaServer, MediaServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.e2e.test_play_flow import play_world  # noqa: PLC0415 - the /play world of the api tests

    _, _, tmp_path = sites
    # GIVEN the api wired to the emulator, with a chain whose first site answers with a bot check
    with play_world(tmp_path / "api", monkeypatch, source_chain=CHAIN) as world:
        # WHEN a member searches with /play
        body, token = world.play("tone four forty")
        # THEN the track was queued from the stand-in, and the reply says so
        assert body == {"type": 5}
        original = world.original(token)
        assert "ytfake refused to serve it right now, so this plays from scfake." in original["content"]
        record = world.api.store.get_guild(str(world.guild.id))
        [entry] = world.api.store.get_entries(str(world.guild.id), record.queue)
        assert (entry.track.source, entry.track.fallback_from) == ("scfake", "ytfake")
