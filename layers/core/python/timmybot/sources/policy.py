"""The /play URL policy: which links we follow at all (the SSRF defence), and query classification.

Rules (BRIEF §9): https only; the host must be EXACTLY one of the allowed names below; no IP literals
in any notation, no user info, no ports, no backslashes, no whitespace/control/non-ASCII characters,
no punycode, no overlong URLs. A trailing-dot host (``youtube.com.``) is REFUSED rather than
normalized: it names the same DNS zone, but refusing keeps the rule "exact match, nothing clever".

The URL is parsed by our own strict splitter and cross-checked against ``urllib.parse``; if the two
disagree on the host, port or user info the URL is refused, so parser-differential tricks
(``https://evil.com#@youtube.com``, ``https://youtube.com\\@evil.com``) cannot pass.

Only with ``SourceSettings.allow_local_media`` (tests and the offline demo) are
``http://<local_media_hosts>:<port>/...`` URLs accepted; they route to the local media source.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qs, urlsplit

from timmybot.errors import InvalidInputError, UnsupportedUrlError

from .models import Query, QueryKind, SourceSettings

YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be"})
SOUNDCLOUD_HOSTS = frozenset({"soundcloud.com", "www.soundcloud.com", "m.soundcloud.com", "on.soundcloud.com"})
SPOTIFY_HOSTS = frozenset({"open.spotify.com"})
ALLOWED_HOSTS = YOUTUBE_HOSTS | SOUNDCLOUD_HOSTS | SPOTIFY_HOSTS
# Hosts a STORED track URL may name (SoundCloud sets list some tracks by API URL) but /play may not.
TRACK_ONLY_HOSTS = frozenset({"api.soundcloud.com", "api-v2.soundcloud.com"})

MAX_URL_CHARS = 2048

_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):(?P<rest>.*)$", re.DOTALL)
# Input that is plainly meant as a link even though it has no "scheme://".
_URLISH_SCHEMES = frozenset(
    {
        "http",
        "https",
        "file",
        "ftp",
        "ftps",
        "sftp",
        "data",
        "javascript",
        "vbscript",
        "gopher",
        "dict",
        "ldap",
        "tftp",
        "smb",
        "ws",
        "wss",
        "about",
        "blob",
        "view-source",
        "mailto",
        "spotify",
        "jar",
    }
)
_BARE_HOST_RE = re.compile(r"^[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+/")
_NUMERIC_HOST_RE = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?$")
_SPOTIFY_PATH_RE = re.compile(
    r"^/(?:intl-[a-z]{2}(?:-[a-z]{2})?/)?(?P<kind>track|album|playlist)/(?P<id>[A-Za-z0-9]{22})/?$"
)
_YOUTUBE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YOUTUBE_PATH_ID_RE = re.compile(r"^/(?:shorts|live|embed|v)/(?P<id>[A-Za-z0-9_-]{11})/?$")

_SPOTIFY_KINDS = {
    "track": QueryKind.SPOTIFY_TRACK,
    "album": QueryKind.SPOTIFY_ALBUM,
    "playlist": QueryKind.SPOTIFY_PLAYLIST,
}


def _refuse(reason: str) -> UnsupportedUrlError:
    return UnsupportedUrlError(f"{reason} {UnsupportedUrlError.user_message}")


def check_url(url: str, settings: SourceSettings) -> str:
    """Return the normalized URL if policy allows it, else raise ``UnsupportedUrlError``.

    Normalization: scheme and host lower-cased, the fragment dropped, an empty path becomes ``/``.
    """
    return _check(url, settings)[0]


def check_track_url(url: str, settings: SourceSettings) -> str:
    """Policy for a stored ``Track.url`` re-resolved at play time: /play's hosts plus SoundCloud's API."""
    return _check(url, settings, extra_hosts=TRACK_ONLY_HOSTS)[0]


def _check(url: str, settings: SourceSettings, *, extra_hosts: frozenset[str] = frozenset()) -> tuple[str, str, str]:
    """Policy-check ``url``; return (normalized url, host, path-and-query)."""
    if len(url) > MAX_URL_CHARS:
        raise _refuse(f"That link is too long (more than {MAX_URL_CHARS} characters).")
    if any(not (0x21 <= ord(ch) <= 0x7E) for ch in url):
        raise _refuse("That link contains spaces or characters I can't accept.")
    if "\\" in url:
        raise _refuse("That link contains a backslash.")

    match = _SCHEME_RE.match(url)
    if match is None or not match.group("rest").startswith("//"):
        raise _refuse("That isn't a web link I can follow.")
    scheme = match.group("scheme").lower()
    rest = match.group("rest")[2:]
    cut = len(rest)
    for delimiter in "/?#":
        position = rest.find(delimiter)
        if position != -1:
            cut = min(cut, position)
    authority, tail = rest[:cut], rest[cut:]
    path_and_query = tail.split("#", 1)[0] or "/"
    if not path_and_query.startswith("/"):
        path_and_query = "/" + path_and_query

    if "@" in authority:
        raise _refuse("Links with a user name or password are not accepted.")
    if not authority:
        raise _refuse("That link has no site name.")

    if scheme == "http" and settings.allow_local_media:
        return _check_local(authority, path_and_query, url, settings)
    if scheme != "https":
        raise _refuse("Only https links are accepted.")

    if authority.startswith("["):
        raise _refuse("Links to IP addresses are not accepted.")
    if ":" in authority:
        raise _refuse("Links with a port number are not accepted.")
    host = authority.lower()
    if _NUMERIC_HOST_RE.match(host):
        raise _refuse("Links to IP addresses are not accepted.")
    if host.endswith("."):
        raise _refuse("That site name ends with a dot; please paste the link without it.")
    if host.startswith("xn--") or ".xn--" in host:
        raise _refuse("Internationalized (punycode) site names are not accepted.")
    if host not in ALLOWED_HOSTS and host not in extra_hosts:
        raise _refuse("That site is not supported.")

    _cross_check(url, host, expect_port=None)
    return f"https://{host}{path_and_query}", host, path_and_query


def _check_local(authority: str, path_and_query: str, url: str, settings: SourceSettings) -> tuple[str, str, str]:
    host, _, port_text = authority.partition(":")
    host = host.lower()
    if host not in settings.local_media_hosts:
        raise _refuse("Only https links are accepted.")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _refuse("A local media link needs an explicit port.")
    port = int(port_text)
    _cross_check(url, host, expect_port=port)
    return f"http://{host}:{port}{path_and_query}", host, path_and_query


def _cross_check(url: str, host: str, *, expect_port: int | None) -> None:
    """Refuse when urllib's reading of the URL differs from ours (parser differentials)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refuse("That link is malformed.") from exc
    if parts.hostname != host or port != expect_port or parts.username is not None or parts.password is not None:
        raise _refuse("That link is malformed.")


def classify_query(text: str, settings: SourceSettings) -> Query:
    """Turn a /play argument into a policy-checked ``Query`` (a search or an allowed link)."""
    stripped = text.strip()
    if not stripped:
        raise InvalidInputError("Tell me what to play: search words or a YouTube/SoundCloud/Spotify link.")
    if len(stripped) > settings.max_query_chars:
        raise InvalidInputError(
            f"That's too long: a search or link can be at most {settings.max_query_chars} characters."
        )
    if any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in stripped):
        raise InvalidInputError("That contains control characters; please type plain text or a link.")

    if _looks_like_url(stripped):
        candidate = stripped if ("://" in stripped or _SCHEME_RE.match(stripped)) else "https://" + stripped
        if candidate.startswith("//"):
            candidate = "https:" + candidate
        return classify_url(candidate, settings)
    return Query(kind=QueryKind.SEARCH, text=" ".join(stripped.split()))


def classify_url(url: str, settings: SourceSettings) -> Query:
    """Policy-check a URL and say which source handles it."""
    normalized, host, path_and_query = _check(url, settings)
    if normalized.startswith("http://"):
        return Query(kind=QueryKind.LOCAL, text=normalized, source_id=path_and_query.split("?", 1)[0])
    if host in SPOTIFY_HOSTS:
        path = path_and_query.split("?", 1)[0]
        match = _SPOTIFY_PATH_RE.match(path)
        if match is None:
            raise _refuse("I can play Spotify track, album and playlist links only.")
        return Query(kind=_SPOTIFY_KINDS[match.group("kind")], text=normalized, source_id=match.group("id"))
    if host in SOUNDCLOUD_HOSTS:
        return Query(kind=QueryKind.SOUNDCLOUD, text=normalized)
    return Query(kind=QueryKind.YOUTUBE, text=normalized, source_id=youtube_video_id(normalized))


def youtube_video_id(url: str) -> str | None:
    """The video id of a single-video YouTube link (``watch?v=``, ``youtu.be/``, ``shorts/``...), else None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "youtu.be":
        candidate = parts.path.strip("/")
        return candidate if _YOUTUBE_ID_RE.match(candidate) else None
    if host not in YOUTUBE_HOSTS:
        return None
    if parts.path.rstrip("/") == "/watch":
        values = parse_qs(parts.query).get("v")
        if values and _YOUTUBE_ID_RE.match(values[0]):
            return values[0]
        return None
    match = _YOUTUBE_PATH_ID_RE.match(parts.path)
    return match.group("id") if match else None


def _looks_like_url(text: str) -> bool:
    if any(ch.isspace() for ch in text):
        return False
    if "://" in text or text.startswith("//"):
        return True
    match = _SCHEME_RE.match(text)
    if match is not None and match.group("scheme").lower() in _URLISH_SCHEMES:
        return True
    return _BARE_HOST_RE.match(text) is not None
