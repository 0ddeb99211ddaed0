"""GIVEN the api app with real Ed25519 keys WHEN a signed request pushes at an edge (replays, deep
nesting, broken text, floods, forged log lines) THEN it gets 401/400 or an ephemeral sentence: never
a 5xx, never a second run, never a forged line.

Each test here failed on the code before issue 15 (the replay ran again, the deep body got a 500,
the lone surrogate crashed the job, 100 /play dispatched 100 jobs, the callback wrote a forged line).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.interactions import json_depth
from tests.e2e.test_play_flow import PlayWorld, play_world, run_worker
from tests.support.media import MediaServer, tone_file
from tests.support.signing import (
    EPHEMERAL,
    GUILD_ID,
    OTHER_USER_ID,
    USER_ID,
    autocomplete,
    command,
    component,
    next_interaction_id,
    seed_queue,
    signed_api,
)
from timmybot.config import Settings, SettingsError
from timmybot.logformat import OneLineFormatter
from timmybot.ratelimit import RATE_SK, Limit, rate_key
from timmybot.worker.jobs import PlayJob


# ---------------------------------------------------------------------------------------------- replays
def test_a_captured_clear_replayed_after_the_window_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with signed_api(tmp_path) as api:
        seed_queue(api.store, 3)
        body = json.dumps(command("clear")).encode()
        # GIVEN a correctly signed /clear captured 301 s ago (past the 300 s window and, once its
        # interaction id is forgotten, past the dedupe too)
        captured = api.signer.headers(body, timestamp=str(int(time.time()) - 301))
        # WHEN it is replayed THEN 401, and the queue is untouched
        assert api.post(body, headers=captured).status_code == 401
        assert len(api.store.get_guild(GUILD_ID).queue) == 3
        assert api.store.interaction_response(json.loads(body)["id"]) is None
        # AND the same request signed now does run (so the refusal was the timestamp's doing)
        fresh = api.post(body, headers=api.signer.headers(body))
        assert fresh.status_code == 200
        assert api.store.get_guild(GUILD_ID).queue == ()


@pytest.mark.parametrize(("offset", "status"), [(-299, 200), (-301, 401), (30, 200), (61, 401)])
def test_the_signature_window_is_300_s_back_and_60_s_ahead(tmp_path: Path, offset: int, status: int) -> None:
    with signed_api(tmp_path) as api:
        body = json.dumps({"type": 1}).encode()
        response = api.post(body, headers=api.signer.headers(body, timestamp=str(int(time.time()) + offset)))
        assert response.status_code == status


def test_the_dedupe_ttl_must_cover_the_signature_window() -> None:
    with pytest.raises(SettingsError, match="dedupe_ttl_s must be at least"):
        Settings(signature_max_age_s=600, dedupe_ttl_s=300).validate()
    Settings(signature_max_age_s=300, dedupe_ttl_s=360).validate()


# ---------------------------------------------------------------------------------------------- bodies
@pytest.mark.parametrize("depth", [33, 2000, 30_000])
def test_a_signed_body_nested_too_deep_gets_400_not_500(tmp_path: Path, depth: int) -> None:
    with signed_api(tmp_path) as api:
        payload = command("skip")
        body = json.dumps(payload).encode()[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
        response = api.post(body)
        assert response.status_code == 400
        assert not api.db_path.exists()


def test_depth_is_read_outside_strings_only() -> None:
    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, {"c": "]]]\\"[["}]}') == 3
    assert json_depth(b"[]") == 1
    assert json_depth(b'"just a string"') == 0


def test_a_real_payload_is_well_inside_the_depth_limit(tmp_path: Path) -> None:
    payload = component("v1:np:skip")
    assert json_depth(json.dumps(payload).encode()) < Settings().max_body_depth // 2


# ---------------------------------------------------------------------------------------------- text
def test_a_lone_surrogate_in_play_gets_a_sentence_on_the_fast_path(tmp_path: Path) -> None:
    with signed_api(tmp_path, launcher="none") as api:
        payload = command("play", {"query": "\ud800 never gonna"})
        response = api.post(json.dumps(payload).encode())  # json.dumps writes it as the escape \\ud800
        assert response.status_code == 200
        data = response.json_body["data"]
        assert data["flags"] == EPHEMERAL
        assert "character I can't read" in data["content"]


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        server.add("tone.webm", tone_file(440, 2, "webm"))
        yield server


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlayWorld]:
    with play_world(tmp_path, monkeypatch) as built:
        yield built


def test_the_worker_answers_a_job_with_unencodable_text_with_a_sentence(world: PlayWorld) -> None:
    # GIVEN a job that reached the worker with a lone surrogate (an older api, or a forged event)
    job = PlayJob(
        interaction_id=next_interaction_id(),
        application_id=world.api.services.settings.discord_application_id,
        guild_id=GUILD_ID,
        user_id=USER_ID,
        query="\udfff",
        channel_id=str(world.text_id),
        token="token-surrogate",
    )
    # WHEN the worker runs it THEN the reply says why, and nothing was queued or launched
    run_worker(world, job)
    assert "character I can't read" in world.original("token-surrogate")["content"]
    assert world.api.store.get_guild(GUILD_ID).queue == ()
    assert world.launches() == []


def test_an_error_value_with_a_newline_cannot_forge_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with signed_api(tmp_path) as api, caplog.at_level(logging.INFO):
        forged = "access_denied\n2026-12-02 12:00:00 INFO timmybot: user 1 linked Spotify"
        response = api.client.http.get(
            "/oauth/spotify/callback?error=" + forged.replace("\n", "%0A").replace(" ", "%20")
        )
        assert response.status_code == 400
    lines = [record.getMessage() for record in caplog.records if "consent ended" in record.getMessage()]
    assert lines, "the refusal was logged"
    assert all("\n" not in line for line in lines)


def test_text_logs_escape_control_characters_in_any_message() -> None:
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "title %s", ("a\nb\rc\x1bd",), None)
    assert formatter.format(record) == "INFO title a\\x0ab\\x0dc\\x1bd"


# ---------------------------------------------------------------------------------------------- limits
def test_play_over_the_user_limit_gets_the_wait_and_dispatches_nothing(world: PlayWorld, media: MediaServer) -> None:
    limit = Limit.of("play", "user", world.api.services.settings.rate_play_user)
    answers = [world.play(media.url_for("tone.webm")) for _ in range(limit.count + 2)]
    refused = [body for body, _ in answers if body["type"] == 4]
    assert len(refused) == 2
    for body in refused:
        assert body["data"]["flags"] == EPHEMERAL
        assert body["data"]["content"].startswith("Slow down: try again in ")
        assert body["data"]["content"].endswith(" s.")
    # THEN only the accepted ones reached the worker: one queue entry each, no reply to the others
    assert len(world.api.store.get_guild(GUILD_ID).queue) == limit.count
    for _body, token in answers[limit.count :]:
        assert world.emulator.original_message(token) is None
    # AND another member of the guild is not held to the first one's limit
    other_body, _ = world.play(media.url_for("tone.webm"), user_id=OTHER_USER_ID)
    assert other_body["type"] == 5


def test_link_is_limited_per_user_before_any_provider_call(tmp_path: Path) -> None:
    with signed_api(tmp_path, rate_link_user="2/300") as api:
        answers = [api.post(command("link", {"platform": "youtube"})).json_body for _ in range(3)]
        assert answers[2]["data"]["content"].startswith("Slow down: try again in ")
        assert answers[2]["data"]["flags"] == EPHEMERAL
        assert "Slow down" not in answers[0]["data"]["content"]


def test_autocomplete_over_its_limit_gets_no_choices(tmp_path: Path) -> None:
    with signed_api(tmp_path, rate_autocomplete_user="3/10") as api:
        answers = [api.post(autocomplete("play")).json_body for _ in range(5)]
        assert all(answer == {"type": 8, "data": {"choices": []}} for answer in answers)
        record = api.store.get_record(rate_key(Limit.of("autocomplete", "user", "3/10"), USER_ID), RATE_SK)
        assert record is not None
        assert len(record["hits"]) == 3  # the refused ones were not recorded


def test_rate_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="rate_play_user"):
        Settings(rate_play_user="ten a minute").validate()
    Settings(rate_play_user="off").validate()
