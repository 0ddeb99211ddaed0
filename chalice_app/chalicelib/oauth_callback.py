"""``GET /oauth/spotify/callback``: the browser comes back from Spotify's consent page.

The state is checked (known, unexpired, unused, the user's newest) and spent, the code is
exchanged with the PKCE verifier, and the tokens are stored for the Discord user the state names.
The answer is a small HTML page saying what happened; it never contains a token, a code or the
state, and it may not be cached, framed or leak its URL through a Referer header.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.bootstrap import Services
from timmybot.errors import TimmyError
from timmybot.oauth.errors import CallbackDeniedError, CodeRejectedError, ProviderUnavailableError, StateError

_log = logging.getLogger(__name__)

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
LINKED_TEXT = "Linked — you can return to Discord."
MISSING_TEXT = "This page only works as the end of a Spotify link. Run /link spotify in Discord to start one."
FAILED_TEXT = "Something went wrong on my side while linking Spotify. Please run /link spotify in Discord again."
MAX_PARAMETER_LENGTH = 2048


@dataclass(frozen=True)
class HtmlPage:
    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))


def handle_spotify_callback(services: Services, query: Mapping[str, str] | None) -> HtmlPage:
    params = query or {}
    state, code, error = params.get("state") or "", params.get("code") or "", params.get("error") or ""
    if any(len(value) > MAX_PARAMETER_LENGTH for value in (state, code, error)):
        return _page(400, "That's not a Spotify link result.", MISSING_TEXT)
    if error:
        _log.info("Spotify consent ended with %s", error if error.isalnum() or "_" in error else "an error")
        return _page(400, "Spotify not linked", CallbackDeniedError().user_message)
    if not state or not code:
        return _page(400, "Spotify not linked", MISSING_TEXT)
    try:
        user_id = services.accounts.finish_spotify_link(state, code)
    except (StateError, CodeRejectedError) as refused:
        _log.info("Spotify callback refused: %s", type(refused).__name__)
        return _page(400, "Spotify not linked", refused.user_message)
    except ProviderUnavailableError as down:
        return _page(502, "Spotify not linked", down.user_message)
    except TimmyError as failed:
        _log.info("Spotify callback failed: %s", type(failed).__name__)
        return _page(500, "Spotify not linked", failed.user_message)
    except Exception:
        _log.exception("the Spotify callback failed")
        return _page(500, "Spotify not linked", FAILED_TEXT)
    _log.info("Spotify linked for user %s", user_id)
    return _page(200, "Spotify linked", LINKED_TEXT)


def _page(status: int, title: str, text: str) -> HtmlPage:
    body = (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>TimmyBot — {html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
        "line-height:1.5}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>\n"
    )
    return HtmlPage(status=status, body=body)
