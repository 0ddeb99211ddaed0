"""/forget-me leaves nothing behind (store, every vault adapter, pending links), asks first, and
says what it deleted; the vault is never built for other commands; the log guard catches leaks."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from moto import mock_aws

from tests.support.accounts_kit import AccountsKit, accounts_api
from tests.support.log_guard import TokenLeakGuard
from tests.support.oauth_server import issue
from tests.support.signing import (
    EPHEMERAL,
    GUILD_ID,
    OTHER_USER_ID,
    USER_ID,
    command,
    component,
    signed_api,
    track_entry,
)
from timmybot import preferences
from timmybot.accounts.vault import Platform
from timmybot.controls import remember_guild
from timmybot.playlists.book import Owner, PlaylistBook
from timmybot.store.keys import HISTORY_SK, user_pk

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "secretsmanager", "kms"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AccountsKit]:
    if request.param == "local":
        with accounts_api(tmp_path) as built:
            yield built
        return
    with mock_aws(), accounts_api(tmp_path, vault_backend=request.param) as built:
        yield built


def _link_youtube(kit: AccountsKit, user_id: str) -> None:
    content = kit.post(command("link", {"platform": "youtube"}, user_id=user_id)).json_body["data"]["content"]
    user_code = re.search(r"\*\*([A-Z]{4}-[A-Z]{4})\*\*", content)
    assert user_code
    kit.google.approve(user_code.group(1))
    kit.clock.advance(5)
    assert "YouTube linked" in kit.post(command("check-auth", user_id=user_id)).json_body["data"]["content"]


def _link_spotify(kit: AccountsKit, user_id: str) -> None:
    url = kit.post(command("link", {"platform": "spotify"}, user_id=user_id)).json_body["data"]["components"][0]
    assert kit.link_spotify(kit.spotify.consent(url["components"][0]["url"])).status_code == 200


def _start_spotify(kit: AccountsKit, user_id: str) -> None:
    kit.post(command("link", {"platform": "spotify"}, user_id=user_id))


def test_forget_me_asks_first_and_deletes_nothing_until_confirmed(kit: AccountsKit) -> None:
    _link_youtube(kit, USER_ID)

    data = kit.post(command("forget-me")).json_body["data"]

    assert data["flags"] == EPHEMERAL and "can't be undone" in data["content"]
    assert data["components"][0]["components"][0]["custom_id"] == "v1:forget:confirm"
    assert kit.vault.platforms(USER_ID) == [Platform.YOUTUBE]


def test_forget_me_leaves_nothing_behind_and_says_what_it_deleted(kit: AccountsKit) -> None:
    # GIVEN a member with YouTube linked, a Spotify link in progress, preferences and history,
    # and another member with both linked
    _link_youtube(kit, USER_ID)
    _start_spotify(kit, USER_ID)
    preferences.save(kit.store, USER_ID, lambda p: replace(p, notify=True, platform="soundcloud"), now=kit.clock())
    kit.store.update_record(user_pk(USER_ID), HISTORY_SK, lambda _r: {"tracks": ["a", "b"]})
    _link_youtube(kit, OTHER_USER_ID)
    _link_spotify(kit, OTHER_USER_ID)
    youtube = kit.vault.get(USER_ID, Platform.YOUTUBE)
    assert youtube is not None

    # WHEN they confirm /forget-me
    response = kit.post(component("v1:forget:confirm"))

    # THEN the message is edited with what was deleted
    assert response.json_body["type"] == 7
    report = response.json_body["data"]["content"]
    assert "YouTube tokens (access revoked at Google)" in report
    assert "preferences" in report and "play history" in report and "Spotify link in progress" in report
    # AND nothing of theirs is left: no U#/O# records, no vault entry, the grant revoked at Google
    assert kit.user_rows(USER_ID) == []
    assert preferences.stored(kit.store, USER_ID) is None
    assert kit.vault.platforms(USER_ID) == []
    assert youtube.refresh_token in kit.google.state.revoked
    # AND the other member keeps everything
    assert kit.vault.platforms(OTHER_USER_ID) == [Platform.YOUTUBE, Platform.SPOTIFY]
    # AND a second /forget-me finds nothing
    again = kit.post(component("v1:forget:confirm")).json_body["data"]["content"]
    assert "nothing to delete" in again


def test_forget_me_keeps_the_guild_historys_tracks_and_drops_the_user_from_them(kit: AccountsKit) -> None:
    # GIVEN a guild history where USER_ID queued two tracks and OTHER_USER_ID one, as the worker notes it
    for index, requester in enumerate((USER_ID, OTHER_USER_ID, USER_ID)):
        entry = track_entry(f"h{index}", title=f"Song {index}", requester_id=requester)
        kit.store.record_played(GUILD_ID, entry, now=float(index), seq=index)
        remember_guild(kit.store, requester, GUILD_ID)

    # WHEN USER_ID confirms /forget-me
    report = kit.post(component("v1:forget:confirm")).json_body["data"]["content"]

    # THEN the history keeps every track, names nobody for theirs, and keeps the other member's name
    history = kit.store.guild_history(GUILD_ID)
    assert [e.title for e in history] == ["Song 2", "Song 1", "Song 0"]
    assert [e.requester_id for e in history] == ["", OTHER_USER_ID, ""]
    assert "servers you queued music in" in report
    assert kit.user_rows(USER_ID) == []


def test_forget_me_deletes_personal_playlists_and_unnames_the_server_ones_it_created(kit: AccountsKit) -> None:
    # GIVEN a personal playlist of USER_ID's, and two server playlists, one created by each member
    book = PlaylistBook(kit.store)
    track = {"source": "youtube", "source_id": "dQw4w9WgXcQ", "title": "Song",
             "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}  # fmt: skip
    book.create(Owner("personal", USER_ID), "Mine", [track], created_by=USER_ID)
    book.create(Owner("personal", OTHER_USER_ID), "Theirs", [track], created_by=OTHER_USER_ID)
    book.create(Owner("server", GUILD_ID), "House", [track], created_by=USER_ID)
    book.create(Owner("server", GUILD_ID), "Other", [track], created_by=OTHER_USER_ID)

    # WHEN USER_ID confirms /forget-me
    report = kit.post(component("v1:forget:confirm")).json_body["data"]["content"]

    # THEN their personal playlist is gone and the server's stay, without their id; and it says so
    assert "your 1 personal saved playlist" in report
    assert "Server playlists you created (1) stay for their servers, without your name" in report
    assert book.headers(Owner("personal", USER_ID)) == []
    assert [h.name for h in book.headers(Owner("personal", OTHER_USER_ID))] == ["Theirs"]
    assert {h.name: h.created_by for h in book.headers(Owner("server", GUILD_ID))} == {
        "House": "",
        "Other": OTHER_USER_ID,
    }


def test_forget_me_reports_spotify_tokens_with_how_to_remove_the_app(kit: AccountsKit) -> None:
    _link_spotify(kit, USER_ID)

    report = kit.post(component("v1:forget:confirm")).json_body["data"]["content"]

    assert "Spotify tokens" in report and "spotify.com/account/apps" in report
    assert kit.vault.platforms(USER_ID) == [] and kit.user_rows(USER_ID) == []


def test_the_vault_is_not_built_for_other_commands(tmp_path: Path) -> None:
    with signed_api(tmp_path) as api:
        api.post(command("queue"))
        api.post(command("skip"))

        assert api.services.store_built and not api.services.accounts_built
    assert not (tmp_path / "vault.key").exists() and not (tmp_path / "vault.sqlite3").exists()


def test_the_voice_task_never_imports_the_vault_or_the_accounts() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "voice_task").rglob("*.py"))

    assert "timmybot.accounts" not in sources  # the package holds the vault and the OAuth clients too


def test_the_log_guard_detects_a_leaked_token_and_ignores_clean_logs() -> None:
    # GIVEN the guard on a private logger (so this deliberate leak never reaches the session guard)
    guard = TokenLeakGuard()
    logger = logging.getLogger("tests.log_guard_selftest")
    logger.propagate = False
    logger.addHandler(guard)
    logger.setLevel(logging.DEBUG)
    try:
        secret = issue("refresh")
        logger.info("refreshed the tokens of user %s", USER_ID)
        assert guard.leaks() == []

        # WHEN a message carries a token a fake issued (in the message or in a traceback)
        logger.debug("oops %s", secret)
        try:
            raise ValueError(issue("code"))
        except ValueError:
            logger.exception("failed")

        # THEN both are reported, without printing the whole secret
        leaks = guard.leaks()
        assert len(leaks) == 2
        assert all(secret not in str(leak) for leak in leaks)
    finally:
        logger.removeHandler(guard)
