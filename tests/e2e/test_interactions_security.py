"""GIVEN the api app with real Ed25519 keys WHEN requests arrive THEN only verified ones do anything."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from app import app
from chalice.test import Client
from nacl.signing import SigningKey

import timmybot
from chalicelib.bootstrap import app_services, bootstrap
from tests.support.signing import (
    EPHEMERAL,
    OTHER_GUILD_ID,
    Signer,
    autocomplete,
    command,
    component,
    make_settings,
    modal_submit,
    post_checked,
    seed_playing,
    signed_api,
)
from timmybot.models import GuildRecord
from timmybot.store.sqlite import SQLiteStore


def _signed_body(signer: Signer) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(command("skip")).encode()
    return body, signer.headers(body)


def _tampered_requests(signer: Signer) -> dict[str, tuple[bytes, dict[str, str]]]:
    body, good = _signed_body(signer)
    other_key = Signer(SigningKey.generate())
    cases: dict[str, tuple[bytes, dict[str, str]]] = {
        "missing signature": (body, {k: v for k, v in good.items() if k != "X-Signature-Ed25519"}),
        "missing timestamp": (body, {k: v for k, v in good.items() if k != "X-Signature-Timestamp"}),
        "no headers at all": (body, {"Content-Type": "application/json"}),
        "non-hex signature": (body, {**good, "X-Signature-Ed25519": "zz" * 64}),
        "short signature": (body, {**good, "X-Signature-Ed25519": good["X-Signature-Ed25519"][:-2]}),
        "long signature": (body, {**good, "X-Signature-Ed25519": good["X-Signature-Ed25519"] + "00"}),
        "empty signature": (body, {**good, "X-Signature-Ed25519": ""}),
        "signed by another key": (body, other_key.headers(body, good["X-Signature-Timestamp"])),
        "tampered body": (body.replace(b"skip", b"stop"), good),
        "tampered timestamp": (body, {**good, "X-Signature-Timestamp": str(int(good["X-Signature-Timestamp"]) + 1)}),
        "flipped signature bit": (
            body,
            {**good, "X-Signature-Ed25519": format(int(good["X-Signature-Ed25519"], 16) ^ 1, "0128x")},
        ),
    }
    return cases


CASES = list(_tampered_requests(Signer()).keys())


@pytest.mark.parametrize("case", CASES)
def test_bad_signature_gets_401_and_never_touches_the_store(tmp_path: Path, case: str) -> None:
    # GIVEN the app (its SQLite file does not exist yet)
    with signed_api(tmp_path) as api:
        body, headers = _tampered_requests(api.signer)[case]
        # WHEN a request with a broken signature arrives
        response = api.post(body, headers=headers)
        # THEN 401, and the store was not even built: no file, no rows
        assert response.status_code == 401
        assert not api.services.store_built
        assert not api.db_path.exists()


def test_signed_ping_gets_pong_without_building_the_store(tmp_path: Path) -> None:
    with signed_api(tmp_path) as api:
        response = api.post({"type": 1, "id": "1", "application_id": "1", "token": "t", "version": 1})
        assert response.status_code == 200
        assert response.json_body == {"type": 1}
        assert not api.db_path.exists()


def test_body_over_64_kb_gets_413(tmp_path: Path) -> None:
    with signed_api(tmp_path) as api:
        payload = command("queue")
        payload["padding"] = "x" * (64 * 1024)
        response = api.post(payload)
        assert response.status_code == 413
        assert not api.db_path.exists()


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"{"])
def test_signed_non_object_body_gets_400(tmp_path: Path, body: bytes) -> None:
    with signed_api(tmp_path) as api:
        response = api.post(body)
        assert response.status_code == 400
        assert not api.db_path.exists()


def test_unknown_interaction_type_gets_a_sentence_and_touches_nothing(tmp_path: Path) -> None:
    """A kind Discord adds later must still get an answer Discord takes (a 400 reads "This
    interaction failed"); before, it got HTTP 400."""
    with signed_api(tmp_path) as api:
        payload = command("skip")
        payload["type"] = 42
        response = api.post(payload)
        assert response.status_code == 200
        assert response.json_body["type"] == 4
        assert response.json_body["data"]["flags"] == EPHEMERAL
        assert "can't handle that kind" in response.json_body["data"]["content"]
        assert not api.db_path.exists()


def test_stale_timestamp_is_refused_when_a_max_age_is_set(tmp_path: Path) -> None:
    with signed_api(tmp_path, signature_max_age_s=300) as api:
        body = json.dumps({"type": 1}).encode()
        response = api.post(body, headers=api.signer.headers(body, timestamp="1000000000"))
        assert response.status_code == 401


def test_health_reports_ok_and_the_version(tmp_path: Path) -> None:
    with signed_api(tmp_path) as api:
        response = api.get("/health")
        assert response.status_code == 200
        assert response.json_body == {"status": "ok", "version": timmybot.__version__}


# ---------------------------------------------------------------------------------------------- allowlist
@pytest.mark.parametrize(
    "payload",
    [
        command("skip", guild_id=OTHER_GUILD_ID),
        component("v1:np:skip", guild_id=OTHER_GUILD_ID),
        modal_submit(guild_id=OTHER_GUILD_ID),
        command("queue", guild_id=None),  # a DM
        component("v1:queue:page:1", guild_id=None),
    ],
    ids=["command", "component", "modal", "dm-command", "dm-component"],
)
def test_guild_not_on_the_allowlist_gets_the_ephemeral_refusal_and_no_store_access(
    tmp_path: Path, payload: dict[str, object]
) -> None:
    with signed_api(
        tmp_path, request_access_url="https://example.org/ask", self_deploy_url="https://example.org/own"
    ) as api:
        response = api.post(payload)
        assert response.status_code == 200
        body = response.json_body
        assert body["type"] == 4
        assert body["data"]["flags"] == EPHEMERAL
        text = body["data"]["content"]
        assert api.services.settings.not_authorized_text in text
        assert "https://example.org/ask" in text
        assert "https://example.org/own" in text
        link_urls = [c["url"] for row in body["data"]["components"] for c in row["components"]]
        assert link_urls == ["https://example.org/ask", "https://example.org/own"]
        assert not api.db_path.exists()


def test_autocomplete_from_a_guild_not_on_the_allowlist_gets_no_choices(tmp_path: Path) -> None:
    with signed_api(tmp_path) as api:
        response = api.post(autocomplete(guild_id=OTHER_GUILD_ID))
        assert response.json_body == {"type": 8, "data": {"choices": []}}
        assert not api.db_path.exists()


def test_autocomplete_from_an_allowed_guild_answers_type_8(tmp_path: Path) -> None:
    with signed_api(tmp_path) as api:
        assert api.post(autocomplete()).json_body == {"type": 8, "data": {"choices": []}}


def test_allow_all_guilds_lets_any_guild_in_but_never_a_dm(tmp_path: Path) -> None:
    with signed_api(tmp_path, allow_all_guilds=True, allowlist_extra=()) as api:
        assert "flags" not in api.post(command("queue", guild_id=OTHER_GUILD_ID)).json_body["data"]
        assert api.post(command("queue", guild_id=None)).json_body["data"]["flags"] == EPHEMERAL


def test_allowlist_file_from_settings_is_read(tmp_path: Path) -> None:
    listed = tmp_path / "allowlist.txt"
    listed.write_text(f"# test guilds\n{OTHER_GUILD_ID}  # listed in the file\n")
    with signed_api(tmp_path, allowlist_file=str(listed), allowlist_extra=()) as api:
        response = api.post(command("queue", guild_id=OTHER_GUILD_ID))
        assert response.json_body["data"]["embeds"][0]["title"] == "Queue"


# ---------------------------------------------------------------------------------------------- dedupe, errors
def test_repeated_interaction_gets_the_same_answer_and_changes_state_once(tmp_path: Path) -> None:
    with signed_api(tmp_path) as api:
        seed_playing(api.store)
        payload = command("skip")
        first = api.post(payload)
        second = api.post(payload)
        assert first.status_code == second.status_code == 200
        assert first.json_body == second.json_body
        assert api.store.get_guild(payload["guild_id"]).desired.skip_seq == 1


def test_repeat_while_the_first_is_still_handled_says_already_working(tmp_path: Path) -> None:
    with signed_api(tmp_path) as api:
        payload = command("skip")
        assert api.store.claim_interaction(payload["id"], ttl_s=900)  # the first delivery is in flight
        body = api.post(payload).json_body
        assert body["data"]["flags"] == EPHEMERAL
        assert "already working" in body["data"]["content"]
        assert api.store.get_guild(payload["guild_id"]).desired.skip_seq == 0


class ExplodingStore(SQLiteStore):
    """A store whose guild reads fail: a stand-in for a broken backend (a fake we own, not a mock)."""

    def get_guild(self, guild_id: str) -> GuildRecord:
        raise RuntimeError("disk on fire")


def test_unexpected_handler_failure_gives_an_ephemeral_error_and_logs_the_interaction_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN services whose store breaks inside the handler
    signer = Signer()
    services = bootstrap(make_settings(tmp_path, signer), store=ExplodingStore(tmp_path / "x.sqlite3"), in_lambda=False)
    payload = command("skip")
    # WHEN a command arrives (its answer held to what Discord's callback endpoint takes)
    with caplog.at_level(logging.INFO), app_services.override(services), Client(app) as client:
        response = post_checked(client, signer, payload)
    # THEN Discord gets a 200 with an ephemeral generic error, and the log names the interaction
    assert response.status_code == 200
    assert response.json_body["type"] == 4
    assert response.json_body["data"]["flags"] == EPHEMERAL
    assert "went wrong" in response.json_body["data"]["content"]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failures
    assert payload["id"] in failures[0].getMessage()
    assert "interaction-token-secret" not in caplog.text


def test_logs_never_contain_the_interaction_token_or_raw_body(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), signed_api(tmp_path) as api:
        api.post(command("queue"))
        api.post(command("skip"))
    assert "interaction-token-secret" not in caplog.text
    assert '"application_id"' not in caplog.text
