"""/link spotify: PKCE against a loopback fake Spotify (Authlib checks the verifier), the callback's
state rules (single use, bound to the user, 15 min), the confirm step (the page names the Discord
account; only its POST links), refresh with rotation, and /unlink."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.oauth_callback import handle_spotify_confirm
from tests.support.accounts_kit import AccountsKit, accounts_api, form_fields
from tests.support.signing import EPHEMERAL, OTHER_USER_ID, USER_ID, command
from timmybot.accounts.oauth import CodeRejectedError
from timmybot.accounts.oauth.spotify import SpotifyPkce
from timmybot.accounts.vault import Platform

CONFIRM_DEADLINE_TEXT = "That took too long: run /link spotify again"


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[AccountsKit]:
    with accounts_api(tmp_path) as built:
        yield built


def _authorize_url(kit: AccountsKit, user_id: str = USER_ID) -> str:
    data = kit.post(command("link", {"platform": "spotify"}, user_id=user_id)).json_body["data"]
    assert data["flags"] == EPHEMERAL
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


def _safe_headers(response: Any) -> None:
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy and "default-src 'none'" in policy


def test_the_callback_asks_to_confirm_and_only_the_confirm_links(kit: AccountsKit) -> None:
    # GIVEN a member (display name and username from the interaction) who approved at Spotify
    user = {"username": "tess_t", "global_name": "Tess"}
    data = kit.post(command("link", {"platform": "spotify"}, user_fields=user)).json_body["data"]
    answer = kit.spotify.consent(data["components"][0]["components"][0]["url"])

    # WHEN the browser comes back
    response = kit.callback(answer)

    # THEN a small safe page names the Discord account, states its deadline and asks to confirm
    page = _body(response)
    assert response.status_code == 200 and "Confirm the Spotify link" in page
    assert "will be linked to the Discord account Tess (@tess_t)" in page
    assert "Confirm within 5 minutes" in page
    assert '<form method="post" action="/oauth/spotify/callback">' in page
    _safe_headers(response)
    assert "tbfake" not in page and answer["state"] not in page and answer["code"] not in page
    # AND nothing is linked or exchanged yet
    assert kit.vault.platforms(USER_ID) == [] and kit.spotify.state.exchanges == 0

    # WHEN the member presses Confirm
    confirmed = kit.confirm(form_fields(page))

    # THEN the code is exchanged once and Spotify is linked
    assert confirmed.status_code == 200 and "Linked — you can return to Discord" in _body(confirmed)
    _safe_headers(confirmed)
    tokens = kit.vault.get(USER_ID, Platform.SPOTIFY)
    assert tokens is not None and kit.spotify.is_live(tokens.access_token)
    assert kit.spotify.state.exchanges == 1


def test_the_display_name_falls_back_to_the_username(kit: AccountsKit) -> None:
    data = kit.post(command("link", {"platform": "spotify"}, user_fields={"username": "plain"})).json_body["data"]

    page = _body(kit.callback(kit.spotify.consent(data["components"][0]["components"][0]["url"])))

    assert "the Discord account plain (@plain)" in page


def test_the_server_checks_the_verifier(kit: AccountsKit) -> None:
    # GIVEN an approval whose challenge was made from the state's verifier under the bot's link key
    answer = kit.spotify.consent(_authorize_url(kit))

    # WHEN the code is exchanged with the verifier another link key derives from the same state
    other = SpotifyPkce.from_settings(kit.services.settings, link_key=b"another-link-key-" * 3)

    # THEN Spotify (Authlib) refuses it; the bot's own derivation still links
    with pytest.raises(CodeRejectedError):
        other.exchange(answer["code"], state=answer["state"])
    assert kit.link_spotify(answer).status_code == 200
    assert kit.vault.platforms(USER_ID) == [Platform.SPOTIFY]


def test_a_replayed_state_is_refused(kit: AccountsKit) -> None:
    answer = kit.spotify.consent(_authorize_url(kit))
    assert kit.link_spotify(answer).status_code == 200

    replay = kit.callback(answer)

    assert replay.status_code == 400 and "already used" in _body(replay)
    assert kit.spotify.state.exchanges == 1


def test_a_double_submit_links_once_and_both_answer_linked(kit: AccountsKit) -> None:
    page = _body(kit.callback(kit.spotify.consent(_authorize_url(kit))))
    form = form_fields(page)

    first, second = kit.confirm(form), kit.confirm(form)

    assert first.status_code == second.status_code == 200
    assert "Linked" in _body(first) and "Linked" in _body(second)
    assert kit.spotify.state.exchanges == 1
    assert kit.vault.platforms(USER_ID) == [Platform.SPOTIFY]


def test_two_concurrent_submits_link_once_and_both_answer_linked(kit: AccountsKit) -> None:
    # GIVEN a confirm page, and a Spotify slow enough that two submits overlap
    form = form_fields(_body(kit.callback(kit.spotify.consent(_authorize_url(kit)))))
    body = f"link={form['link']}&confirm={form['confirm']}".encode()
    kit.spotify.token_delay_s = 0.5
    start = threading.Barrier(2)
    pages: list[Any] = []

    def submit() -> None:
        start.wait()
        pages.append(handle_spotify_confirm(kit.services, body))

    # WHEN both submit at once
    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)

    # THEN one exchange, one link, and both see the success page
    assert [page.status for page in pages] == [200, 200]
    assert all("Linked" in page.body for page in pages)
    assert kit.spotify.state.exchanges == 1
    assert kit.vault.platforms(USER_ID) == [Platform.SPOTIFY]


def test_a_confirm_after_the_deadline_is_refused_with_its_sentence(kit: AccountsKit) -> None:
    form = form_fields(_body(kit.callback(kit.spotify.consent(_authorize_url(kit)))))
    kit.clock.advance(5 * 60 + 1)

    late = kit.confirm(form)

    assert late.status_code == 400 and CONFIRM_DEADLINE_TEXT in _body(late)
    assert kit.vault.platforms(USER_ID) == [] and kit.spotify.state.exchanges == 0
    assert kit.accounts.status(USER_ID).spotify_pending is False  # the link is over: start again


def test_a_confirm_just_inside_the_deadline_links(kit: AccountsKit) -> None:
    form = form_fields(_body(kit.callback(kit.spotify.consent(_authorize_url(kit)))))
    kit.clock.advance(5 * 60 - 1)

    assert kit.confirm(form).status_code == 200
    assert kit.vault.platforms(USER_ID) == [Platform.SPOTIFY]


def test_the_page_escapes_the_display_name(kit: AccountsKit) -> None:
    hostile = {"username": "x<y>", "global_name": "<script>alert(1)</script>"}
    data = kit.post(command("link", {"platform": "spotify"}, user_fields=hostile)).json_body["data"]

    page = _body(kit.callback(kit.spotify.consent(data["components"][0]["components"][0]["url"])))

    assert "<script>alert(1)</script>" not in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (@x&lt;y&gt;)" in page


def test_forged_and_malformed_confirms_are_refused(kit: AccountsKit) -> None:
    # GIVEN two members each at their own confirm page
    mine = form_fields(_body(kit.callback(kit.spotify.consent(_authorize_url(kit, USER_ID)))))
    theirs = form_fields(_body(kit.callback(kit.spotify.consent(_authorize_url(kit, OTHER_USER_ID)))))
    forged: list[tuple[str, dict[str, str] | None, bytes | None]] = [
        ("no token", {"link": mine["link"]}, None),
        ("empty token", {"link": mine["link"], "confirm": ""}, None),
        ("a made-up token", {"link": mine["link"], "confirm": "A" * 43}, None),
        ("another link's token", {"link": mine["link"], "confirm": theirs["confirm"]}, None),
        ("no link", {"confirm": mine["confirm"]}, None),
        ("a made-up link", {"link": "g1." + "A" * 60, "confirm": mine["confirm"]}, None),
        ("an over-long field", {"link": mine["link"], "confirm": mine["confirm"] + "A" * 5000}, None),
        ("a non-ASCII field", {"link": mine["link"], "confirm": mine["confirm"][:-1] + "é"}, None),
        ("raw non-ASCII bytes", None, b"link=" + mine["link"].encode() + b"&confirm=" + bytes((0xFF, 0xFE))),
        ("a repeated field", None, f"link={mine['link']}&confirm=x&confirm={mine['confirm']}".encode()),
        ("an empty body", None, b""),
    ]

    # WHEN each forged or malformed confirm is posted
    for what, form, raw in forged:
        response = kit.confirm(form or {}, raw=raw)

        # THEN it is refused with a clear page
        assert response.status_code in (400, 403), what
        assert "Spotify not linked" in _body(response), what
    # AND nothing was exchanged or linked, and both real pages still work
    assert kit.spotify.state.exchanges == 0
    assert kit.vault.platforms(USER_ID) == [] and kit.vault.platforms(OTHER_USER_ID) == []
    assert kit.confirm(theirs).status_code == 200 and kit.vault.platforms(OTHER_USER_ID) == [Platform.SPOTIFY]
    assert kit.confirm(mine).status_code == 200 and kit.vault.platforms(USER_ID) == [Platform.SPOTIFY]


def test_a_get_with_the_confirm_fields_confirms_nothing(kit: AccountsKit) -> None:
    answer = kit.spotify.consent(_authorize_url(kit))
    form = form_fields(_body(kit.callback(answer)))

    response = kit.callback({**answer, **form})

    assert response.status_code == 400 and "only works as the end of a Spotify link" in _body(response)
    assert kit.spotify.state.exchanges == 0 and kit.vault.platforms(USER_ID) == []


def test_a_confirm_of_another_content_type_is_not_taken(kit: AccountsKit) -> None:
    form = form_fields(_body(kit.callback(kit.spotify.consent(_authorize_url(kit)))))

    response = kit.client.http.post(
        "/oauth/spotify/callback", headers={"Content-Type": "text/plain"}, body=f"confirm={form['confirm']}".encode()
    )

    assert response.status_code == 415
    assert kit.spotify.state.exchanges == 0


def test_a_reloaded_page_replaces_the_older_pages_token(kit: AccountsKit) -> None:
    answer = kit.spotify.consent(_authorize_url(kit))
    older = form_fields(_body(kit.callback(answer)))
    newer = form_fields(_body(kit.callback(answer)))

    assert kit.confirm(older).status_code == 403
    assert kit.confirm(newer).status_code == 200
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
    assert kit.link_spotify(newer).status_code == 200


def test_the_state_binds_the_member_who_started_the_link(kit: AccountsKit) -> None:
    # GIVEN two members each starting a link
    alice = kit.spotify.consent(_authorize_url(kit, USER_ID))
    bob = kit.spotify.consent(_authorize_url(kit, OTHER_USER_ID))

    # WHEN only Bob's approval comes back
    assert kit.link_spotify(bob).status_code == 200

    # THEN the tokens belong to Bob alone; Alice's link is still hers to finish
    assert kit.vault.platforms(OTHER_USER_ID) == [Platform.SPOTIFY]
    assert kit.vault.platforms(USER_ID) == []
    assert kit.link_spotify(alice).status_code == 200
    assert kit.vault.platforms(USER_ID) == [Platform.SPOTIFY]


def test_a_declined_consent_and_a_bare_visit_get_their_own_page(kit: AccountsKit) -> None:
    declined = kit.callback(kit.spotify.consent(_authorize_url(kit), approve=False))
    bare = kit.client.http.get("/oauth/spotify/callback")

    assert declined.status_code == 400 and "access was not granted" in _body(declined)
    assert bare.status_code == 400 and "only works as the end of a Spotify link" in _body(bare)


def test_refresh_stores_the_rotated_refresh_token_every_time(tmp_path: Path) -> None:
    with accounts_api(tmp_path, spotify_lifetime_s=3600) as kit:
        assert kit.link_spotify(kit.spotify.consent(_authorize_url(kit))).status_code == 200
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
    assert kit.link_spotify(kit.spotify.consent(_authorize_url(kit))).status_code == 200

    data = kit.post(command("unlink", {"platform": "spotify"})).json_body["data"]

    assert "spotify.com/account/apps" in data["content"] and data["flags"] == EPHEMERAL
    assert kit.vault.platforms(USER_ID) == []
    assert kit.accounts.access_token(USER_ID, Platform.SPOTIFY) is None


def test_unlink_cancels_a_link_in_progress(kit: AccountsKit) -> None:
    answer = kit.spotify.consent(_authorize_url(kit))

    data = kit.post(command("unlink", {"platform": "spotify"})).json_body["data"]

    assert "cancelled the link you had started" in data["content"]
    assert kit.callback(answer).status_code == 400


def test_unlink_cancels_a_link_waiting_for_its_confirm(kit: AccountsKit) -> None:
    form = form_fields(_body(kit.callback(kit.spotify.consent(_authorize_url(kit)))))

    data = kit.post(command("unlink", {"platform": "spotify"})).json_body["data"]

    assert "cancelled the link you had started" in data["content"]
    assert kit.confirm(form).status_code == 400
    assert kit.spotify.state.exchanges == 0 and kit.vault.platforms(USER_ID) == []


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
    # AND nothing is linked (Alice's Spotify is not bound to Bob) and no code was exchanged,
    # then or after the page's deadline, when Alice has closed it without confirming
    assert kit.vault.platforms(OTHER_USER_ID) == []
    assert kit.spotify.state.exchanges == 0
    kit.clock.advance(5 * 60 + 1)
    assert kit.vault.platforms(OTHER_USER_ID) == [] and kit.spotify.state.exchanges == 0
