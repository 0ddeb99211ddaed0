"""/play end to end: signed interaction → api (deferred) → worker → emulated Discord REST → store/launcher.

The api runs with the inline dispatcher, so the worker has edited the original response by the
time ``post`` returns. Discord state (members, voice states, roles, channel overwrites) lives in
the loopback emulator; the local launcher runs the stand-in voice task, which claims its lease.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.commands import BY_NAME
from tests.support import fake_voice_task
from tests.support.emulator import ChannelType, DiscordEmulator, GuildHandle, Overwrite, OverwriteType, Permission
from tests.support.media import MediaServer, tone_file
from tests.support.signing import (
    APPLICATION_ID,
    EPHEMERAL,
    GUILD_ID,
    OTHER_USER_ID,
    USER_ID,
    SignedApi,
    command,
    next_interaction_id,
    seed_playing,
    seed_queue,
    signed_api,
)
from timmybot.config import Settings
from timmybot.identify import IdentifyBudget
from timmybot.models import LeaseState
from timmybot.worker.jobs import PlayJob
from timmybot.worker.play import run_play_job

FAKE_TASK = str(Path(fake_voice_task.__file__).resolve())
DEFERRED = 5


@dataclass
class PlayWorld:
    emulator: DiscordEmulator
    guild: GuildHandle
    api: SignedApi
    data_dir: Path

    @property
    def voice_id(self) -> int:
        assert self.guild.voice_channel_id is not None
        return self.guild.voice_channel_id

    @property
    def text_id(self) -> int:
        assert self.guild.text_channel_id is not None
        return self.guild.text_channel_id

    def play_payload(self, query: str, *, user_id: str = USER_ID, channel_id: int | None = None) -> dict[str, Any]:
        payload = command("play", {"query": query}, user_id=user_id, interaction_id=next_interaction_id())
        payload["channel_id"] = str(channel_id or self.text_id)
        payload["token"] = f"token-{payload['id']}"
        return payload

    def play(self, query: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
        """POST /play; returns (the api's response body, the interaction token)."""
        payload = self.play_payload(query, **kwargs)
        return self.api.post(payload).json_body, payload["token"]

    def original(self, token: str) -> dict[str, Any]:
        message = self.emulator.original_message(token)
        assert message is not None, "the worker never edited the original response"
        return message

    def join_voice(self, user_id: str = USER_ID, channel_id: int | None = None) -> None:
        self.emulator.set_member_voice(self.guild.id, int(user_id), channel_id or self.voice_id)

    def launches(self) -> list[tuple[str, int, str]]:
        return fake_voice_task.launches(self.data_dir)


@contextlib.contextmanager
def play_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Iterator[PlayWorld]:
    """The emulator with our guild (member USER_ID in voice), and the api wired to it."""
    with DiscordEmulator(application_id=int(APPLICATION_ID)) as emulator:
        monkeypatch.setenv("SSL_CERT_FILE", str(emulator.ca_file))
        guild = emulator.add_guild("Play Guild", guild_id=int(GUILD_ID))
        for name, user in (("alice", USER_ID), ("bob", OTHER_USER_ID)):
            emulator.add_member(guild.id, name, user_id=int(user))
        settings: dict[str, Any] = {
            "dispatcher": "inline",
            "discord_api_base": emulator.api_base,
            "discord_bot_token": emulator.bot_token,
            "launcher": "local",
            "voice_task_command": (sys.executable, FAKE_TASK),
            "allow_local_media": True,
        }
        settings.update(overrides)
        with signed_api(tmp_path, **settings) as api:
            world = PlayWorld(emulator, guild, api, tmp_path)
            world.join_voice()
            try:
                yield world
            finally:
                launcher = api.services.launcher
                wait = getattr(launcher, "wait_children", None)
                if wait is not None:
                    wait(30)


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.add("tone 440.webm", tone_file(440, 2, "webm"))
        server.add("tone 660.webm", tone_file(660, 3, "webm"))
        yield server


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlayWorld]:
    with play_world(tmp_path, monkeypatch) as built:
        yield built


def run_worker(world: PlayWorld, job: PlayJob) -> None:
    """Deliver ``job`` to the worker directly, as a (re)delivered Lambda event would."""
    services = world.api.services
    run_play_job(
        job,
        store=services.store,
        rest=services.discord,
        launcher=services.launcher,
        sources=services.sources,
        settings=services.settings,
    )


def _deny(world: PlayWorld, channel_id: int, bits: int, *, target: int | None = None) -> None:
    """Deny ``bits`` on a channel: to the bot's own member overwrite, or to ``target`` (a role id)."""
    if target is None:
        overwrite = Overwrite(world.emulator.bot_user_id, OverwriteType.MEMBER, deny=bits)
    else:
        overwrite = Overwrite(target, OverwriteType.ROLE, deny=bits)
    world.emulator.set_overwrites(channel_id, [overwrite])


# ------------------------------------------------------------------------------ the happy path
def test_play_of_a_loopback_tone_queues_it_with_title_and_duration(world: PlayWorld, media: MediaServer) -> None:
    # GIVEN a member in the voice channel and nothing playing
    # WHEN they /play a loopback tone
    body, token = world.play(media.url_for("tone 440.webm"))
    # THEN the api answered "thinking…" in public, and the worker queued the track
    assert body == {"type": DEFERRED}
    record = world.api.store.get_guild(GUILD_ID)
    [entry] = world.api.store.get_entries(GUILD_ID, record.queue)
    assert (entry.title, entry.duration_s, entry.requester_id) == ("tone 440", 2, USER_ID)
    assert (record.voice_channel_id, record.text_channel_id) == (str(world.voice_id), str(world.text_id))
    # AND the original response shows the track, its position and requester, and that a player starts
    original = world.original(token)
    [embed] = original["embeds"]
    assert embed["title"] == "tone 440"
    assert embed["url"] == media.url_for("tone 440.webm")
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {"Duration": "0:02", "Position": "#1 of 1", "Requested by": f"<@{USER_ID}>"}
    assert original["content"] == "Starting the player…"
    # AND the launched task got the guild and the lease generation, and claimed it
    world.api.services.launcher.wait_children(30)  # type: ignore[attr-defined]
    assert world.launches() == [(GUILD_ID, record.lease.generation, "claimed")]
    assert world.api.store.get_guild(GUILD_ID).lease.state is LeaseState.RUNNING


def test_second_play_while_the_task_runs_only_enqueues(world: PlayWorld, media: MediaServer) -> None:
    world.play(media.url_for("tone 440.webm"))
    world.api.services.launcher.wait_children(30)  # type: ignore[attr-defined]
    _, token = world.play(media.url_for("tone 660.webm"))
    original = world.original(token)
    assert original["content"] == ""
    assert {f["name"]: f["value"] for f in original["embeds"][0]["fields"]}["Position"] == "#2 of 2"
    assert len(world.launches()) == 1
    assert len(world.api.store.get_guild(GUILD_ID).queue) == 2


def test_play_clears_a_pause(world: PlayWorld, media: MediaServer) -> None:
    world.api.store.pause(GUILD_ID)
    world.play(media.url_for("tone 440.webm"))
    assert world.api.store.get_guild(GUILD_ID).desired.paused is False


def test_delivering_the_same_job_twice_enqueues_once(world: PlayWorld, media: MediaServer) -> None:
    # GIVEN a /play job, as the api dispatched it
    payload = world.play_payload(media.url_for("tone 440.webm"))
    job = PlayJob(
        interaction_id=payload["id"],
        application_id=APPLICATION_ID,
        token=payload["token"],
        guild_id=GUILD_ID,
        channel_id=payload["channel_id"],
        user_id=USER_ID,
        query=media.url_for("tone 440.webm"),
    )
    services = world.api.services
    # WHEN the worker receives it twice (at-least-once delivery)
    for _ in range(2):
        run_worker(world, PlayJob.from_dict(json.loads(json.dumps(job.to_dict()))))
    # THEN one entry is queued, one task launched, and both deliveries left the same reply
    assert len(services.store.get_guild(GUILD_ID).queue) == 1
    services.launcher.wait_children(30)  # type: ignore[attr-defined]
    assert len(world.launches()) == 1
    edits = [w for w in world.emulator.webhook_calls(payload["token"]) if w.action == "edit_original"]
    assert len(edits) == 2
    assert edits[0].body == edits[1].body


def test_redelivery_after_the_track_played_enqueues_nothing(world: PlayWorld, media: MediaServer) -> None:
    payload = world.play_payload(media.url_for("tone 440.webm"))
    world.api.post(payload)
    world.api.store.clear_queue(GUILD_ID)  # the entry was played (or removed) since
    job = PlayJob.from_dict(
        {
            "interaction_id": payload["id"],
            "application_id": APPLICATION_ID,
            "token": payload["token"],
            "guild_id": GUILD_ID,
            "channel_id": payload["channel_id"],
            "user_id": USER_ID,
            "query": media.url_for("tone 440.webm"),
        }
    )
    services = world.api.services
    run_play_job(
        job,
        store=services.store,
        rest=services.discord,
        launcher=services.launcher,
        sources=services.sources,
        settings=services.settings,
    )
    assert world.api.store.get_guild(GUILD_ID).queue == ()


# ------------------------------------------------------------------------------ refusals in the worker
def test_member_not_in_voice_is_told_to_join(world: PlayWorld, media: MediaServer) -> None:
    world.emulator.set_member_voice(world.guild.id, int(USER_ID), None)
    _, token = world.play(media.url_for("tone 440.webm"))
    assert world.original(token)["content"] == "Join a voice channel first."
    assert world.api.store.get_guild(GUILD_ID).queue == ()
    assert world.launches() == []


def test_stage_channel_is_not_supported_yet(world: PlayWorld, media: MediaServer) -> None:
    stage = world.emulator.add_channel(world.guild.id, "Stage", ChannelType.GUILD_STAGE_VOICE)
    world.join_voice(channel_id=stage)
    _, token = world.play(media.url_for("tone 440.webm"))
    assert world.original(token)["content"] == "Stage channels aren't supported yet — use a voice channel."
    assert world.api.store.get_guild(GUILD_ID).queue == ()


@pytest.mark.parametrize(
    ("bit", "sentence"),
    [
        (Permission.VIEW_CHANNEL, "I can't see <#{voice}>: give me the **View Channel** permission there."),
        (Permission.CONNECT, "I can't join <#{voice}>: I need the **Connect** permission there."),
        (Permission.SPEAK, "I can join <#{voice}> but not play in it: I need the **Speak** permission there."),
    ],
    ids=["view-channel", "connect", "speak"],
)
def test_each_missing_voice_permission_gets_its_own_sentence(
    world: PlayWorld, media: MediaServer, bit: Permission, sentence: str
) -> None:
    # GIVEN the voice channel denies the bot one permission through its member overwrite
    _deny(world, world.voice_id, bit)
    # WHEN a member /plays
    _, token = world.play(media.url_for("tone 440.webm"))
    # THEN the reply names that channel and that permission, and nothing is queued or launched
    assert world.original(token)["content"] == sentence.format(voice=world.voice_id)
    assert world.api.store.get_guild(GUILD_ID).queue == ()
    assert world.launches() == []


def test_everyone_deny_is_lifted_by_a_role_allow_for_the_bot(world: PlayWorld, media: MediaServer) -> None:
    # GIVEN @everyone may not connect in the voice channel, but the bot's role may
    role = world.emulator.add_role(world.guild.id, "Music", 0)
    world.emulator.add_member(world.guild.id, "TimmyBot", user_id=world.emulator.bot_user_id, roles=[role], bot=True)
    world.emulator.set_overwrites(
        world.voice_id,
        [
            Overwrite(
                world.guild.everyone_role_id, OverwriteType.ROLE, deny=int(Permission.CONNECT | Permission.SPEAK)
            ),
            Overwrite(role, OverwriteType.ROLE, allow=int(Permission.CONNECT)),
        ],
    )
    # WHEN a member /plays
    _, token = world.play(media.url_for("tone 440.webm"))
    # THEN only Speak is missing
    assert world.original(token)["content"] == (
        f"I can join <#{world.voice_id}> but not play in it: I need the **Speak** permission there."
    )


def test_all_three_missing_give_three_sentences(world: PlayWorld, media: MediaServer) -> None:
    voice_bits = int(Permission.VIEW_CHANNEL | Permission.CONNECT | Permission.SPEAK)
    _deny(world, world.voice_id, voice_bits, target=world.guild.everyone_role_id)
    _, token = world.play(media.url_for("tone 440.webm"))
    assert len(world.original(token)["content"].splitlines()) == 3


@pytest.mark.parametrize("bit", [Permission.SEND_MESSAGES, Permission.EMBED_LINKS], ids=["send", "embed"])
def test_no_post_rights_still_plays_and_says_cards_show_here_only(
    world: PlayWorld, media: MediaServer, bit: Permission
) -> None:
    # GIVEN the bot may not send messages (or embeds) in the text channel
    _deny(world, world.text_id, int(bit))
    # WHEN a member /plays there
    _, token = world.play(media.url_for("tone 440.webm"))
    # THEN the track is queued, the player starts, and the reply says where cards will show
    original = world.original(token)
    assert original["content"].splitlines() == [
        "Starting the player…",
        f"I can't post in <#{world.text_id}>, so now-playing cards will only show here.",
    ]
    record = world.api.store.get_guild(GUILD_ID)
    assert len(record.queue) == 1
    assert record.text_channel_id is None  # the voice task will not try to post there


def test_same_channel_rule_refuses_play_from_another_channel(world: PlayWorld, media: MediaServer) -> None:
    # GIVEN the bot plays in the guild's voice channel
    world.play(media.url_for("tone 440.webm"))
    # WHEN someone in another voice channel /plays
    other = world.emulator.add_channel(world.guild.id, "Other")
    world.join_voice(OTHER_USER_ID, other)
    _, token = world.play(media.url_for("tone 660.webm"), user_id=OTHER_USER_ID)
    # THEN they are sent to the bot's channel and nothing is queued
    assert world.original(token)["content"] == f"I'm playing in <#{world.voice_id}> — join me there."
    assert len(world.api.store.get_guild(GUILD_ID).queue) == 1


def test_same_channel_rule_ends_with_the_lease(world: PlayWorld, media: MediaServer) -> None:
    # GIVEN a session in the first channel that has ended (lease released)
    world.play(media.url_for("tone 440.webm"))
    world.api.services.launcher.wait_children(30)  # type: ignore[attr-defined]
    record = world.api.store.get_guild(GUILD_ID)
    assert world.api.store.release_lease(GUILD_ID, generation=record.lease.generation)
    # WHEN someone in another channel /plays, THEN the bot follows them
    other = world.emulator.add_channel(world.guild.id, "Other")
    world.join_voice(OTHER_USER_ID, other)
    world.play(media.url_for("tone 660.webm"), user_id=OTHER_USER_ID)
    assert world.api.store.get_guild(GUILD_ID).voice_channel_id == str(other)


def test_queue_full_gets_its_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media: MediaServer) -> None:
    with play_world(tmp_path, monkeypatch, queue_cap=2) as world:
        seed_queue(world.api.store, 2)
        _, token = world.play(media.url_for("tone 440.webm"))
        assert world.original(token)["content"] == "The queue is full (2 tracks at most, 2 queued now)."
        assert len(world.api.store.get_guild(GUILD_ID).queue) == 2


def test_spotify_link_without_a_spotify_app_says_so(world: PlayWorld) -> None:
    # (tests/e2e/test_spotify_links.py plays Spotify links against a fake Spotify API)
    body, token = world.play("https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC")
    assert body == {"type": DEFERRED}
    assert world.original(token)["content"] == (
        "Spotify links aren't set up on this bot (its operator has not configured a Spotify app)."
    )


def test_a_failing_source_gets_its_sentence(world: PlayWorld, media: MediaServer) -> None:
    media.fail("tone 440.webm", 404)
    _, token = world.play(media.url_for("tone 440.webm"))
    assert world.original(token)["content"] == "There is no such file on the media server."
    assert world.api.store.get_guild(GUILD_ID).queue == ()


def test_playing_while_a_track_plays_in_the_same_channel_queues_behind_it(world: PlayWorld, media: MediaServer) -> None:
    world.api.store.set_channels(GUILD_ID, voice_channel_id=str(world.voice_id), text_channel_id=None)
    seed_playing(world.api.store)
    _, token = world.play(media.url_for("tone 440.webm"))
    assert world.original(token)["content"] == ""
    assert world.launches() == []


# ------------------------------------------------------------------------------ refusals in the api
@pytest.mark.parametrize(
    "query",
    [
        "https://169.254.169.254/latest/meta-data/",
        "http://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://evil.example/track",
        "   ",
        "x" * 201,
    ],
    ids=["metadata-ip", "plain-http", "unknown-host", "blank", "too-long"],
)
def test_refused_queries_are_answered_at_once_without_dispatch(world: PlayWorld, query: str) -> None:
    body, token = world.play(query)
    assert body["type"] == 4
    assert body["data"]["flags"] == EPHEMERAL
    assert body["data"]["content"]
    assert world.emulator.original_message(token) is None
    assert world.emulator.requests() == []  # no REST call at all: nothing was dispatched


def test_loopback_urls_are_refused_by_default_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with play_world(tmp_path, monkeypatch, allow_local_media=False) as world:
        body, _ = world.play("http://127.0.0.1:8000/tone.webm")
        assert body["data"]["flags"] == EPHEMERAL
        assert world.emulator.requests() == []


def test_play_schema_caps_the_query_at_200_characters() -> None:
    option, _placement = BY_NAME["play"].schema()["options"]
    assert (option["name"], option["type"], option["required"], option["max_length"]) == ("query", 3, True, 200)


def test_unexpected_failure_apologises_and_re_raises(world: PlayWorld, media: MediaServer) -> None:
    # GIVEN Discord's guild endpoint is down (a 500 that is not retried)
    payload = world.play_payload(media.url_for("tone 440.webm"))
    job = PlayJob.from_dict(
        {
            "interaction_id": payload["id"],
            "application_id": APPLICATION_ID,
            "token": payload["token"],
            "guild_id": "999999999999999999",  # unknown to the emulator: GET /guilds/… answers 404
            "channel_id": payload["channel_id"],
            "user_id": USER_ID,
            "query": "anything",
        }
    )
    services = world.api.services
    # WHEN the worker runs it, THEN it re-raises for Lambda's retry after apologising
    with pytest.raises(Exception, match="voice-states"):
        run_play_job(
            job,
            store=services.store,
            rest=services.discord,
            launcher=services.launcher,
            sources=services.sources,
            settings=services.settings,
        )
    assert "something went wrong" in world.original(payload["token"])["content"]
    # AND its claim was released: Lambda's retry runs the job again (it is not taken for one in progress)
    with pytest.raises(Exception, match="voice-states"):
        run_play_job(
            job,
            store=services.store,
            rest=services.discord,
            launcher=services.launcher,
            sources=services.sources,
            settings=services.settings,
        )


def test_settings_validation_knows_the_new_settings() -> None:
    with pytest.raises(ValueError, match="worker_function_name"):
        Settings.from_env({}, dispatcher="lambda")
    assert Settings(discord_application_id=APPLICATION_ID).bot_id == APPLICATION_ID


def test_a_rate_limited_edit_is_retried_after_retry_after(world: PlayWorld, media: MediaServer) -> None:
    # GIVEN Discord answers the first edit of the original response with 429
    payload = world.play_payload(media.url_for("tone 440.webm"))
    path = f"/webhooks/{APPLICATION_ID}/{payload['token']}/messages/@original"
    world.emulator.rate_limit("PATCH", path, times=1, retry_after=0.2)
    # WHEN the /play runs
    world.api.post(payload)
    # THEN the worker waited and edited again, successfully
    statuses = [r.status for r in world.emulator.requests("PATCH", path)]
    assert statuses == [429, 200]
    assert world.original(payload["token"])["embeds"][0]["title"] == "tone 440"


def test_with_the_identify_budget_below_the_reserve_play_answers_resting_and_launches_nothing(
    world: PlayWorld, media: MediaServer
) -> None:
    # GIVEN Discord reported only 5 % of today's identifies left (reset in 42 minutes)
    IdentifyBudget(world.api.store).observe(
        {"total": 1000, "remaining": 50, "reset_after": 42 * 60 * 1000, "max_concurrency": 1}
    )
    # WHEN a member plays something
    body, token = world.play(media.url_for("tone 440.webm"))
    # THEN the reply says the bot is resting and when to come back, and no task was launched
    assert body == {"type": DEFERRED}
    text = json.dumps(world.original(token))
    assert "resting" in text and "42 min" in text
    assert world.launches() == []
    assert not world.api.store.get_guild(GUILD_ID).lease.is_live(time.time())
