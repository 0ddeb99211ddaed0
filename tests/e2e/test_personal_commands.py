"""Personal music commands end to end: signed interactions → api → worker → the loopback Spotify and
YouTube Data APIs (users' bearer tokens from the real vault) → queue entries and message edits on the
emulator. Recommendations use a loopback "YouTube" that answers mixes, and need no linked account."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_hostile_title import HOSTILE, assert_safe
from tests.e2e.test_play_flow import PlayWorld, play_world
from tests.support.fake_spotify_api import FakeSpotifyApi, spotify_id, spotify_track
from tests.support.fake_youtube_api import FakeYouTubeApi, video, video_id
from tests.support.media import MediaServer, tone_file
from tests.support.signing import EPHEMERAL, GUILD_ID, OTHER_USER_ID, USER_ID, command, component, next_interaction_id
from tests.support.sources import ENV_CONFIG, write_config
from timmybot.accounts.vault import Platform, TokenSet, build_vault
from timmybot.discord import custom_ids
from timmybot.discord.custom_ids import HistoryReplayId, MyPlaylistsPageId, MyPlaylistsPickId

pytestmark = pytest.mark.e2e

SPOTIFY_TOKEN = "spotify-user-token-0123456789abcdef"
YOUTUBE_TOKEN = "youtube-user-token-0123456789abcdef"
ROAD_TRIP = spotify_id(500)
ROAD_TRACKS = [spotify_track(spotify_id(n), f"Road {n}", "Band", 200 + n) for n in range(1, 6)]
MIX_CHAIN = ("tests.support.fake_youtube_api:loopback_youtube_mix",)


@dataclass
class Personal:
    world: PlayWorld
    spotify: FakeSpotifyApi
    youtube: FakeYouTubeApi
    media: MediaServer

    def link(self, user_id: str, platform: Platform, token: str) -> None:
        vault = build_vault(self.world.api.services.settings)
        vault.put(
            user_id, platform, TokenSet(access_token=token, refresh_token="r-" + token, expires_at=time.time() + 3600)
        )

    def send(self, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
        payload["channel_id"] = str(self.world.text_id)
        payload["token"] = f"token-{payload['id']}"
        return self.world.api.post(payload).json_body, payload["token"]

    def command(
        self, name: str, options: dict[str, Any] | None = None, user_id: str = USER_ID
    ) -> tuple[dict[str, Any], str]:
        return self.send(command(name, options, user_id=user_id, interaction_id=next_interaction_id()))

    def click(
        self, custom_id: str, *, user_id: str = USER_ID, values: list[str] | None = None
    ) -> tuple[dict[str, Any], str]:
        payload = component(custom_id, user_id=user_id, interaction_id=next_interaction_id())
        if values is not None:
            payload["data"]["component_type"] = 3
            payload["data"]["values"] = values
        return self.send(payload)

    def original(self, token: str) -> dict[str, Any]:
        message = self.world.emulator.original_message(token)
        assert message is not None, "the worker never edited the response"
        return message

    def queued(self) -> list[Any]:
        record = self.world.api.store.get_guild(GUILD_ID)
        return self.world.api.store.get_entries(GUILD_ID, record.queue)


@pytest.fixture
def personal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Personal]:
    with MediaServer() as media, FakeSpotifyApi(page_size=2) as spotify, FakeYouTubeApi(page_size=10) as youtube:
        for n, hz in enumerate((440, 550, 660, 770)):
            media.add(f"song{n}.webm", tone_file(hz, 2, "webm"))
        config = write_config(
            tmp_path / "sites.json",
            {
                "ytfake": {
                    "base_url": media.base_url,
                    "tracks": [
                        {"file": f"song{n}.webm", "title": f"Song {n}", "artist": "Band", "duration_s": 2}
                        for n in range(4)
                    ],
                }
            },
        )
        monkeypatch.setenv(ENV_CONFIG, str(config))
        overrides = {
            "spotify_api_url": spotify.api_url,
            "youtube_api_url": youtube.api_url,
            # Pages of 2 exercise paging; Spotify's real pages hold 50, so 30 pages stand for the default 10
            "list_page_cap": 30,
            "source_chain": MIX_CHAIN,
        }
        with play_world(tmp_path, monkeypatch, **overrides) as world:
            yield Personal(world, spotify, youtube, media)


# ---------------------------------------------------------------------- not linked
def test_a_user_who_linked_nothing_is_told_which_link_command_to_run(personal: Personal) -> None:
    body, token = personal.command("my-playlists")
    assert body == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert personal.original(token)["content"] == (
        "You haven't linked a music account. Run `/link youtube` or `/link spotify` first, then try again."
    )
    body, token = personal.command("liked-songs", {"platform": "spotify"})
    assert body["data"]["flags"] == EPHEMERAL
    assert personal.original(token)["content"] == (
        "You haven't linked your Spotify account. Run `/link spotify` first, then try again."
    )
    assert personal.queued() == []


def test_an_unknown_platform_is_refused_on_the_fast_path(personal: Personal) -> None:
    body, _ = personal.command("liked-songs", {"platform": "myspace"})
    assert body["data"] == {"content": "The platform must be `youtube` or `spotify`.", "flags": EPHEMERAL,
                            "allowed_mentions": {"parse": []}}  # fmt: skip


# ---------------------------------------------------------------------- playlists
def test_my_playlists_pages_past_25_and_queues_a_choice_with_progress(personal: Personal) -> None:
    # GIVEN a user with 22 YouTube playlists and 8 Spotify ones (30: two pages)
    yt_lists = [(f"PLtest{n:04d}", f"YT list {n}", [video_id(n)]) for n in range(22)]
    personal.youtube.add_user(YOUTUBE_TOKEN, playlists=yt_lists)
    personal.spotify.add_playlist(ROAD_TRIP, "Road trip", ROAD_TRACKS)
    others = [spotify_id(600 + n) for n in range(7)]
    for pid in others:
        personal.spotify.add_playlist(pid, f"SP list {pid[-2:]}", ROAD_TRACKS[:1])
    personal.spotify.add_user(SPOTIFY_TOKEN, playlists=[*others, ROAD_TRIP])
    personal.link(USER_ID, Platform.YOUTUBE, YOUTUBE_TOKEN)
    personal.link(USER_ID, Platform.SPOTIFY, SPOTIFY_TOKEN)
    # WHEN they run /my-playlists
    _, token = personal.command("my-playlists")
    menu = personal.original(token)
    # THEN page 1 is a select menu of 25 and a Next button
    select = menu["components"][0]["components"][0]
    assert select["custom_id"] == custom_ids.build(MyPlaylistsPickId())
    assert len(select["options"]) == 25 and menu["content"].endswith("page 1/2. Choose one to queue it.")
    buttons = menu["components"][1]["components"]
    assert [b["custom_id"] for b in buttons] == [
        custom_ids.build(MyPlaylistsPageId(1)),
        custom_ids.build(MyPlaylistsPageId(2)),
    ]
    # WHEN they press Next THEN the message shows the last 5 (from the saved listing, no API call)
    calls = len(personal.spotify.requests)
    body, _ = personal.click(custom_ids.build(MyPlaylistsPageId(2)))
    assert body["type"] == 7
    options = body["data"]["components"][0]["components"][0]["options"]
    assert [o["label"] for o in options][-1] == "Road trip" and len(options) == 5
    assert len(personal.spotify.requests) == calls
    # WHEN they choose "Road trip" (5 tracks, served 2 per page)
    choice = next(o["value"] for o in options if o["label"] == "Road trip")
    body, token = personal.click(custom_ids.build(MyPlaylistsPickId()), values=[choice])
    # THEN the menu turns into "Adding…", then progress edits, then the result
    assert body["type"] == 7 and body["data"]["content"] == "Adding **Road trip** (Spotify)…"
    edits = [c.body.get("content") for c in personal.world.emulator.webhook_calls(token) if c.action == "edit_original"]
    assert edits[:3] == ["Adding **Road trip**… Added 2/5", "Adding **Road trip**… Added 4/5",
                         "Adding **Road trip**… Added 5/5"]  # fmt: skip
    assert edits[-1].startswith("Added 5/5 from **Road trip**.")
    assert [(e.track.source, e.title) for e in personal.queued()] == [("spotify", f"Road {n}") for n in range(1, 6)]


def test_a_forged_or_foreign_playlist_choice_queues_nothing(personal: Personal) -> None:
    personal.spotify.add_playlist(ROAD_TRIP, "Road trip", ROAD_TRACKS)
    personal.spotify.add_user(SPOTIFY_TOKEN, playlists=[ROAD_TRIP])
    personal.link(USER_ID, Platform.SPOTIFY, SPOTIFY_TOKEN)
    personal.command("my-playlists")
    not_listed = custom_ids.playlist_choice("spotify", spotify_id(777))
    body, _ = personal.click(custom_ids.build(MyPlaylistsPickId()), values=[not_listed])
    assert body["data"]["content"] == "That playlist isn't in your list. Run /my-playlists again."
    body, _ = personal.click(custom_ids.build(MyPlaylistsPickId()), values=["v1:sp:../../me"])
    assert body["data"]["flags"] == EPHEMERAL and "no longer works" in body["data"]["content"]
    # another member never saw a listing of their own: nothing to choose from
    choice = custom_ids.playlist_choice("spotify", ROAD_TRIP)
    body, _ = personal.click(custom_ids.build(MyPlaylistsPickId()), values=[choice], user_id=OTHER_USER_ID)
    assert body["data"]["content"].startswith("That list has expired")
    assert personal.queued() == []


def _rendered(message: dict[str, Any]) -> dict[str, Any]:
    """The parts of a message Discord renders as markdown (and the mention rule), not component labels."""
    return {key: message[key] for key in ("content", "embeds", "allowed_mentions") if key in message}


def test_a_hostile_playlist_name_is_quoted_safely_from_the_menu_to_the_last_edit(personal: Personal) -> None:
    # GIVEN a Spotify playlist named with 2100 characters of mentions, a masked link, bold and spoilers
    hostile_list = spotify_id(501)
    personal.spotify.add_playlist(hostile_list, HOSTILE, ROAD_TRACKS[:3])
    personal.spotify.add_user(SPOTIFY_TOKEN, playlists=[hostile_list])
    personal.link(USER_ID, Platform.SPOTIFY, SPOTIFY_TOKEN)
    # WHEN the user runs /my-playlists and picks it
    _, menu_token = personal.command("my-playlists")
    menu = personal.original(menu_token)
    (option,) = menu["components"][0]["components"][0]["options"]
    body, pick_token = personal.click(custom_ids.build(MyPlaylistsPickId()), values=[option["value"]])
    # THEN the menu's option shows the name as plain text (labels render no markdown and ping nobody),
    # within Discord's 100 characters
    assert len(option["label"]) <= 100 and option["label"].startswith("@everyone <@&1> [Free Nitro]")
    # AND the menu, the "Adding…" update and every edit after it quote the name safely where it renders
    assert body["type"] == 7
    assert "\\[Free Nitro\\]" in body["data"]["content"]  # quoted, escaped and shortened
    assert_safe(_rendered(body["data"]))
    assert_safe(_rendered(menu), message=False)
    calls = [c for token in (menu_token, pick_token) for c in personal.world.emulator.webhook_calls(token)
             if c.action in ("edit_original", "followup", "edit_followup")]  # fmt: skip
    assert calls and calls[-1].body.get("content", "").startswith("Added 3/3 from **")
    for call in calls:
        assert_safe(_rendered(call.body))
        assert "[Free Nitro](" not in call.body.get("content", "")
    # AND Discord took every body (the session guard checks each against its rules), none could ping
    assert personal.world.emulator.refused_bodies() == []
    assert personal.world.emulator.ping_bodies() == []
    assert [e.title for e in personal.queued()] == ["Road 1", "Road 2", "Road 3"]


# ---------------------------------------------------------------------- liked songs
def test_liked_songs_from_youtube_and_from_spotify_up_to_50(personal: Personal) -> None:
    ids = personal.youtube.add_videos(*(video(video_id(n), f"Liked {n}", "Band - Topic", 180 + n) for n in range(3)))
    personal.youtube.add_user(YOUTUBE_TOKEN, liked=ids)
    saved = [spotify_track(spotify_id(n), f"Saved {n}", "Band", 150) for n in range(60)]
    personal.spotify.add_user(SPOTIFY_TOKEN, saved=saved)
    personal.link(USER_ID, Platform.YOUTUBE, YOUTUBE_TOKEN)
    personal.link(USER_ID, Platform.SPOTIFY, SPOTIFY_TOKEN)

    _, token = personal.command("liked-songs", {"platform": "youtube"})
    assert personal.original(token)["content"].startswith("Your liked songs on YouTube:")
    youtube = personal.queued()
    assert [(e.track.source, e.title, e.duration_s, e.track.artist) for e in youtube] == [
        ("youtube", f"Liked {n}", 180 + n, "Band") for n in range(3)
    ]
    assert all(path != "search" for path, _ in personal.youtube.requests)

    _, token = personal.command("liked-songs", {"platform": "spotify"})
    assert personal.original(token)["embeds"][0]["title"] == "Added 50 tracks"
    assert len(personal.queued()) == 3 + 50


# ---------------------------------------------------------------------- history
def test_play_history_buttons_requeue_only_for_their_owner(personal: Personal) -> None:
    # GIVEN two tracks played by the user
    personal.world.play(personal.media.url_for("song0.webm"))
    personal.world.play(personal.media.url_for("song1.webm"))
    # WHEN they open /play-history
    _, token = personal.command("play-history")
    shown = personal.original(token)
    assert shown["embeds"][0]["description"].splitlines()[0].startswith("`1.` Song 1 — Band")
    first = shown["components"][0]["components"][0]
    parsed = custom_ids.parse(first["custom_id"])
    assert isinstance(parsed, HistoryReplayId) and parsed.owner_id == USER_ID
    # THEN another member's click on those buttons is refused
    body, _ = personal.click(first["custom_id"], user_id=OTHER_USER_ID)
    assert body["data"]["flags"] == EPHEMERAL
    assert body["data"]["content"] == "Those buttons belong to someone else's history. Run /play-history to see yours."
    # AND a doctored digest finds nothing
    forged = custom_ids.build(HistoryReplayId(USER_ID, 0, "00000000"))
    body, _ = personal.click(forged)
    assert body["data"]["content"] == "That track is no longer in your history list. Run /play-history again."
    # AND the owner's click queues that track again
    before = len(personal.queued())
    body, token = personal.click(first["custom_id"])
    assert body == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert personal.original(token)["content"].startswith("From your history:")
    assert [e.title for e in personal.queued()][before:] == ["Song 1"]


def test_history_of_a_user_with_nothing_played(personal: Personal) -> None:
    _, token = personal.command("play-history", user_id=OTHER_USER_ID)
    assert personal.original(token)["content"] == "You have no play history yet: /play something first."


# ---------------------------------------------------------------------- recommendations and autoplay
def test_recommendations_queue_the_mix_of_the_users_last_track_without_linking(personal: Personal) -> None:
    personal.world.play(personal.media.url_for("song1.webm"))
    body, token = personal.command("recommendations")
    assert body == {"type": 5}
    assert personal.original(token)["content"].startswith("A mix based on **Song 1**:")
    assert [e.title for e in personal.queued()] == ["Song 1", "Song 2", "Song 3", "Song 0"]


def test_recommendations_fall_back_to_the_guilds_last_track(personal: Personal) -> None:
    personal.world.play(personal.media.url_for("song2.webm"))
    personal.world.join_voice(OTHER_USER_ID)
    _, token = personal.command("recommendations", user_id=OTHER_USER_ID)
    assert personal.original(token)["content"].startswith("A mix based on **Song 2**:")


def test_autoplay_sets_the_desired_flag(personal: Personal) -> None:
    body, _ = personal.command("autoplay", {"mode": "on"})
    assert body["data"]["content"].startswith("♾️ Autoplay is on")
    assert personal.world.api.store.get_guild(GUILD_ID).desired.autoplay is True
    personal.command("autoplay", {"mode": "off"})
    assert personal.world.api.store.get_guild(GUILD_ID).desired.autoplay is False
