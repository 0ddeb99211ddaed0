"""/playlist export's file and what /playlist import accepts.

The file is JSON: ``{"format": "timmybot-playlist", "version": 1, "name": …, "tracks": [{"title",
"artist", "url", "duration_s"}, …]}``. Nothing in an imported file is trusted as a resolved track:
only each entry's ``url`` is used, and it goes through /play's URL policy and resolution like a
link typed into /play (``jobs``). The other fields are shown at most.

An attachment is fetched only from the configured attachment host (Discord's CDN), over https (or
plain http to a named net-guard allowance, for tests), through the network guard, never following
a redirect; its ``size`` is checked against the cap before anything is fetched, and the cap is
enforced again while reading.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from timmybot.errors import InvalidInputError

_log = logging.getLogger(__name__)

FORMAT = "timmybot-playlist"
VERSION = 1
FILENAME_MAX = 60
JSON_DEPTH_MAX = 6  # {file: {tracks: [ {track: value} ]}} and some room
ENTRY_FIELD_MAX = 4096  # characters of one field of one entry

NOT_JSON = "That file isn't a TimmyBot playlist export (JSON with a `tracks` list)."


class AttachmentRefusedError(InvalidInputError):
    pass


def export_document(name: str, tracks: Sequence[dict[str, Any]]) -> bytes:
    """The export file of ``tracks`` (title, artist, URL, duration), UTF-8 JSON."""
    entries = [
        {
            "title": t.get("title"),
            "artist": t.get("artist"),
            "url": t.get("url"),
            "duration_s": t.get("duration_s"),
        }
        for t in tracks
    ]
    document = {"format": FORMAT, "version": VERSION, "name": name, "tracks": entries}
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def export_filename(name: str) -> str:
    """A safe file name for ``name``'s export (ASCII letters, digits, ``-`` and ``_``)."""
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in name).strip("-")
    return f"{(stem or 'playlist')[:FILENAME_MAX]}.json"


def check_attachment(url: str, size: int, *, host: str, max_bytes: int) -> str:
    """``url`` when it may be fetched (the attachment host only, within the size cap), else the
    user's sentence. Nothing is fetched here."""
    if size < 0:
        raise AttachmentRefusedError("I couldn't read that attachment's size, so I won't fetch it.")
    if size > max_bytes:
        raise AttachmentRefusedError(
            f"That file is {_kib(size)}; an imported playlist file can be at most {_kib(max_bytes)}."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AttachmentRefusedError("That attachment's link is malformed.") from None
    authority = (parts.hostname or "").lower() + (f":{port}" if port is not None else "")
    wanted = host.lower()
    plain_ok = ":" in wanted  # a loopback test host named with its port; the guard must allow it too
    if (
        authority != wanted
        or parts.username is not None
        or parts.password is not None
        or parts.scheme not in (("https", "http") if plain_ok else ("https",))
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url)
    ):
        raise AttachmentRefusedError("I only import files uploaded to Discord with the command.")
    return url


def fetch_attachment(url: str, *, max_bytes: int, timeout_s: float = 10.0) -> bytes:
    """The attachment's bytes, through the network guard, refusing more than ``max_bytes``."""
    import urllib.error  # noqa: PLC0415 - urllib.request pulls in ssl and email: only when called
    import urllib.request  # noqa: PLC0415

    from timmybot import netguard  # noqa: PLC0415

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        """The CDN answers where it is asked: a redirect could lead anywhere the guard allows."""

        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    request = urllib.request.Request(url, headers={"User-Agent": "TimmyBot"}, method="GET")  # noqa: S310
    try:
        with netguard.guarded_opener(NoRedirects).open(request, timeout=timeout_s) as answer:
            if answer.status != 200:
                raise AttachmentRefusedError("Discord didn't hand me that file. Upload it again.")
            raw: bytes = answer.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        _log.info("attachment fetch answered HTTP %s", exc.code)
        raise AttachmentRefusedError("Discord didn't hand me that file. Upload it again.") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        _log.warning("attachment fetch failed: %s", type(exc).__name__)
        raise AttachmentRefusedError("I couldn't download that file. Please try again.") from None
    if len(raw) > max_bytes:
        raise AttachmentRefusedError(f"That file is larger than {_kib(max_bytes)}, the most I import.")
    return raw


def parse_document(raw: bytes, *, max_entries: int) -> tuple[list[str], int]:
    """The links of an export file, at most ``max_entries`` (and how many more it listed)."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidInputError(NOT_JSON) from None
    if _depth(document) > JSON_DEPTH_MAX or not isinstance(document, dict):
        raise InvalidInputError(NOT_JSON)
    entries = document.get("tracks")
    if not isinstance(entries, list):
        raise InvalidInputError(NOT_JSON)
    urls: list[str] = []
    for entry in entries:
        url = entry.get("url") if isinstance(entry, dict) else entry if isinstance(entry, str) else None
        if isinstance(url, str) and 0 < len(url) <= ENTRY_FIELD_MAX:
            urls.append(url)
        else:
            urls.append("")  # counted, refused later with the others
    return urls[:max_entries], max(0, len(urls) - max_entries)


def _depth(value: Any, level: int = 1) -> int:
    if level > JSON_DEPTH_MAX:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _kib(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    return f"{max(1, size // 1024)} KiB"
