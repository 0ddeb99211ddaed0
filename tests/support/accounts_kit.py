"""The api app wired for account tests: fake Google and Spotify on loopback, a FakeClock shared by
the store and the accounts service, and a vault of the chosen backend.

    with accounts_api(tmp_path) as kit:
        kit.post(command("link", {"platform": "youtube"}))
        kit.clock.advance(5)
        kit.google.approve(user_code)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import app
from chalice.test import Client, HTTPResponse

from chalicelib.bootstrap import Services, app_services, bootstrap
from tests.support.clock import FakeClock
from tests.support.fake_google import FakeGoogle
from tests.support.fake_spotify_auth import FakeSpotifyAuth
from tests.support.fake_youtube_api import FakeYouTubeApi
from tests.support.signing import Signer, make_settings, post_checked
from timmybot.accounts.linked import LinkedAccounts, build_linked_accounts
from timmybot.accounts.vault import Vault, build_vault
from timmybot.store.base import Store
from timmybot.store.sqlite import SQLiteStore

REDIRECT_URI = "http://127.0.0.1:8000/oauth/spotify/callback"
REGION = "us-east-1"
TOKEN_TABLE = "timmybot-tokens-e2e"


@dataclass
class AccountsKit:
    client: Client
    signer: Signer
    services: Services
    clock: FakeClock
    google: FakeGoogle
    spotify: FakeSpotifyAuth
    youtube: FakeYouTubeApi  # the Data API the linked Google tokens reach (channels.list after a link)
    vault: Vault
    db_path: Path

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def accounts(self) -> LinkedAccounts:
        return self.services.accounts

    def post(self, payload: Mapping[str, Any]) -> HTTPResponse:
        return post_checked(self.client, self.signer, payload)

    def callback(self, query: Mapping[str, str]) -> HTTPResponse:
        from urllib.parse import urlencode  # noqa: PLC0415

        return self.client.http.get("/oauth/spotify/callback?" + urlencode(dict(query)))

    def confirm(self, form: Mapping[str, str], *, raw: bytes | None = None) -> HTTPResponse:
        """The browser submitting the callback page's confirm form (``raw``: a hand-made body)."""
        from urllib.parse import urlencode  # noqa: PLC0415

        body = raw if raw is not None else urlencode(dict(form)).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.client.http.post("/oauth/spotify/callback", headers=headers, body=body)

    def complete(self, answer: Mapping[str, str]) -> tuple[HTTPResponse, HTTPResponse | None]:
        """The browser's whole return: the callback GET, then its confirm form POSTed (None: no form)."""
        page = self.callback(answer)
        form = form_fields(page.body.decode())
        return page, (self.confirm(form) if form else None)

    def link_spotify(self, answer: Mapping[str, str]) -> HTTPResponse:
        """``complete`` that must reach the confirm: the confirm's answer."""
        page, confirmed = self.complete(answer)
        assert confirmed is not None, page.body.decode()
        return confirmed

    def every_value(self) -> list[str]:
        """Every column of every row of every table of the store's and the vault's SQLite files, as text."""
        return [*sqlite_values(self.db_path), *sqlite_values(self.vault_path)]

    @property
    def vault_path(self) -> Path:
        return self.services.settings.vault_database_path

    def user_rows(self, user_id: str) -> list[tuple[str, str]]:
        """Every store row that belongs to the user (U#…, O#device#/O#spotify#<id>, an OAuth state
        naming them), and every OAuth row whose owner cannot be told (those count against everyone)."""
        import sqlite3  # noqa: PLC0415

        with contextlib.closing(sqlite3.connect(self.db_path)) as connection:
            rows = connection.execute(
                "SELECT pk, sk, data FROM items WHERE pk LIKE ? OR pk LIKE 'O#%'", (f"U#{user_id}%",)
            ).fetchall()
        found: list[tuple[str, str]] = []
        for pk, sk, data in rows:
            try:
                owner = json.loads(data).get("user_id")
            except (ValueError, AttributeError, TypeError):
                owner = None
            if owner is None and str(pk).startswith("O#") and "#" in str(pk)[2:]:
                tail = str(pk).rsplit("#", 1)[1]
                owner = tail if tail.isdigit() else None
            if str(pk).startswith("U#") or owner in (user_id, None):
                found.append((str(pk), str(sk)))
        return found


def sqlite_values(path: Path) -> list[str]:
    """Every cell of every table in the SQLite file at ``path`` (bytes as latin-1), empty if absent."""
    import sqlite3  # noqa: PLC0415

    if not path.exists():
        return []
    values: list[str] = []
    with contextlib.closing(sqlite3.connect(path)) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # names from sqlite_master
                for cell in row:
                    if cell is None:
                        continue
                    values.append(cell.decode("latin-1") if isinstance(cell, bytes) else str(cell))
    return values


def form_fields(page: str) -> dict[str, str]:
    """The named inputs of the page's form (hidden fields included), as a browser would submit them."""
    from html.parser import HTMLParser  # noqa: PLC0415

    found: dict[str, str] = {}

    class Inputs(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            named = dict(attrs)
            if tag in ("input", "button") and named.get("name"):
                found[str(named["name"])] = named.get("value") or ""

    Inputs().feed(page)
    return found


def _live_google_token(google: FakeGoogle, token: str) -> bool:
    found = google.token(token)
    return found is not None and not found.revoked and found.access_token == token


def _vault(backend: str, tmp_path: Path, clock: FakeClock) -> tuple[Vault, dict[str, Any]]:
    if backend == "local":
        return build_vault(make_settings(tmp_path, Signer()), clock=clock), {}
    import boto3  # noqa: PLC0415

    if backend == "secretsmanager":
        client = boto3.client("secretsmanager", region_name=REGION)
        return build_vault(make_settings(tmp_path, Signer(), vault_backend="secretsmanager"), secretsmanager=client), {
            "vault_backend": "secretsmanager"
        }
    from timmybot.accounts.vault.schema import create_token_table  # noqa: PLC0415

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    kms = boto3.client("kms", region_name=REGION)
    create_token_table(dynamodb, TOKEN_TABLE)
    key_arn = kms.create_key(Description="tokens")["KeyMetadata"]["Arn"]
    extra = {"vault_backend": "kms", "token_table": TOKEN_TABLE, "token_key_arn": key_arn}
    settings = make_settings(tmp_path, Signer(), **extra)
    return build_vault(settings, dynamodb=dynamodb, kms=kms, clock=clock), extra


@contextlib.contextmanager
def accounts_api(
    tmp_path: Path,
    *,
    vault_backend: str = "local",
    google_lifetime_s: int = 3600,
    spotify_lifetime_s: int = 3600,
    **overrides: Any,
) -> Iterator[AccountsKit]:
    """Everything in-process except the two fakes, which are real HTTP servers on 127.0.0.1.

    With ``vault_backend`` "secretsmanager" or "kms" the caller must be inside ``mock_aws()``.
    """
    clock = FakeClock()
    signer = Signer()
    with (
        FakeGoogle(access_token_lifetime_s=google_lifetime_s) as google,
        FakeSpotifyAuth(REDIRECT_URI, access_token_lifetime_s=spotify_lifetime_s) as spotify,
        FakeYouTubeApi(accepts=lambda token: _live_google_token(google, token)) as youtube,
    ):
        vault, vault_settings = _vault(vault_backend, tmp_path, clock)
        values = {
            **google.settings(),
            **spotify.settings(),
            "youtube_api_url": youtube.api_url,
            **vault_settings,
            **overrides,
        }
        settings = make_settings(tmp_path, signer, **values)
        store = SQLiteStore(settings.sqlite_path, clock=clock)
        accounts = build_linked_accounts(settings, store, vault, clock=clock)
        services = bootstrap(settings, store=store, accounts=accounts, in_lambda=False)
        with app_services.override(services), Client(app) as client:
            yield AccountsKit(
                client=client,
                signer=signer,
                services=services,
                clock=clock,
                google=google,
                spotify=spotify,
                youtube=youtube,
                vault=vault,
                db_path=Path(settings.sqlite_path),
            )
        store.close()
