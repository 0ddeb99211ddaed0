"""The query-suggestion port: what a partly typed /play query may become (autocomplete).

A ``SuggestionSource`` answers a prefix with a few completed queries, or raises
``SuggestionError``. The one adapter, ``YouTubeSuggestions``, asks YouTube's public suggestion
endpoint (``suggest_url``; unofficial: no key, no SLA) through the network guard. That endpoint
answers in the charset of its ``hl`` parameter (ISO-8859-1 for some languages, not always UTF-8),
so the body is decoded by the charset its Content-Type names. Everything is bounded: the body read
(64 KiB), the suggestions kept (10) and their length (100, Discord's limit for a choice).

Light on purpose: the autocomplete path imports it, so urllib is imported only when a call is made.
"""

from __future__ import annotations

import abc
import json
import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from timmybot.config import Settings

_log = logging.getLogger(__name__)

BODY_MAX = 64 * 1024
READ_CHUNK = 8 * 1024
SUGGESTIONS_MAX = 10
SUGGESTION_MAX_CHARS = 100


class SuggestionError(Exception):
    """The source did not answer usefully (an HTTP error, a timeout, a body we cannot read)."""


class SuggestionSource(abc.ABC):
    """Completed queries for a prefix, best first."""

    #: The name the cache keys carry (a change of source never reads another's cache).
    name: str = ""

    @abc.abstractmethod
    def suggest(self, prefix: str, *, timeout_s: float, cancelled: threading.Event) -> list[str]:
        """At most ``SUGGESTIONS_MAX`` suggestions; within ``timeout_s`` per network wait. When
        ``cancelled`` is set the caller has stopped waiting: stop as soon as possible.
        Raises ``SuggestionError``."""


class YouTubeSuggestions(SuggestionSource):
    name = "youtube"

    def __init__(self, url: str, *, language: str = "en") -> None:
        self._url = url
        self._language = language

    def request_url(self, prefix: str) -> str:
        query = urlencode({"client": "firefox", "ds": "yt", "hl": self._language, "q": prefix})
        return f"{self._url}?{query}"

    def suggest(self, prefix: str, *, timeout_s: float, cancelled: threading.Event) -> list[str]:
        import urllib.error  # noqa: PLC0415 - urllib pulls in ssl and email: only when a call is made
        import urllib.request  # noqa: PLC0415

        from timmybot import netguard  # noqa: PLC0415

        if cancelled.is_set():
            return []
        url = self.request_url(prefix)  # suggest_url is configuration (http or https, validated)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310

        class NoRedirects(urllib.request.HTTPRedirectHandler):
            """Suggestions never redirect; following one could lead anywhere the guard allows."""

            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = netguard.guarded_opener(NoRedirects)
        try:
            with opener.open(request, timeout=max(0.01, timeout_s)) as response:
                charset = response.headers.get_content_charset() or "utf-8"
                raw = b""
                while len(raw) <= BODY_MAX:  # a chunk at a time, so a drip-fed body stops on cancel
                    if cancelled.is_set():
                        return []
                    chunk = response.read1(READ_CHUNK)
                    if not chunk:
                        break
                    raw += chunk
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SuggestionError(type(exc).__name__) from None
        if len(raw) > BODY_MAX:
            raise SuggestionError("body too large")
        return parse_answer(raw, charset)


def parse_answer(raw: bytes, charset: str) -> list[str]:
    """``["prefix", ["suggestion", ...], ...]`` in ``charset`` → the suggestions, bounded."""
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know: UTF-8 is the endpoint's usual one
        text = raw.decode("utf-8", errors="replace")
    try:
        document: Any = json.loads(text)
    except ValueError:
        raise SuggestionError("not JSON") from None
    if not isinstance(document, list) or len(document) < 2 or not isinstance(document[1], list):
        raise SuggestionError("unexpected shape")
    out: list[str] = []
    for item in document[1]:
        value = item[0] if isinstance(item, list) and item else item  # some clients nest [text, type]
        if isinstance(value, str):
            cleaned = " ".join(value.split())
            if cleaned and len(cleaned) <= SUGGESTION_MAX_CHARS:
                out.append(cleaned)
        if len(out) >= SUGGESTIONS_MAX:
            break
    return out


def suggestion_source(settings: Settings) -> SuggestionSource | None:
    """The configured source, or None when suggestions are off."""
    if settings.suggest_source == "off":
        return None
    return YouTubeSuggestions(settings.suggest_url, language=settings.suggest_language)
