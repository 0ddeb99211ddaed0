"""/link youtube: Google's device flow against a loopback fake (Authlib's RFC 8628), /check-auth and
the Check button, the linked reply naming the Google account's channel (a loopback Data API),
refresh before expiry, and /unlink revoking at Google."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.accounts_kit import AccountsKit, accounts_api
from tests.support.signing import EPHEMERAL, OTHER_USER_ID, USER_ID, command, component
from timmybot.accounts.linked import build_linked_accounts, device_pk
from timmybot.accounts.oauth import LinkRevokedError, PendingLinkUnreadableError
from timmybot.accounts.vault import Platform

CHECK = "v1:auth:check:youtube"


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[AccountsKit]:
    with accounts_api(tmp_path, google_lifetime_s=600) as built:
        yield built


def _data(response: Any) -> dict[str, Any]:
    body = response.json_body
    assert body["type"] in (4, 7), body
    return dict(body["data"])


def _custom_ids(data: dict[str, Any]) -> list[str]:
    return [c.get("custom_id", "") for row in data.get("components", []) for c in row["components"]]


def _link(kit: AccountsKit, user_id: str = USER_ID) -> str:
    """/link youtube; returns the user code shown."""
    data = _data(kit.post(command("link", {"platform": "youtube"}, user_id=user_id)))
    match = re.search(r"\*\*([A-Z]{4}-[A-Z]{4})\*\*", data["content"])
    assert match, data["content"]
    return match.group(1)


def _check(kit: AccountsKit, *, button: bool = True, user_id: str = USER_ID) -> dict[str, Any]:
    payload = component(CHECK, user_id=user_id) if button else command("check-auth", user_id=user_id)
    return _data(kit.post(payload))


def test_link_youtube_answers_privately_with_the_code_the_url_and_a_check_button(kit: AccountsKit) -> None:
    response = kit.post(command("link", {"platform": "youtube"}))
    data = _data(response)

    assert data["flags"] == EPHEMERAL
    assert "https://www.google.com/device" in data["content"]
    assert re.search(r"\*\*[A-Z]{4}-[A-Z]{4}\*\*", data["content"])
    assert _custom_ids(data) == [CHECK]
    assert "tbfake" not in response.body.decode()  # the device code itself is never shown


def test_the_whole_device_flow_with_slow_down_then_approval(kit: AccountsKit) -> None:
    # GIVEN a started link
    user_code = _link(kit)

    # WHEN the user presses Check before approving (after the 5 s interval)
    kit.clock.advance(5)
    waiting = _check(kit)
    # THEN they are told to approve first, the code again, and the button stays
    assert "still waiting" in waiting["content"] and user_code in waiting["content"]
    assert _custom_ids(waiting) == [CHECK]

    # WHEN Google answers slow_down
    kit.google.slow_down_next()
    kit.clock.advance(5)
    slow = _check(kit)
    # THEN the interval grows by 5 s and an earlier check does not reach Google
    assert "check less often" in slow["content"] and "10 seconds" in slow["content"]
    polls = kit.google.state.polls
    kit.clock.advance(5)
    too_soon = _check(kit, button=False)
    assert "Not yet" in too_soon["content"] and kit.google.state.polls == polls

    # WHEN the user approves and runs /check-auth after the longer interval
    kit.google.approve(user_code)
    kit.clock.advance(5)
    done = _check(kit, button=False)

    # THEN YouTube is linked, the pending code is gone and the access token is served
    assert "YouTube linked" in done["content"] and done["flags"] == EPHEMERAL
    assert kit.vault.platforms(USER_ID) == [Platform.YOUTUBE]
    assert kit.store.get_record(device_pk(USER_ID), "GOOGLE") is None
    token = kit.accounts.access_token(USER_ID, Platform.YOUTUBE)
    assert token is not None and kit.google.token(token) is not None


def test_the_button_edits_its_message_and_check_auth_answers_a_new_one(kit: AccountsKit) -> None:
    _link(kit)
    kit.clock.advance(5)

    assert kit.post(component(CHECK)).json_body["type"] == 7
    kit.clock.advance(5)
    assert kit.post(command("check-auth")).json_body["type"] == 4


def test_a_denial_has_its_own_sentence_and_ends_the_link(kit: AccountsKit) -> None:
    user_code = _link(kit)
    kit.google.deny(user_code)
    kit.clock.advance(5)

    denied = _check(kit)

    assert "You declined access on Google's page" in denied["content"]
    assert _custom_ids(denied) == []
    assert kit.vault.platforms(USER_ID) == []
    assert "no YouTube link waiting" in _check(kit)["content"]


def test_an_expired_device_code_has_its_own_sentence(kit: AccountsKit) -> None:
    _link(kit)
    kit.google.expire_codes()
    kit.clock.advance(5)

    assert "That code expired" in _check(kit)["content"]


def test_a_code_older_than_15_minutes_is_expired_without_asking_google(kit: AccountsKit) -> None:
    _link(kit)
    kit.clock.advance(15 * 60 + 1)
    polls = kit.google.state.polls

    assert "That code expired" in _check(kit)["content"]
    assert kit.google.state.polls == polls


def test_a_check_without_a_pending_link_says_what_to_do(kit: AccountsKit) -> None:
    assert "Run /link youtube first" in _check(kit, button=False)["content"]


def test_another_member_cannot_complete_someone_elses_code(kit: AccountsKit) -> None:
    user_code = _link(kit)
    kit.google.approve(user_code)
    kit.clock.advance(5)

    other = _check(kit, user_id=OTHER_USER_ID)

    assert "Run /link youtube first" in other["content"]
    assert kit.vault.platforms(OTHER_USER_ID) == []
    assert "YouTube linked" in _check(kit)["content"]


def _linked(kit: AccountsKit) -> None:
    user_code = _link(kit)
    kit.google.approve(user_code)
    kit.clock.advance(5)
    assert "YouTube linked" in _check(kit)["content"]


def test_tokens_are_refreshed_only_within_60_seconds_of_expiry(kit: AccountsKit) -> None:
    _linked(kit)
    stored = kit.vault.get(USER_ID, Platform.YOUTUBE)
    assert stored is not None

    kit.clock.advance(600 - 61)
    assert kit.accounts.access_token(USER_ID, Platform.YOUTUBE) == stored.access_token
    assert kit.google.state.refreshes == 0

    kit.clock.advance(2)
    fresh = kit.accounts.access_token(USER_ID, Platform.YOUTUBE)

    assert fresh != stored.access_token and kit.google.state.refreshes == 1
    again = kit.vault.get(USER_ID, Platform.YOUTUBE)
    assert again is not None and again.refresh_token == stored.refresh_token  # Google keeps it
    assert again.expires_at == kit.clock() + 600


def test_link_when_already_linked_says_so(kit: AccountsKit) -> None:
    _linked(kit)

    assert "already linked" in _data(kit.post(command("link", {"platform": "youtube"})))["content"]


def test_unlink_revokes_at_google_and_deletes_the_tokens(kit: AccountsKit) -> None:
    _linked(kit)
    stored = kit.vault.get(USER_ID, Platform.YOUTUBE)
    assert stored is not None

    data = _data(kit.post(command("unlink", {"platform": "youtube"})))

    assert "revoked TimmyBot's access at Google" in data["content"] and data["flags"] == EPHEMERAL
    assert kit.google.state.revoked == [stored.refresh_token]
    assert kit.vault.platforms(USER_ID) == []
    assert kit.accounts.access_token(USER_ID, Platform.YOUTUBE) is None
    assert "nothing to remove" in _data(kit.post(command("unlink", {"platform": "youtube"})))["content"]


def test_a_revoked_grant_is_removed_at_the_next_refresh_with_a_sentence(kit: AccountsKit) -> None:
    _linked(kit)
    stored = kit.vault.get(USER_ID, Platform.YOUTUBE)
    assert stored is not None and stored.refresh_token is not None
    kit.google.token(stored.refresh_token).revoked = True  # type: ignore[union-attr]  # the user revoked at Google
    kit.clock.advance(600)

    with pytest.raises(LinkRevokedError, match="/link youtube"):
        kit.accounts.access_token(USER_ID, Platform.YOUTUBE)
    assert kit.vault.platforms(USER_ID) == []


def test_linking_is_explained_when_the_operator_has_no_google_app(tmp_path: Path) -> None:
    with accounts_api(tmp_path, google_client_id="") as kit:
        data = _data(kit.post(command("link", {"platform": "youtube"})))

    assert "isn't set up on this bot" in data["content"] and data["flags"] == EPHEMERAL


def _approve_and_check(kit: AccountsKit) -> dict[str, Any]:
    user_code = _link(kit)
    kit.google.approve(user_code)
    kit.clock.advance(5)
    return _check(kit)


def test_the_linked_reply_names_the_google_accounts_channel_escaped(kit: AccountsKit) -> None:
    # GIVEN a Google account whose channel title is hostile Discord markdown
    kit.youtube.default_user.channel_title = "Tess *Tunes* @everyone"

    done = _approve_and_check(kit)

    # THEN the reply names it, escaped, after one channels.list (mine=true, snippet: 1 quota unit)
    assert done["content"].startswith("YouTube linked as **Tess \\*Tunes\\* @\u200beveryone**!")
    assert [q for path, q in kit.youtube.requests if path == "channels"] == [{"part": "snippet", "mine": "true"}]
    assert kit.vault.platforms(USER_ID) == [Platform.YOUTUBE]


def test_an_account_without_a_channel_is_linked_and_says_why_no_name(kit: AccountsKit) -> None:
    kit.youtube.default_user.channel_title = None

    done = _approve_and_check(kit)

    assert "YouTube linked (this Google account has no YouTube channel, so I can't show its name)" in done["content"]
    assert kit.vault.platforms(USER_ID) == [Platform.YOUTUBE]


def test_a_failed_channel_lookup_still_reports_the_link(kit: AccountsKit) -> None:
    kit.youtube.channels_status = 500

    done = _approve_and_check(kit)

    assert done["content"].startswith("YouTube linked! Try /my-playlists")
    assert kit.vault.platforms(USER_ID) == [Platform.YOUTUBE]
    assert any(path == "channels" for path, _ in kit.youtube.requests)


def test_a_pending_link_sealed_under_another_link_key_ends_with_a_sentence(kit: AccountsKit) -> None:
    # GIVEN a link started, then the bot's link key changed (a redeploy with a new parameter)
    _link(kit)
    kit.clock.advance(5)
    rekeyed = build_linked_accounts(
        replace(kit.services.settings, link_key="another-link-key-" * 3), kit.store, kit.vault, clock=kit.clock
    )

    # WHEN the member checks
    with pytest.raises(PendingLinkUnreadableError) as ended:
        rekeyed.check_google_link(USER_ID)

    # THEN a clear sentence, not a crash, and the unusable record is gone
    assert "Run /link youtube again" in ended.value.user_message
    assert rekeyed.pending_google(USER_ID) is None
    assert kit.store.get_record(device_pk(USER_ID), "GOOGLE") is None
    assert "Run /link youtube first" in _check(kit)["content"]
