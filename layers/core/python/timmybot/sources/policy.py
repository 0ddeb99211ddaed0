"""The /play URL policy: which links we follow at all (the SSRF defence), and query classification.

Rules (BRIEF §9): https only; the host must be EXACTLY one of the allowed names below; no IP literals
in any notation, no user info, no ports, no backslashes, no whitespace/control/non-ASCII characters,
no punycode, no overlong URLs. A trailing-dot host (``youtube.com.``) is REFUSED rather than
normalized: it names the same DNS zone, but refusing keeps the rule "exact match, nothing clever".

Control characters are refused anywhere in the URL (path, query and fragment), raw or
percent-encoded, and also when encoded twice or three times (``%250d`` decodes to ``%0d``, then to CR):
some layer between us and the socket (yt-dlp's URL sanitizer, FFmpeg's URL parser, a proxy) may
decode once more than we expect, and a CR/LF that survives becomes a forged header line.

Redirectors on allowed hosts are refused. An allowed host is only as safe as what it
sends yt-dlp on to, so the rule follows what yt-dlp itself does with these sites:

- YouTube's own redirectors (``/redirect?q=``, ``/attribution_link?u=``, ``/url?q=``, the sign-in,
  consent and interstitial pages with ``continue=`` / ``next=`` / ``next_url=``) answer with a page or
  an HTTP redirect to their parameter. yt-dlp's generic extractor is off, but its YouTube
  extractors match any ``(\\w+\\.)?youtube.com`` path they recognise (``youtube:truncated_url``
  matches ``attribution_link``; ``youtube:consent_redirect`` follows ``continue=``), and every
  extractor's HTTP client follows 3xx answers. So the paths in ``YOUTUBE_REDIRECT_PATHS`` are refused.
- SoundCloud's ``/-/...`` namespace (``/-/redirect?url=``, ``/-/t/click...``) holds its link
  redirectors and never a track: no SoundCloud user can be called "-", but yt-dlp's SoundCloud
  extractor pattern (``[\\w\\d-]+/[\\w\\d-]+``) would take ``-/redirect`` for a track and ask the
  resolve API for it. Its player embeds (``w.soundcloud.com/player?url=``) are a host we don't allow.
- On every allowed host, a query parameter whose value holds a URL (``scheme://``, ``//host``, a
  ``javascript:``-like scheme; plain or percent-encoded up to three times) is refused, and so is a
  parameter named like a redirect target (``q``, ``u``, ``url``, ``continue``, ``next``... see
  ``REDIRECT_PARAMS``) whose value is a path or a host name. None of the links we play carries one:
  their parameters are ids (``v``, ``list``, ``si``), times and tracking tags.

The fragment is dropped on normalization, so yt-dlp never sees its ``#/`` anchor redirects.

Spotify: ``spotify:track:<id>`` / ``spotify:album:<id>`` / ``spotify:playlist:<id>`` URIs become their
``open.spotify.com`` links; ``/intl-xx/`` and ``/intl-xx-YY/`` locale prefixes are accepted (the
region in either case). ``spotify.link/<code>`` share links are classified here WITHOUT any network
(``QueryKind.SPOTIFY_LINK``); the worker follows them (``timmybot.library.spotify_links.follow_share_link``).

The URL is parsed by our own strict splitter and cross-checked against ``urllib.parse``; if the two
disagree on the host, port or user info the URL is refused, so parser-differential tricks
(``https://evil.com#@youtube.com``, ``https://youtube.com\\@evil.com``) cannot pass.

Only with ``SourceSettings.allow_local_media`` (tests and the offline demo) are
``http://<local_media_hosts>:<port>/...`` URLs accepted; they route to the local media source.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qs, parse_qsl, unquote_plus, unquote_to_bytes, urlsplit

from timmybot.errors import InvalidInputError, UnsupportedUrlError

from .models import Query, QueryKind, SourceSettings

YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be"})
SOUNDCLOUD_HOSTS = frozenset({"soundcloud.com", "www.soundcloud.com", "m.soundcloud.com", "on.soundcloud.com"})
SPOTIFY_HOSTS = frozenset({"open.spotify.com"})
# Spotify's share-link hosts: classified offline, followed by the worker only (never on the fast path).
SPOTIFY_SHARE_HOSTS = frozenset({"spotify.link"})
ALLOWED_HOSTS = YOUTUBE_HOSTS | SOUNDCLOUD_HOSTS | SPOTIFY_HOSTS | SPOTIFY_SHARE_HOSTS
# Hosts a STORED track URL may name (SoundCloud sets list some tracks by API URL) but /play may not.
TRACK_ONLY_HOSTS = frozenset({"api.soundcloud.com", "api-v2.soundcloud.com"})

MAX_URL_CHARS = 2048
# Rounds of percent-decoding searched for control characters (``%25250d`` is CR three times encoded).
DECODE_ROUNDS = 3

# First path segments of YouTube's redirectors and interstitials (lower case); see the module docstring.
YOUTUBE_REDIRECT_PATHS = frozenset(
    {
        "redirect",
        "attribution_link",
        "url",
        "signin",
        "signin_prompt",
        "logout",
        "supported_browsers",
        "das_captcha",
        "verify_age",
        "verify_controversy",
        "interstitial",
        "consent",
        "sorry",
        "link",
        "out",
    }
)
# Query parameter names that redirectors read their target from (lower case).
REDIRECT_PARAMS = frozenset(
    {
        "q",
        "u",
        "url",
        "uri",
        "continue",
        "next",
        "next_url",
        "redirect",
        "redirect_uri",
        "redirect_url",
        "redir",
        "return",
        "return_to",
        "returnurl",
        "dest",
        "destination",
        "target",
        "goto",
        "link",
        "to",
        "out",
    }
)
_URL_IN_VALUE_RE = re.compile(r"(?:^\s*[/\\]{2}|:\s*[/\\]{2})")
_VALUE_SCHEME_RE = re.compile(r"^\s*(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)\s*:")
_PATH_OR_HOST_RE = re.compile(r"^(?:[/\\]|[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?:[/:?#]|$))")
_SPOTIFY_URI_RE = re.compile(
    r"^spotify:(?:user:[A-Za-z0-9._\-]{1,64}:)?(?P<kind>track|album|playlist):(?P<id>[A-Za-z0-9]{22})$",
    re.IGNORECASE,
)
_SPOTIFY_SHARE_PATH_RE = re.compile(r"^/(?P<code>[A-Za-z0-9]{4,32})/?$")

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
    r"^/(?:intl-[a-z]{2}(?:-[A-Za-z]{2})?/)?(?P<kind>track|album|playlist)/(?P<id>[A-Za-z0-9]{22})/?$"
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
    if _has_encoded_control(url):
        raise _refuse("That link hides control characters (such as %0d or %00).")

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
    _check_redirectors(host, path_and_query)
    return f"https://{host}{path_and_query}", host, path_and_query


def _decodings(value: str, *, plus: bool = False) -> list[str]:
    """``value`` and its percent-decodings, ``DECODE_ROUNDS`` deep (stops early once stable)."""
    forms = [value]
    for _ in range(DECODE_ROUNDS):
        decoded = unquote_plus(forms[-1]) if plus else unquote_to_bytes(forms[-1]).decode("latin-1")
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    return forms


def _has_encoded_control(url: str) -> bool:
    """A control character (C0 or DEL) in any percent-decoding of ``url``, up to ``DECODE_ROUNDS`` deep."""
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for form in _decodings(url) for ch in form)


def _holds_url(value: str) -> bool:
    """A URL in ``value`` or its decodings: ``://``, a leading ``//``, or a link scheme (``javascript:``)."""
    for form in _decodings(value, plus=True):
        if _URL_IN_VALUE_RE.search(form):
            return True
        scheme = _VALUE_SCHEME_RE.match(form)
        if scheme is not None and scheme.group("scheme").lower() in _URLISH_SCHEMES:
            return True
    return False


def _check_redirectors(host: str, path_and_query: str) -> None:
    """Refuse redirector paths and parameters on an allowed host (the module docstring says why)."""
    path, _, query = path_and_query.partition("?")
    first = unquote_plus(path.lstrip("/").split("/", 1)[0]).lower().rstrip(".")
    if host in YOUTUBE_HOSTS and first.removesuffix(".php") in YOUTUBE_REDIRECT_PATHS:
        raise _refuse("That is a YouTube redirect link, not a video: paste the link it leads to instead.")
    if host in SOUNDCLOUD_HOSTS and first == "-":
        raise _refuse("That is a SoundCloud redirect link, not a track: paste the link it leads to instead.")
    for name, value in parse_qsl(query, keep_blank_values=True):
        key = name.lower()
        if _holds_url(value) or _holds_url(name):
            raise _refuse("That link carries another link inside it, which I don't follow.")
        if key in REDIRECT_PARAMS and any(_PATH_OR_HOST_RE.match(form) for form in _decodings(value, plus=True)):
            raise _refuse("That link carries another link inside it, which I don't follow.")


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

    uri = _SPOTIFY_URI_RE.match(stripped)
    if uri is not None:  # a Spotify URI ("Copy Spotify URI" in the desktop app)
        kind, spotify_id = uri.group("kind").lower(), uri.group("id")
        return classify_url(f"https://open.spotify.com/{kind}/{spotify_id}", settings)
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
    if host in SPOTIFY_SHARE_HOSTS:
        share = _SPOTIFY_SHARE_PATH_RE.match(path_and_query.split("?", 1)[0])
        if share is None:
            raise _refuse("That spotify.link address isn't a share link I can follow.")
        return Query(kind=QueryKind.SPOTIFY_LINK, text=normalized, source_id=share.group("code"))
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
