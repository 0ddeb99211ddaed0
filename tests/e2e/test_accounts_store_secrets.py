"""The store never holds a usable OAuth secret (issue 14): every account flow is driven against a real
SQLite store, then EVERY cell of every table (store and vault files) is read back and searched for
the device codes, user codes, PKCE verifiers, states, authorize URLs, authorization codes, confirm
tokens and provider tokens those flows handled.

A verifier is never seen by the test, so it is found by what it does: any word in the store whose
S256 challenge equals a challenge Spotify was sent is that verifier.

User codes are searched for too: the "still waiting" reminder needs one, so the record keeps it
sealed rather than in clear (whoever reads a user code can approve their own Google account onto
someone else's pending link), and the replies that show it are never saved for Discord's retries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.support.accounts_kit import AccountsKit, accounts_api, form_fields
from tests.support.oauth_server import MARKER
from tests.support.signing import EPHEMERAL, OTHER_USER_ID, USER_ID, command, component
from timmybot.accounts.oauth.spotify import code_challenge

CHECK = "v1:auth:check:youtube"
_WORD = re.compile(r"[A-Za-z0-9._~-]{20,}")


class Secrets:
    """What the flows handled, and the search for it in the store."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}  # value -> what it is
        self.challenges: set[str] = set()

    def add(self, what: str, value: str) -> None:
        self.values[value] = what
        encoded = quote(value, safe="")
        if encoded != value:
            self.values[encoded] = what + " (url-encoded)"

    def found_in(self, cells: list[str]) -> list[str]:
        found: list[str] = []
        texts = [*cells, *(_json_strings(cell) for cell in cells)]
        blob = "\n".join(texts)
        found.extend(f"{what}: {value[:12]}…" for value, what in self.values.items() if value in blob)
        if MARKER in blob:
            found.append("a secret a fake provider issued (marker in clear)")
        for word in set(_WORD.findall(blob)):
            if 43 <= len(word) <= 128 and word.isascii() and code_challenge(word) in self.challenges:
                found.append(f"a PKCE verifier: {word[:8]}…")
        return sorted(set(found))


def _json_strings(cell: str) -> str:
    """The strings inside a JSON cell, unescaped (a value could hide behind a JSON escape)."""
    try:
        loaded = json.loads(cell)
    except ValueError:
        return ""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
            if value[:1] in "{[":
                out.append(_json_strings(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                out.append(str(key))
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(loaded)
    return "\n".join(out)


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[AccountsKit]:
    with accounts_api(tmp_path, google_lifetime_s=600) as built:
        yield built


def _clean(kit: AccountsKit, secrets: Secrets, step: str) -> None:
    for device_code in kit.google.state.credentials:
        secrets.add("Google device code", device_code)
    leaks = secrets.found_in(kit.every_value())
    assert leaks == [], f"after {step} the store holds: {leaks}"


def _content(response: Any) -> str:
    return str(response.json_body["data"]["content"])


def _start_youtube(kit: AccountsKit, secrets: Secrets, user_id: str) -> str:
    content = _content(kit.post(command("link", {"platform": "youtube"}, user_id=user_id)))
    match = re.search(r"\*\*([A-Z]{4}-[A-Z]{4})\*\*", content)
    assert match, content
    user_code = match.group(1)
    secrets.add("Google user code", user_code)
    secrets.add("Google user code", user_code.replace("-", ""))
    return user_code


def _start_spotify(kit: AccountsKit, secrets: Secrets, user_id: str) -> str:
    data = kit.post(command("link", {"platform": "spotify"}, user_id=user_id)).json_body["data"]
    url = str(data["components"][0]["components"][0]["url"])
    query = parse_qs(urlsplit(url).query)
    secrets.add("Spotify authorize URL", url)
    secrets.add("Spotify state", query["state"][0])
    secrets.challenges.add(query["code_challenge"][0])
    return url


def test_no_flow_leaves_a_usable_oauth_secret_in_any_row(kit: AccountsKit) -> None:
    secrets = Secrets()

    # YouTube: start, Check while pending, slow_down, approve
    user_code = _start_youtube(kit, secrets, USER_ID)
    _clean(kit, secrets, "/link youtube")
    kit.clock.advance(5)
    assert "still waiting" in _content(kit.post(component(CHECK)))
    _clean(kit, secrets, "a pending Check")
    kit.google.slow_down_next()
    kit.clock.advance(5)
    assert "check less often" in _content(kit.post(component(CHECK)))
    _clean(kit, secrets, "a slow_down Check")
    kit.google.approve(user_code)
    kit.clock.advance(10)
    assert "YouTube linked" in _content(kit.post(command("check-auth")))
    _clean(kit, secrets, "the YouTube link")

    # Spotify: start, the browser's return, the confirm
    url = _start_spotify(kit, secrets, USER_ID)
    _clean(kit, secrets, "/link spotify")
    answer = kit.spotify.consent(url)
    secrets.add("Spotify authorization code", answer["code"])
    page = kit.callback(answer)
    assert page.status_code == 200
    form = form_fields(page.body.decode())
    for name, value in form.items():
        if len(value) >= 16:
            secrets.add(f"confirm form field {name}", value)
    _clean(kit, secrets, "the Spotify callback page")
    if form:  # the confirm step (issue 14); before it, the GET alone linked
        assert kit.confirm(form).status_code == 200
        _clean(kit, secrets, "the Spotify confirm")

    # Another member: links in progress, then /unlink and /forget-me
    _start_youtube(kit, secrets, OTHER_USER_ID)
    _start_spotify(kit, secrets, OTHER_USER_ID)
    _clean(kit, secrets, "two more links in progress")
    kit.post(command("unlink", {"platform": "spotify"}, user_id=OTHER_USER_ID))
    kit.post(command("unlink", {"platform": "youtube"}))
    _clean(kit, secrets, "/unlink")
    kit.post(component("v1:forget:confirm", user_id=OTHER_USER_ID))
    kit.post(component("v1:forget:confirm"))
    _clean(kit, secrets, "/forget-me")


def test_a_discord_retry_of_a_link_reply_gets_no_live_link(kit: AccountsKit) -> None:
    # GIVEN /link spotify and /link youtube answered once
    secrets = Secrets()
    spotify = command("link", {"platform": "spotify"})
    youtube = command("link", {"platform": "youtube"}, user_id=OTHER_USER_ID)
    first_spotify = kit.post(spotify).json_body["data"]
    first_youtube = _content(kit.post(youtube))
    url = first_spotify["components"][0]["components"][0]["url"]
    secrets.add("Spotify state", parse_qs(urlsplit(url).query)["state"][0])

    # WHEN Discord delivers the same interactions again
    again_spotify = kit.post(spotify).json_body
    again_youtube = kit.post(youtube).json_body

    # THEN the repeats say the request was handled and to run /link again, without the link or code
    for again in (again_spotify, again_youtube):
        assert again["type"] == 4 and again["data"]["flags"] == EPHEMERAL
        assert "already handled" in again["data"]["content"] and "/link" in again["data"]["content"]
        assert again["data"].get("components", []) == []
    assert url not in json.dumps(again_spotify)
    user_code = re.search(r"\*\*([A-Z]{4}-[A-Z]{4})\*\*", first_youtube)
    assert user_code and user_code.group(1) not in json.dumps(again_youtube)
    _clean(kit, secrets, "the retries")


def test_the_scan_finds_each_kind_of_secret_when_it_is_there(kit: AccountsKit) -> None:
    # GIVEN a store holding, in clear, what the old design kept (a verifier, a state, a device code)
    secrets = Secrets()
    verifier = "v" * 43
    secrets.challenges.add(code_challenge(verifier))
    secrets.add("Spotify state", "S" * 43)
    kit.store.update_record("O#probe", "X", lambda _r: {"verifier": verifier, "url": "https://x/?state=" + "S" * 43})
    kit.store.update_record("O#probe", "Y", lambda _r: {"device_code": MARKER + "device_" + "0" * 32})

    # THEN the scan names all three
    leaks = secrets.found_in(kit.every_value())

    assert any("PKCE verifier" in leak for leak in leaks)
    assert any("Spotify state" in leak for leak in leaks)
    assert any("marker in clear" in leak for leak in leaks)
