"""/link spotify: PKCE against a loopback fake Spotify (Authlib checks the verifier), the callback's
state rules (single use, bound to the user, 15 min), refresh with rotation, and /unlink."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.accounts_kit import AccountsKit, accounts_api
from tests.support.signing import OTHER_USER_ID, USER_ID, command
from timmybot.accounts import SPOTIFY_STATE_SK, state_pk
from timmybot.vault import Platform


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[AccountsKit]:
    with accounts_api(tmp_path) as built:
        yield built


def _authorize_url(kit: AccountsKit, user_id: str = USER_ID) -> str:
    data = kit.post(command("link", {"platform": "spotify"}, user_id=user_id)).json_body["data"]
    assert data["flags"] == 64
    (button,) = data["components"][0]["components"]
    assert button["style"] == 5 and button["label"] == "Link Spotify"
    return str(button["url"])


def _body(response: Any) -> str:
    return response.body.decode() if isinstance(response.body, bytes) else str(response.body)


def test_link_spotify_sends_a_pkce_s256_request_with_the_exact_redirect_uri(kit: AccountsKit) -> None:
    query = parse_qs(urlsplit(_authorize_url(kit)).query)

    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/oauth/spotify/callback"]
    assert len(query["state"][0]) >= 43 and len(query["code_challenge"][0]) == 43
    assert "user-library-read" in query["scope"][0]


def test_the_callback_links_spotify_and_shows_a_small_safe_page(kit: AccountsKit) -> None:
    answer = kit.spotify.consent(_authorize_url(kit))

    response = kit.callback(answer)

    page = _body(response)
    assert response.status_code == 200 and "Linked — you can return to Discord" in page
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "tbfake" not in page and answer["state"] not in page
    tokens = kit.vault.get(USER_ID, Platform.SPOTIFY)
    assert tokens is not None and kit.spotify.is_live(tokens.access_token)
    assert kit.spotify.state.exchanges == 1


def test_the_server_checks_the_verifier(kit: AccountsKit) -> None:
    # GIVEN a pending link whose stored verifier is not the one the challenge was made from
    url = _authorize_url(kit)
    answer = kit.spotify.consent(url)
    key = state_pk(answer["state"])
    kit.store.update_record(key, SPOTIFY_STATE_SK, lambda r: {**(r or {}), "verifier": "x" * 64}, ttl_s=600)

    # WHEN the callback exchanges the code with it
    response = kit.callback(answer)

    # THEN Spotify (Authlib) refuses: nothing is linked
    assert response.status_code == 400 and "did not accept that approval" in _body(response)
    assert kit.vault.platforms(USER_ID) == []


def test_a_replayed_state_is_refused(kit: AccountsKit) -> None:
    answer = kit.spotify.consent(_authorize_url(kit))
    assert kit.callback(answer).status_code == 200

    replay = kit.callback(answer)

    assert replay.status_code == 400 and "links work once" in _body(replay)
    assert kit.spotify.state.exchanges == 1


def test_a_wrong_state_is_refused(kit: AccountsKit) -> None:
    answer = kit.spotify.consent(_authorize_url(kit))

    response = kit.callback({**answer, "state": "not-the-state-we-issued"})

    assert response.status_code == 400 and "not valid anymore" in _body(response)
    assert kit.vault.platforms(USER_ID) == []


def test_a_state_expires_after_15_minutes(kit: AccountsKit) -> None:
    answer = kit.spotify.consent(_authorize_url(kit))
    kit.clock.advance(15 * 60 + 1)

    response = kit.callback(answer)

    assert response.status_code == 400 and "15 minutes" in _body(response)
    assert kit.vault.platforms(USER_ID) == []


def test_a_newer_link_supersedes_the_older_state(kit: AccountsKit) -> None:
    older = kit.spotify.consent(_authorize_url(kit))
    newer = kit.spotify.consent(_authorize_url(kit))

    assert kit.callback(older).status_code == 400
    assert kit.callback(newer).status_code == 200


def test_the_state_binds_the_member_who_started_the_link(kit: AccountsKit) -> None:
    # GIVEN two members each starting a link
    alice = kit.spotify.consent(_authorize_url(kit, USER_ID))
    bob = kit.spotify.consent(_authorize_url(kit, OTHER_USER_ID))

    # WHEN only Bob's approval comes back
    assert kit.callback(bob).status_code == 200

    # THEN the tokens belong to Bob alone; Alice's link is still hers to finish
    assert kit.vault.platforms(OTHER_USER_ID) == [Platform.SPOTIFY]
    assert kit.vault.platforms(USER_ID) == []
    assert kit.callback(alice).status_code == 200
    assert kit.vault.platforms(USER_ID) == [Platform.SPOTIFY]


def test_a_declined_consent_and_a_bare_visit_get_their_own_page(kit: AccountsKit) -> None:
    declined = kit.callback(kit.spotify.consent(_authorize_url(kit), approve=False))
    bare = kit.client.http.get("/oauth/spotify/callback")

    assert declined.status_code == 400 and "access was not granted" in _body(declined)
    assert bare.status_code == 400 and "only works as the end of a Spotify link" in _body(bare)


def test_refresh_stores_the_rotated_refresh_token_every_time(tmp_path: Path) -> None:
    with accounts_api(tmp_path, spotify_lifetime_s=3600) as kit:
        assert kit.callback(kit.spotify.consent(_authorize_url(kit))).status_code == 200
        first = kit.vault.get(USER_ID, Platform.SPOTIFY)
        assert first is not None and first.refresh_token is not None

        seen = [first.refresh_token]
        for _round in range(3):
            kit.clock.advance(3600 - 30)  # inside the 60 s margin
            access = kit.accounts.access_token(USER_ID, Platform.SPOTIFY)
            stored = kit.vault.get(USER_ID, Platform.SPOTIFY)
            assert stored is not None and stored.access_token == access
            assert stored.refresh_token not in seen  # rotated, and the new one was stored
            assert not kit.spotify.is_live(seen[-1])  # the old one is dead at Spotify
            seen.append(str(stored.refresh_token))

        assert kit.spotify.state.refreshes == 3


def test_unlink_spotify_deletes_the_tokens_and_says_how_to_remove_the_app(kit: AccountsKit) -> None:
    assert kit.callback(kit.spotify.consent(_authorize_url(kit))).status_code == 200

    data = kit.post(command("unlink", {"platform": "spotify"})).json_body["data"]

    assert "spotify.com/account/apps" in data["content"] and data["flags"] == 64
    assert kit.vault.platforms(USER_ID) == []
    assert kit.accounts.access_token(USER_ID, Platform.SPOTIFY) is None


def test_unlink_cancels_a_link_in_progress(kit: AccountsKit) -> None:
    answer = kit.spotify.consent(_authorize_url(kit))

    data = kit.post(command("unlink", {"platform": "spotify"})).json_body["data"]

    assert "cancelled the link you had started" in data["content"]
    assert kit.callback(answer).status_code == 400


def test_a_shared_link_names_the_discord_account_and_links_nothing_until_confirmed(kit: AccountsKit) -> None:
    # GIVEN Bob starts /link spotify and sends the link to Alice
    bob = {"username": "bob_b", "global_name": "Bob B."}
    data = kit.post(command("link", {"platform": "spotify"}, user_id=OTHER_USER_ID, user_fields=bob)).json_body
    url = data["data"]["components"][0]["components"][0]["url"]

    # WHEN Alice approves at Spotify with her account and her browser comes back
    response = kit.callback(kit.spotify.consent(url))

    # THEN the page names Bob's Discord account, so Alice can see whose link it is and refuse
    page = _body(response)
    assert response.status_code == 200
    assert "Bob B. (@bob_b)" in page
    # AND nothing is linked (Alice's Spotify is not bound to Bob) and no code was exchanged
    assert kit.vault.platforms(OTHER_USER_ID) == []
    assert kit.spotify.state.exchanges == 0
