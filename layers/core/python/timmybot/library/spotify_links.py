"""Spotify links pasted into /play, for the worker only: ``resolve_link`` reads a track, album or
playlist with the app's token (``timmybot.library.spotify``), and ``follow_share_link`` walks a
``spotify.link`` share link to the open.spotify.com link it names, checking every hop.
"""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from timmybot.errors import TrackNotFoundError, UnsupportedUrlError
from timmybot.library.paging import ListWalk
from timmybot.library.spotify import SpotifyClient, SpotifyError

if TYPE_CHECKING:
    from timmybot.models import Track
    from timmybot.sources.models import SourceSettings

_log = logging.getLogger(__name__)

SHARE_REDIRECTS_MAX = 3  # redirects a spotify.link share link may take before it names a track/album/playlist
# Hosts a share link may pass through on its way to open.spotify.com (spotify.link is served by Branch).
SHARE_HOPS = frozenset({"spotify.link", "spotify.app.link"})
SHARE_BODY_MAX = 64 * 1024  # bytes of an HTML answer read for the open.spotify.com link it names
_SHARE_CODE_PATH_RE = re.compile(r"^/[A-Za-z0-9]{4,32}/?$")
_SHARE_KINDS = frozenset({"track", "album", "playlist"})
_OPEN_LINK_RE = re.compile(
    r"https://open\.spotify\.com/(?:intl-[a-zA-Z-]{2,5}/)?(?:track|album|playlist)/[A-Za-z0-9]{22}"
)


def resolve_link(kind: str, spotify_id: str, settings: SourceSettings, walk: ListWalk | None = None) -> list[Track]:
    """/play of a public Spotify link (``kind`` track/album/playlist, or "link": a spotify.link share
    code, followed first), with the app's token. Albums and playlists are walked within ``walk``
    (default: ``playlist_cap`` items, ``list_page_cap`` pages)."""
    client = SpotifyClient.for_app(settings)
    if kind == "link":
        kind, spotify_id = follow_share_link(spotify_id, settings)
    if kind == "track":
        return [client.track(spotify_id)]
    if walk is None:
        walk = ListWalk(item_cap=settings.playlist_cap, page_cap=settings.list_page_cap)
    if kind == "album":
        return client.album_tracks(spotify_id, settings.playlist_cap, walk)
    return client.playlist_tracks(spotify_id, settings.playlist_cap, walk)


# ---------------------------------------------------------------------- spotify.link share links
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follows nothing: each hop's Location is policy-checked before it is requested."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def follow_share_link(code: str, settings: SourceSettings) -> tuple[str, str]:
    """(kind, id) of the open.spotify.com track, album or playlist a ``spotify.link/<code>`` leads to.

    The worker only, never the api's fast path: every request goes through the network guard, at
    most ``SHARE_REDIRECTS_MAX`` redirects are taken, and each ``Location`` is checked before it is
    requested: another share link (``SHARE_HOPS``, or the configured ``spotify_link_url`` itself)
    is followed; an open.spotify.com track, album or playlist link ends the walk unrequested;
    anything else is refused. A share page answered with 200 (Branch's HTML fallback) is read for
    the open.spotify.com link it names, which gets the same check.
    """
    from timmybot import netguard  # noqa: PLC0415 - worker only
    from timmybot.sources.models import QueryKind  # noqa: PLC0415
    from timmybot.sources.policy import classify_url  # noqa: PLC0415

    base = settings.spotify_link_url.rstrip("/")
    opener = netguard.guarded_opener(_NoRedirect)
    url = f"{base}/{code}"
    for _hop in range(SHARE_REDIRECTS_MAX + 1):
        status, location, body = _share_hop(opener, url, settings.socket_timeout_s)
        if location is None and status == 200:
            found = _OPEN_LINK_RE.search(body)
            location = found.group(0) if found else None
        if location is None:
            _log.info("spotify.link share link answered HTTP %s with nowhere to go", status)
            raise TrackNotFoundError("That spotify.link share link leads nowhere: it may have expired.")
        target = urllib.parse.urljoin(url, location)
        if _same_origin(target, base) and _SHARE_CODE_PATH_RE.match(urllib.parse.urlsplit(target).path):
            url = target
            continue
        query = classify_url(target, settings)  # the policy: https, exact hosts, no redirectors...
        kind = query.kind.value.removeprefix("spotify_")
        if query.kind is not QueryKind.SPOTIFY_LINK and kind in _SHARE_KINDS and query.source_id:
            return kind, query.source_id
        host = (urllib.parse.urlsplit(target).hostname or "").lower()
        if query.kind is QueryKind.SPOTIFY_LINK or host in SHARE_HOPS:
            url = target
            continue
        raise UnsupportedUrlError("That spotify.link share link doesn't lead to a Spotify track, album or playlist.")
    raise UnsupportedUrlError("That spotify.link share link redirects too many times for me to follow.")


def _share_hop(opener: Any, url: str, timeout_s: float) -> tuple[int, str | None, str]:
    """One request: (status, its Location or None, at most ``SHARE_BODY_MAX`` bytes of a 200's body)."""
    request = urllib.request.Request(url, headers={"User-Agent": "TimmyBot", "Accept": "text/html"})  # noqa: S310
    try:
        with opener.open(request, timeout=timeout_s) as response:
            raw = response.read(SHARE_BODY_MAX)
            status = int(response.status)
            location = response.headers.get("Location")
    except urllib.error.HTTPError as exc:
        status, location, raw = exc.code, exc.headers.get("Location"), b""
        if status >= 400:
            _log.info("spotify.link share link answered HTTP %s", status)
            if status == 404:
                raise TrackNotFoundError("That spotify.link share link doesn't exist (or has expired).") from None
            raise SpotifyError("spotify.link didn't answer properly. Please try again in a moment.") from None
    except (urllib.error.URLError, OSError) as exc:
        _log.warning("spotify.link unreachable: %s", type(exc).__name__)
        raise SpotifyError("I can't reach spotify.link right now. Please try again in a moment.") from None
    return status, None if location is None else str(location), raw.decode("utf-8", "replace")


def _same_origin(url: str, base: str) -> bool:
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port) and not a.username and not a.password
