"""A loopback stand-in for YouTube's public suggestion endpoint (``/complete/search``).

It answers ``?client=firefox&ds=yt&hl=<lang>&q=<prefix>`` as the real one does: a JSON array
``[prefix, [suggestion, ...], [], {...}]`` encoded in the charset of ``hl`` (ISO-8859-1 for ``de``,
as the real endpoint does for several languages; UTF-8 otherwise), named in the Content-Type.

``mode``: "working"; "failing" (HTTP 500); "slow" — the request is held until ``release`` is set
(and ``on_request`` runs first, so a test can move its injected clock past the budget while the
request is in flight). ``requests`` lists the prefixes asked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import LoopbackHttp

LATIN1_LANGUAGES = frozenset({"de", "fr", "es", "pt"})


@dataclass
class FakeSuggestions:
    answers: dict[str, list[str]] = field(default_factory=dict)
    mode: str = "working"
    requests: list[str] = field(default_factory=list)
    on_request: Callable[[], None] | None = None
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._http: LoopbackHttp | None = None

    @property
    def url(self) -> str:
        assert self._http is not None, "start the fake first"
        return f"{self._http.origin}/complete/search"

    def __enter__(self) -> FakeSuggestions:
        self._http = LoopbackHttp("fake-suggest", get=self._get).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        if self._http is not None:
            self._http.stop()

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != "/complete/search" or query.get("client") != "firefox" or query.get("ds") != "yt":
            handler.send_error(404)
            return
        prefix = query.get("q", "")
        self.requests.append(prefix)
        if self.on_request is not None:
            self.on_request()
        if self.mode == "failing":
            handler.send_error(500, "Internal Server Error")
            return
        if self.mode == "slow":
            self.release.wait(30)
        language = query.get("hl", "en")
        charset = "ISO-8859-1" if language in LATIN1_LANGUAGES else "UTF-8"
        suggestions = self.answers.get(prefix.casefold(), [])
        body = json.dumps([prefix, suggestions, [], {"google:suggestsubtypes": []}], ensure_ascii=False)
        raw = body.encode(charset, errors="replace")
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", f"text/javascript; charset={charset}")
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
        except OSError:  # the client stopped waiting (a cancelled request)
            return
