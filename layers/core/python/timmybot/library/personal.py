"""Personal music: a user's playlists and liked songs, play history, recommendations and autoplay.

Plain functions and one small service (``Library``) over ports: the store, the linked-account
tokens (``TokenSource``: ``LinkedAccounts.access_token``), the Spotify and YouTube Data API clients,
and the source chain (``mix_for``). Nothing here talks to Discord.

Its records (``timmybot.store.keys`` has their keys and lifetimes; /forget-me deletes the per-user
ones with the rest of the user's data):

    play history   the last ``HISTORY_MAX`` tracks the bot queued for the user (every user, linked or not)
    playlist menu  what /my-playlists listed, for its page buttons (15 min)
    history list   what /play-history showed, for its re-queue buttons (15 min)

A guild's last queued track (the "guild's last personal list" record) seeds /recommendations for
users with no history of their own. Recommendations and autoplay are YouTube mixes (``list=RD<videoId>``): they
need no linked account; Spotify's recommendation endpoints are closed to new apps.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from timmybot import text
from timmybot.errors import InvalidInputError, TimmyError
from timmybot.library.paging import ListWalk
from timmybot.models import Track, source_label
from timmybot.store.keys import GUILD_LAST_SK, HISTORY_SK, HISTORY_VIEW_SK, PLAYLISTS_SK, guild_last_pk, user_pk

if TYPE_CHECKING:
    from timmybot.accounts.vault.base import Platform
    from timmybot.config import Settings
    from timmybot.library.spotify import SpotifyClient
    from timmybot.library.youtube_data import YouTubeDataClient
    from timmybot.sources.chain import SourceChain
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

PLATFORMS = ("youtube", "spotify")
PLATFORM_LABELS = {"youtube": "YouTube", "spotify": "Spotify"}
HISTORY_MAX = 50
LIKED_MAX = 50
PLAYLISTS_MAX = 200  # listed in the menu (8 pages of 25)
MIX_SIZE = 10  # tracks /recommendations queues
AUTOPLAY_BATCH = 1  # tracks autoplay queues each time the queue runs out
VIEW_TTL_S = 15 * 60  # interaction tokens live 15 minutes; so do the lists behind their buttons


class TokenSource(Protocol):
    """``timmybot.accounts.LinkedAccounts``: a fresh access token, or None when not linked."""

    def access_token(self, user_id: str, platform: Platform) -> str | None: ...


class NotLinkedError(TimmyError):
    """The user has not linked the platform (or none of them); the sentence names /link."""

    def __init__(self, platforms: Sequence[str]) -> None:
        self.platforms = tuple(platforms)
        if len(self.platforms) == 1:
            platform = self.platforms[0]
            text = (
                f"You haven't linked your {PLATFORM_LABELS[platform]} account. "
                f"Run `/link {platform}` first, then try again."
            )
        else:
            text = "You haven't linked a music account. Run `/link youtube` or `/link spotify` first, then try again."
        super().__init__(text)


class NoSeedError(TimmyError):
    user_message = "I don't know what you like yet: /play something first, then ask again."


def check_platform(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in PLATFORMS:
        raise InvalidInputError("The platform must be `youtube` or `spotify`.")
    return value


# ---------------------------------------------------------------------- playlists and libraries
@dataclass(frozen=True, slots=True)
class PlaylistRef:
    """One of a user's playlists: what the menu shows and what a choice names."""

    platform: str
    id: str
    name: str
    total: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", text.cap(self.name))  # a user's own words: stored capped

    @property
    def label(self) -> str:
        return PLATFORM_LABELS.get(self.platform, self.platform)

    def to_dict(self) -> dict[str, Any]:
        return {"p": self.platform, "id": self.id, "n": self.name, "t": self.total}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlaylistRef:
        total = data.get("t")
        return cls(
            platform=str(data["p"]),
            id=str(data["id"]),
            name=str(data["n"]),
            total=None if total is None else int(total),
        )


SpotifyFactory = Callable[[str], "SpotifyClient"]
YouTubeFactory = Callable[[str], "YouTubeDataClient"]


@dataclass
class Library:
    """A user's music on the platforms they linked, read with their own tokens."""

    accounts: TokenSource
    settings: Settings
    spotify_factory: SpotifyFactory | None = None
    youtube_factory: YouTubeFactory | None = None

    def linked(self, user_id: str) -> dict[str, str]:
        """Platform → access token, for each platform the user linked."""
        tokens: dict[str, str] = {}
        for platform in PLATFORMS:
            token = self.access_token(user_id, platform)
            if token:
                tokens[platform] = token
        return tokens

    def access_token(self, user_id: str, platform: str) -> str | None:
        """The user's token for ``platform`` ("youtube" / "spotify"), refreshed as needed; None if not linked."""
        from timmybot.accounts.vault.base import Platform  # noqa: PLC0415 - plain enum

        return self.accounts.access_token(user_id, Platform(platform))

    def token(self, user_id: str, platform: str) -> str:
        token = self.access_token(user_id, platform)
        if not token:
            raise NotLinkedError([platform])
        return token

    def playlists(self, user_id: str) -> list[PlaylistRef]:
        """YouTube then Spotify playlists of every linked platform (NotLinkedError if none)."""
        tokens = self.linked(user_id)
        if not tokens:
            raise NotLinkedError(PLATFORMS)
        found: list[PlaylistRef] = []
        if "youtube" in tokens:
            found += [
                PlaylistRef("youtube", p.id, p.name, p.total)
                for p in self._youtube(tokens["youtube"]).playlists(PLAYLISTS_MAX, self.walk(PLAYLISTS_MAX))
            ]
        if "spotify" in tokens:
            found += [
                PlaylistRef("spotify", p.id, p.name, p.total)
                for p in self._spotify(tokens["spotify"]).playlists(PLAYLISTS_MAX, self.walk(PLAYLISTS_MAX))
            ]
        return found[:PLAYLISTS_MAX]

    def walk(self, cap: int) -> ListWalk:
        """A walk of at most ``cap`` items and the configured page cap (``list_page_cap``)."""
        return ListWalk(item_cap=cap, page_cap=self.settings.list_page_cap)

    def playlist_pages(
        self, user_id: str, platform: str, playlist_id: str, cap: int, walk: ListWalk | None = None
    ) -> Iterator[list[Track]]:
        """A playlist's tracks page by page, within ``walk`` (default: ``cap`` items, the page cap)."""
        token = self.token(user_id, platform)
        walk = walk if walk is not None else self.walk(cap)
        if platform == "youtube":
            return self._youtube(token).playlist_pages(playlist_id, cap, walk)
        return self._spotify(token).playlist_pages(playlist_id, cap, walk)

    def liked(
        self, user_id: str, platform: str | None, cap: int = LIKED_MAX, walk: ListWalk | None = None
    ) -> tuple[str, list[Track]]:
        """(platform, tracks): YouTube liked videos or Spotify saved tracks, up to ``cap`` (within ``walk``).

        Without ``platform``: the one the user linked; Spotify when both are linked.
        """
        if platform is None:
            tokens = self.linked(user_id)
            if not tokens:
                raise NotLinkedError(PLATFORMS)
            platform = "spotify" if "spotify" in tokens else "youtube"
            token = tokens[platform]
        else:
            token = self.token(user_id, platform)
        walk = walk if walk is not None else self.walk(cap)
        if platform == "youtube":
            return platform, self._youtube(token).liked(cap, walk)
        return platform, self._spotify(token).saved_tracks(cap, walk)

    def recently_played(self, user_id: str, cap: int = HISTORY_MAX) -> list[Track]:
        """Spotify's recently played tracks, or [] when Spotify is not linked."""
        token = self.access_token(user_id, "spotify")
        return self._spotify(token).recently_played(cap) if token else []

    def _spotify(self, token: str) -> SpotifyClient:
        if self.spotify_factory is not None:
            return self.spotify_factory(token)
        from timmybot.library.spotify import SpotifyClient  # noqa: PLC0415 - worker only

        return SpotifyClient(
            token, api_url=self.settings.spotify_api_url, timeout_s=self.settings.source_socket_timeout_s
        )

    def _youtube(self, token: str) -> YouTubeDataClient:
        if self.youtube_factory is not None:
            return self.youtube_factory(token)
        from timmybot.library.youtube_data import YouTubeDataClient  # noqa: PLC0415 - worker only

        return YouTubeDataClient(
            token, api_url=self.settings.youtube_api_url, timeout_s=self.settings.source_socket_timeout_s
        )


# ---------------------------------------------------------------------- listings behind buttons
def save_playlists(store: Store, user_id: str, playlists: Sequence[PlaylistRef]) -> None:
    data = {"items": [p.to_dict() for p in playlists]}
    store.update_record(user_pk(user_id), PLAYLISTS_SK, lambda _current: data, ttl_s=VIEW_TTL_S)


def saved_playlists(store: Store, user_id: str) -> list[PlaylistRef] | None:
    """What /my-playlists last listed for the user, or None once it expired."""
    record = store.get_record(user_pk(user_id), PLAYLISTS_SK)
    if record is None:
        return None
    return [PlaylistRef.from_dict(item) for item in record.get("items") or () if isinstance(item, dict)]


def save_history_view(store: Store, user_id: str, tracks: Sequence[Track]) -> None:
    data = {"items": [t.to_dict() for t in tracks]}
    store.update_record(user_pk(user_id), HISTORY_VIEW_SK, lambda _current: data, ttl_s=VIEW_TTL_S)


def history_view_track(store: Store, user_id: str, index: int, digest: str) -> Track | None:
    """The track behind a /play-history button: the shown list's ``index``, checked by its digest."""
    record = store.get_record(user_pk(user_id), HISTORY_VIEW_SK)
    if record is None:
        return None
    tracks = [Track.from_dict(item) for item in record.get("items") or () if isinstance(item, dict)]
    if 0 <= index < len(tracks) and track_digest(tracks[index]) == digest:
        return tracks[index]
    return next((t for t in tracks if track_digest(t) == digest), None)


def track_digest(track: Track) -> str:
    """8 hex characters naming a track in a button (not a secret; a staleness check)."""
    return hashlib.sha256(f"{track.source}\x00{track.source_id}".encode()).hexdigest()[:8]


# ---------------------------------------------------------------------- play history
def record_history(store: Store, user_id: str, tracks: Sequence[Track], now: float) -> None:
    """Put ``tracks`` at the front of the user's history (newest first, no repeats, last 50)."""
    if not tracks or not user_id.isdigit():
        return
    added = [{"track": t.to_dict(), "at": now} for t in reversed(tracks[-HISTORY_MAX:])]
    keys = {(t.source, t.source_id) for t in tracks}

    def change(current: dict[str, Any] | None) -> dict[str, Any]:
        items = list((current or {}).get("items") or ())
        kept = [
            item
            for item in items
            if isinstance(item, dict)
            and isinstance(item.get("track"), dict)
            and (item["track"].get("source"), item["track"].get("source_id")) not in keys
        ]
        return {"items": (added + kept)[:HISTORY_MAX]}

    store.update_record(user_pk(user_id), HISTORY_SK, change)


def history(store: Store, user_id: str) -> list[Track]:
    """The tracks the bot queued for the user, newest first."""
    record = store.get_record(user_pk(user_id), HISTORY_SK)
    tracks: list[Track] = []
    for item in (record or {}).get("items") or ():
        try:
            tracks.append(Track.from_dict(item["track"]))
        except (KeyError, TypeError, ValueError):
            _log.warning("skipping a malformed history item of user %s", user_id)
    return tracks


def combined_history(own: Sequence[Track], spotify_recent: Sequence[Track], limit: int) -> list[Track]:
    """The bot's history, then Spotify's recently played, without repeats, at most ``limit``."""
    seen: set[tuple[str, str]] = set()
    merged: list[Track] = []
    for track in (*own, *spotify_recent):
        if track.cache_key in seen:
            continue
        seen.add(track.cache_key)
        merged.append(track)
        if len(merged) >= limit:
            break
    return merged


def remember_guild_track(store: Store, guild_id: str, track: Track, now: float) -> None:
    data = {"track": track.to_dict(), "at": now}
    store.update_record(guild_last_pk(guild_id), GUILD_LAST_SK, lambda _current: data)


def guild_last_track(store: Store, guild_id: str) -> Track | None:
    record = store.get_guild(guild_id)
    if record.actual.now_playing is not None:
        if record.actual.now_playing.track.identified:
            return record.actual.now_playing.track
        _log.warning("now playing of guild %s is malformed", guild_id)
    last = store.get_record(guild_last_pk(guild_id), GUILD_LAST_SK)
    if last is None or not isinstance(last.get("track"), dict):
        return None
    return Track.from_dict(last["track"])


# ---------------------------------------------------------------------- recommendations and autoplay
def mix_seed(store: Store, user_id: str, guild_id: str) -> Track:
    """The user's last queued track, else the guild's (playing or last queued)."""
    own = history(store, user_id)
    if own:
        return own[0]
    seed = guild_last_track(store, guild_id)
    if seed is None:
        raise NoSeedError()
    return seed


def recommendations(
    seed: Track, sources: SourceChain, *, limit: int = MIX_SIZE, guild_id: str | None = None
) -> list[Track]:
    """Tracks of the YouTube mix seeded by ``seed`` (works without any linked account), for ``guild_id``."""
    from timmybot.sources import mix_for  # noqa: PLC0415 - the chain builds its sources lazily

    return mix_for(seed, sources, limit=limit, guild_id=guild_id)


def autoplay_tracks(
    seed: Track,
    sources: SourceChain,
    *,
    exclude: Collection[tuple[str, str]] = (),
    limit: int = AUTOPLAY_BATCH,
    guild_id: str | None = None,
) -> list[Track]:
    """The next ``limit`` tracks of the seed's mix that were not played lately (``exclude``: cache keys)."""
    candidates = recommendations(seed, sources, limit=limit + len(exclude) + 1, guild_id=guild_id)
    fresh = [t for t in candidates if t.cache_key not in exclude and t.cache_key != seed.cache_key]
    _log.info("autoplay: %s fresh of %s mix tracks seeded by %s", len(fresh), len(candidates), seed.source_id)
    return fresh[:limit]


def describe(track: Track) -> str:
    """``Title — Artist (Source)`` for lists."""
    by = f" — {track.artist}" if track.artist else ""
    return f"{track.title}{by} ({source_label(track.source)})"
