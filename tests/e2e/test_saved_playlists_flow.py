"""/playlist end to end without a real voice task: signed interactions → api → worker → the emulator
(voice checks, the response's edits, the export's multipart upload) and a loopback "CDN" for imports.
Every body the worker sends is held to the emulator's spec checks (a refused one fails the call)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_play_flow import PlayWorld, play_world
from tests.support.media import MediaServer, tone_file
from tests.support.signing import GUILD_ID, USER_ID, command, next_interaction_id
from timmybot.models import Track
from timmybot.playlists.book import Owner, PlaylistBook
from timmybot.store.keys import PLAYLIST_DEAD_SK, playlist_dead_pk

pytestmark = pytest.mark.e2e


class World:
    def __init__(self, play: PlayWorld, media: MediaServer, cdn: MediaServer) -> None:
        self.play, self.media, self.cdn = play, media, cdn

    @property
    def book(self) -> PlaylistBook:
        return PlaylistBook(self.play.api.store)

    def playlist(self, sub: str, options: dict[str, Any] | None = None,
                 resolved: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:  # fmt: skip
        payload = command("playlist", options, sub=sub, interaction_id=next_interaction_id())
        payload["channel_id"] = str(self.play.text_id)
        payload["token"] = f"token-{payload['id']}"
        if resolved is not None:
            payload["data"]["resolved"] = {"attachments": resolved}
        return self.play.api.post(payload).json_body, payload["token"]

    def import_file(self, name: str, data: bytes, *, size: int | None = None) -> tuple[dict[str, Any], str]:
        url = self.cdn.add_bytes(f"{name}.json", data, "application/json")
        attachment = {"id": "7001", "filename": f"{name}.json", "size": len(data) if size is None else size,
                      "url": url}  # fmt: skip
        return self.playlist("import", {"name": name, "file": "7001"}, resolved={"7001": attachment})

    def content(self, token: str) -> str:
        return str(self.play.original(token).get("content") or "")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with MediaServer() as media, MediaServer() as cdn:
        for hz in (440, 550, 660):
            media.add(f"tone {hz}.webm", tone_file(hz, 1, "webm"))
        overrides = {"attachment_host": f"127.0.0.1:{cdn.port}", "net_guard_allow": (f"127.0.0.1:{cdn.port}",),
                     "rate_play_user": "off"}  # fmt: skip
        with play_world(tmp_path, monkeypatch, **overrides) as play:
            yield World(play, media, cdn)


def _tracks(world: World) -> list[dict[str, Any]]:
    from timmybot.worker.play import resolve_tracks  # noqa: PLC0415

    services = world.play.api.services
    found = []
    for hz in (440, 550, 660):
        url = world.media.url_for(f"tone {hz}.webm")
        found += resolve_tracks(url, store=services.store, sources=services.sources, settings=services.settings)
    return [t.to_dict() for t in found]


def test_load_queues_the_stored_tracks_in_order_skipping_dead_ones_and_says_so(world: World) -> None:
    owner = Owner("personal", USER_ID)
    tracks = _tracks(world)
    header, _ = world.book.create(owner, "Tones", tracks, created_by=USER_ID)
    dead_key = f"{tracks[1]['source']}:{tracks[1]['source_id']}"
    world.play.api.store.update_record(playlist_dead_pk(owner.pk, header.id), PLAYLIST_DEAD_SK,
                                       lambda _c: {"keys": [dead_key]})  # fmt: skip
    before = len(world.media.requests())

    body, token = world.playlist("load", {"name": "tones"})

    assert body["type"] == 5
    content = world.content(token)
    assert "Loaded **Tones**: 2 of its 3 tracks." in content
    assert "Skipped 1 marked dead" in content
    record = world.play.api.store.get_guild(GUILD_ID)
    queued = world.play.api.store.get_entries(GUILD_ID, record.queue)
    assert [e.track.url for e in queued] == [tracks[0]["url"], tracks[2]["url"]]
    assert len(world.media.requests()) == before  # loaded from the store: nothing re-resolved


def test_export_posts_a_multipart_json_file_and_importing_it_round_trips(world: World) -> None:
    owner = Owner("personal", USER_ID)
    tracks = _tracks(world)
    world.book.create(owner, "Tones", tracks, created_by=USER_ID)

    _, token = world.playlist("export", {"name": "Tones"})

    message = world.play.original(token)
    assert "**Tones**: 3 tracks" in str(message["content"])
    (attachment,) = message["attachments"]
    assert attachment["filename"] == "Tones.json"
    data = world.play.emulator.uploaded(attachment["url"])
    assert data is not None
    document = json.loads(data)
    assert document["format"] == "timmybot-playlist"
    assert [t["url"] for t in document["tracks"]] == [t["url"] for t in tracks]
    assert set(document["tracks"][0]) == {"title", "artist", "url", "duration_s"}

    _, imported = world.import_file("Again", data)

    assert "Imported **Again**: added 3/3." in world.content(imported)
    again = world.book.get(owner, "again")
    assert [Track.from_dict(t).url for t in world.book.tracks(owner, again)] == [t["url"] for t in tracks]
    assert len(world.cdn.requests("Again.json")) == 1


def test_hostile_urls_a_foreign_host_or_a_2_mib_file_are_refused_and_nothing_is_fetched(world: World) -> None:
    good = world.media.url_for("tone 440.webm")
    hostile = json.dumps({"tracks": [{"url": good}, {"url": "http://169.254.169.254/latest/meta-data/"}]})
    media_before = len(world.media.requests())

    body, token = world.import_file("Hostile", hostile.encode())

    assert body["type"] == 5
    assert "Entry 2 of that file isn't a link /play accepts, so I imported nothing" in world.content(token)
    assert len(world.media.requests()) == media_before  # not even the good entry was resolved
    assert world.book.find(Owner("personal", USER_ID), "Hostile") is None

    big, _ = world.import_file("Big", b"{}", size=2 * 1024 * 1024)
    assert "at most 1.0 MiB" in big["data"]["content"]
    assert world.cdn.requests("Big.json") == []
    foreign = {"id": "7002", "filename": "x.json", "size": 10, "url": "https://example.com/x.json"}
    refused, _ = world.playlist("import", {"name": "Foreign", "file": "7002"}, resolved={"7002": foreign})
    assert "only import files uploaded to Discord" in refused["data"]["content"]


def test_a_600_track_import_stops_at_the_500_track_cap_with_progress_and_says_so(world: World) -> None:
    store = world.play.api.store
    urls = []
    for n in range(600):  # YouTube videos already in the track cache: resolved as /play would, offline
        video = f"vid{n:08d}"
        store.put_cached_track(Track("youtube", video, f"Video {n}", f"https://www.youtube.com/watch?v={video}",
                                     100, None, "Band"))  # fmt: skip
        urls.append(f"https://www.youtube.com/watch?v={video}")

    _, token = world.import_file("Many", json.dumps({"tracks": [{"url": u} for u in urls]}).encode())

    content = world.content(token)
    assert "Imported **Many**: added 500/600." in content
    assert "It stopped at the cap: a playlist holds at most 500 tracks." in content
    progress = [w.body.get("content") for w in world.play.emulator.webhook_calls(token)]
    assert "Importing… Added 250/500" in progress
    header = world.book.get(Owner("personal", USER_ID), "many")
    assert header.count == 500
    assert world.book.tracks(Owner("personal", USER_ID), header)[-1]["source_id"] == "vid00000499"


def test_add_with_a_query_resolves_it_as_play_would_and_appends_it(world: World) -> None:
    owner = Owner("personal", USER_ID)
    world.book.create(owner, "Tones", _tracks(world)[:1], created_by=USER_ID)
    url = world.media.url_for("tone 660.webm")

    body, token = world.playlist("add", {"name": "tones", "query": url})

    assert body["type"] == 5 and body["data"]["flags"] == 64
    assert "to **Tones** (2 tracks)" in world.content(token)
    header = world.book.get(owner, "Tones")
    assert [t["url"] for t in world.book.tracks(owner, header)][-1] == url


def test_an_import_from_a_spotify_playlist_link_keeps_metadata_for_mirroring_at_play_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.fake_spotify_api import FakeSpotifyApi, spotify_id, spotify_track  # noqa: PLC0415
    from timmybot.library.spotify import forget_app_tokens  # noqa: PLC0415

    tracks = [spotify_track(spotify_id(n), f"Song {n}", "Band", 200 + n, isrc=f"QZTST26{n:05d}") for n in range(5)]
    with FakeSpotifyApi(page_size=2) as spotify, MediaServer() as media, MediaServer() as cdn:
        spotify.add_playlist(spotify_id(99), "Signals", tracks)
        overrides = {"spotify_api_url": spotify.api_url, "spotify_token_url": spotify.token_url,
                     "spotify_client_id": spotify.client_id, "spotify_client_secret": spotify.client_secret,
                     "rate_play_user": "off"}  # fmt: skip
        forget_app_tokens()
        with play_world(tmp_path, monkeypatch, **overrides) as play:
            world = World(play, media, cdn)
            link = f"https://open.spotify.com/playlist/{spotify_id(99)}"

            _, token = world.playlist("import", {"name": "Signals", "url": link})

            assert "Imported **Signals**: added 5/5." in world.content(token)
            owner = Owner("personal", USER_ID)
            stored = world.book.tracks(owner, world.book.get(owner, "signals"))
            assert [(t["source"], t["title"], t["isrc"]) for t in stored] == [
                ("spotify", f"Song {n}", f"QZTST26{n:05d}") for n in range(5)
            ]


def test_an_import_that_would_outlast_the_worker_keeps_what_it_resolved_and_says_so(world: World) -> None:
    from timmybot.playlists.jobs import JobKind, PlaylistJob, PlaylistPorts, run_playlist_job  # noqa: PLC0415

    services = world.play.api.services
    urls = []
    for n in range(30):
        video = f"vid{n:08d}"
        services.store.put_cached_track(Track("youtube", video, f"Video {n}", f"https://www.youtube.com/watch?v={video}",
                                              100, None, "Band"))  # fmt: skip
        urls.append(f"https://www.youtube.com/watch?v={video}")
    data = json.dumps({"tracks": [{"url": u} for u in urls]}).encode()
    url = world.cdn.add_bytes("slow.json", data, "application/json")
    ticks = iter(range(0, 10_000, 5))  # every look at the clock: 5 s later
    ports = PlaylistPorts(
        store=services.store,
        rest=services.discord,
        launcher=services.launcher,
        sources=services.sources,
        settings=services.settings,
        clock=lambda: float(next(ticks)),
    )
    job = PlaylistJob(
        kind=JobKind.IMPORT,
        interaction_id=next_interaction_id(),
        application_id=services.settings.discord_application_id,
        guild_id=GUILD_ID,
        user_id=USER_ID,
        scope="personal",
        name="Slow",
        attachment_url=url,
        attachment_size=len(data),
        token="token-slow",
    )

    run_playlist_job(job, ports)

    content = world.content("token-slow")
    header = world.book.get(Owner("personal", USER_ID), "slow")
    assert 0 < header.count < 30
    assert f"Imported **Slow**: added {header.count}/30." in content
    assert f"I stopped after {header.count} of its 30 links" in content
