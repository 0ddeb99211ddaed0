"""``/oauth/spotify/callback``: the browser comes back from Spotify's consent page, then confirms.

``GET ?state&code``: the state is checked (known, unexpired, unused, the user's newest) but the code
is NOT exchanged. The page names the Discord account the link will be bound to (the display name
and @username recorded by /link spotify, HTML-escaped) and carries a form with an explicit Confirm
button, valid for 5 minutes. So a /link spotify link sent to someone else cannot silently bind
their Spotify to the sender: they see whose link it is, and nothing happens unless they confirm.
The code waits in the state record, sealed with the link key, next to the HMAC of a fresh
single-use confirm token.

``POST`` (application/x-www-form-urlencoded, fields ``link`` and ``confirm``): ``link`` is the state
sealed for this form (the page never shows the state itself), ``confirm`` the token. Only then is
the code exchanged, with the PKCE verifier recomputed from the state, and the tokens stored for
the Discord user the state names. A second submit of the same page answers the same success page
and exchanges nothing; a confirm after the deadline answers "That took too long: run /link spotify
again"; a missing, wrong or malformed token is refused.

The answers are small HTML pages; they never contain a token, a code or the state, and they may
not be cached, framed, submitted anywhere but here, or leak their URL through a Referer header.
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from chalicelib.services import Services
from timmybot.accounts.oauth.errors import (
    CallbackDeniedError,
    CodeRejectedError,
    ConfirmRefusedError,
    ProviderUnavailableError,
    StateError,
)
from timmybot.errors import TimmyError
from timmybot.text import loggable

if TYPE_CHECKING:
    from timmybot.accounts.records import SpotifyReview

_log = logging.getLogger(__name__)

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
LINKED_TEXT = "Linked — you can return to Discord."
MISSING_TEXT = "This page only works as the end of a Spotify link. Run /link spotify in Discord to start one."
FAILED_TEXT = "Something went wrong on my side while linking Spotify. Please run /link spotify in Discord again."
MAX_PARAMETER_LENGTH = 2048
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,40}")  # RFC 6749 §4.1.2.1: access_denied, server_error...
MAX_FORM_BYTES = 4096
FORM_FIELDS = ("link", "confirm")  # what only the POST takes: a GET carrying them is refused
DEFAULT_ACTION = "callback"  # relative to .../oauth/spotify/callback when no redirect URI is set


@dataclass(frozen=True)
class HtmlPage:
    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))


def handle_spotify_callback(services: Services, query: Mapping[str, str] | None) -> HtmlPage:
    """The GET: check the state and show whose Discord account the approval would link."""
    params = query or {}
    if any(name in params for name in FORM_FIELDS):
        return _page(400, "That's not a Spotify link result.", MISSING_TEXT)
    state, code, error = params.get("state") or "", params.get("code") or "", params.get("error") or ""
    if any(len(value) > MAX_PARAMETER_LENGTH or not value.isascii() for value in (state, code, error)):
        return _page(400, "That's not a Spotify link result.", MISSING_TEXT)
    if error:
        # The value comes from anyone's browser: only an OAuth error code is written as it is.
        _log.info("Spotify consent ended with %s", error if _OAUTH_ERROR_CODE.fullmatch(error) else loggable(error))
        return _page(400, "Spotify not linked", CallbackDeniedError().user_message)
    if not state or not code:
        return _page(400, "Spotify not linked", MISSING_TEXT)
    try:
        review = services.accounts.review_spotify_link(state, code)
    except StateError as refused:
        _log.info("Spotify callback refused: %s", type(refused).__name__)
        return _page(400, "Spotify not linked", refused.user_message)
    except TimmyError as failed:
        _log.info("Spotify callback failed: %s", type(failed).__name__)
        return _page(500, "Spotify not linked", failed.user_message)
    except Exception:
        _log.exception("the Spotify callback failed")
        return _page(500, "Spotify not linked", FAILED_TEXT)
    return _confirm_page(review, action=_action(services))


def handle_spotify_confirm(services: Services, raw_body: bytes | str | None) -> HtmlPage:
    """The POST of the confirm form: only now is the code exchanged and the account linked."""
    form = _form(raw_body)
    if form is None:
        return _page(400, "Spotify not linked", ConfirmRefusedError().user_message)
    try:
        user_id = services.accounts.confirm_spotify_link(form["link"], form["confirm"])
    except ConfirmRefusedError as refused:
        _log.info("Spotify confirm refused: %s", type(refused).__name__)
        return _page(403, "Spotify not linked", refused.user_message)
    except (StateError, CodeRejectedError) as refused:
        _log.info("Spotify confirm refused: %s", type(refused).__name__)
        return _page(400, "Spotify not linked", refused.user_message)
    except ProviderUnavailableError as down:
        return _page(502, "Spotify not linked", down.user_message)
    except TimmyError as failed:
        _log.info("Spotify confirm failed: %s", type(failed).__name__)
        return _page(500, "Spotify not linked", failed.user_message)
    except Exception:
        _log.exception("the Spotify confirm failed")
        return _page(500, "Spotify not linked", FAILED_TEXT)
    _log.info("Spotify linked for user %s", user_id)
    return _page(200, "Spotify linked", LINKED_TEXT)


def _form(raw_body: bytes | str | None) -> dict[str, str] | None:
    """The confirm form's two fields, each exactly once, short and ASCII; None for anything else."""
    raw = raw_body.encode("utf-8") if isinstance(raw_body, str) else (raw_body or b"")
    if not raw or len(raw) > MAX_FORM_BYTES:
        return None
    try:
        fields = parse_qs(raw.decode("ascii"), keep_blank_values=True, max_num_fields=len(FORM_FIELDS) + 2)
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name in FORM_FIELDS:
        values = fields.get(name, [])
        if len(values) != 1 or not values[0] or len(values[0]) > MAX_PARAMETER_LENGTH or not values[0].isascii():
            return None
        form[name] = values[0]
    return form


def _action(services: Services) -> str:
    """Where the form posts: the callback's own path, as registered at Spotify (API Gateway's stage included)."""
    path = urlsplit(services.settings.spotify_redirect_uri).path
    return path or DEFAULT_ACTION


def _confirm_page(review: SpotifyReview, *, action: str) -> HtmlPage:
    account = review.account
    who = html.escape(account.display_name or account.username)
    handle = html.escape(account.username)
    named = f"{who} (@{handle})" if handle else who
    minutes = max(1, math.floor(review.confirm_within_s / 60))
    inner = (
        f"<p>Your Spotify account will be linked to the Discord account {named}.</p>"
        "<p>If that is not your Discord account, close this page: nothing is linked unless you confirm. "
        "Nobody needs your approval for their own link.</p>"
        f"<p>Confirm within {minutes} minute{'s' if minutes != 1 else ''}.</p>"
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="link" value="{html.escape(review.sealed_state)}">'
        f'<input type="hidden" name="confirm" value="{html.escape(review.confirm_token)}">'
        '<button type="submit">Confirm and link Spotify</button></form>'
    )
    return HtmlPage(status=200, body=_document("Confirm the Spotify link", inner))


def _page(status: int, title: str, text: str) -> HtmlPage:
    return HtmlPage(status=status, body=_document(title, f"<p>{html.escape(text)}</p>"))


def _document(title: str, inner_html: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>TimmyBot — {html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
        "line-height:1.5}button{font-size:1rem;padding:.5rem 1rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{inner_html}</body></html>\n"
    )
