"""Saved playlists in the Store: what fits DynamoDB's 400 KB items whatever the tracks carry.

Per owner (``keys.playlist_owner_pk``: a user's personal playlists, a guild's server playlists):

- one index item (``INDEX``) of headers, at most ``saved_playlists_max``: id, name, the name's key
  (``names.name_key``), track count, revision, creator, last change;
- the tracks in chunks of ``CHUNK_SIZE`` (``C#{id}#{revision}#{n}``): a 500-track playlist of
  256-character titles and 2 KB links is ten items of about 130 KB each;
- a playlist's dead marks (``keys.playlist_dead_pk``), written by the voice task when one of its
  tracks fails to play, apart from the playlist so that the voice task may write nothing else.

A change writes the new revision's chunks first, then moves the header to that revision with one
conditional update of the index, then deletes the old chunks: a reader sees the old playlist or the
new one, never half. A change that loses a race to another one (the header moved on) writes
nothing visible and says "try again".
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from timmybot import text
from timmybot.errors import ConflictError, InvalidInputError
from timmybot.models import QueueEntry
from timmybot.playlists.names import clean_name, name_key
from timmybot.store import keys
from timmybot.store.base import Store

_log = logging.getLogger(__name__)

SCOPES = ("personal", "server")
CHUNK_SIZE = 50
URL_MAX = 2048  # a longer link is not a track anyone saved from a queue
THUMBNAIL_MAX = 1024  # a longer thumbnail link is dropped, the track kept


class PlaylistNotFoundError(InvalidInputError):
    pass


class ChangedMeanwhileError(ConflictError):
    user_message = "That playlist changed while I was saving it. Please try again."


@dataclass(frozen=True)
class Owner:
    """Whose playlists: ``personal`` ones of a user, or ``server`` ones of a guild."""

    scope: str
    owner_id: str

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"no playlist scope {self.scope!r}")

    @property
    def pk(self) -> str:
        return keys.playlist_owner_pk(self.scope, self.owner_id)

    @property
    def label(self) -> str:
        return "your personal playlists" if self.scope == "personal" else "this server's playlists"


@dataclass(frozen=True)
class Header:
    id: str
    name: str
    key: str
    count: int
    revision: int
    created_by: str  # "" once the creator used /forget-me
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "key": self.key,
            "count": self.count,
            "revision": self.revision,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Header:
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            key=str(data.get("key") or name_key(str(data["name"]))),
            count=int(data.get("count") or 0),
            revision=int(data.get("revision") or 0),
            created_by=str(data.get("created_by") or ""),
            updated_at=float(data.get("updated_at") or 0.0),
        )

    @property
    def shown(self) -> str:
        return f"**{text.quote(self.name, text.IN_SENTENCE)}**"


def track_key(track: dict[str, Any]) -> str:
    """What names a track within a playlist's dead marks."""
    return f"{track.get('source')}:{track.get('source_id')}"


def entry_track(entry: QueueEntry) -> dict[str, Any]:
    """A queue entry's track as a playlist stores it (``Track.to_dict``)."""
    return entry.track.to_dict()


def storable(track: dict[str, Any]) -> dict[str, Any] | None:
    """A track dict as a playlist keeps it (bounded fields), or None when it can't be kept."""
    url = str(track.get("url") or "")
    if not url or len(url) > URL_MAX or not track.get("source") or not track.get("source_id"):
        return None
    kept = {name: value for name, value in track.items() if value is not None}
    for name in ("title", "artist", "song", "album"):
        if isinstance(kept.get(name), str):
            kept[name] = text.cap(kept[name])
    if len(str(kept.get("thumbnail") or "")) > THUMBNAIL_MAX:
        kept.pop("thumbnail")
    if len(str(kept.get("source_id"))) > URL_MAX:
        return None
    return kept


class PlaylistBook:
    """The saved playlists of every owner, over ``store``'s small records."""

    def __init__(
        self,
        store: Store,
        *,
        max_playlists: int = 25,
        max_tracks: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.max_playlists = max_playlists
        self.max_tracks = max_tracks
        self._clock = clock

    # ------------------------------------------------------------------ reading
    def headers(self, owner: Owner) -> list[Header]:
        raw = self._store.get_record(owner.pk, keys.PLAYLIST_INDEX_SK) or {}
        found: list[Header] = []
        for item in raw.get("lists") or ():
            try:
                found.append(Header.from_dict(item))
            except (KeyError, TypeError, ValueError):
                _log.warning("a malformed playlist header under %s; skipping it", owner.scope)
        return found

    def find(self, owner: Owner, name: str) -> Header | None:
        wanted = name_key(name)
        return next((h for h in self.headers(owner) if h.key == wanted), None)

    def get(self, owner: Owner, name: str) -> Header:
        found = self.find(owner, name)
        if found is None:
            where = "You have no personal playlist" if owner.scope == "personal" else "This server has no playlist"
            raise PlaylistNotFoundError(
                f"{where} named **{text.quote(name, text.IN_SENTENCE)}**. /playlist list shows them."
            )
        return found

    def tracks(self, owner: Owner, header: Header) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for n in range(_chunks(header.count)):
            chunk = self._store.get_record(owner.pk, keys.playlist_chunk_sk(header.id, header.revision, n)) or {}
            out.extend(dict(t) for t in chunk.get("tracks") or () if isinstance(t, dict))
        return out

    def dead_keys(self, owner: Owner, header: Header) -> set[str]:
        raw = self._store.get_record(keys.playlist_dead_pk(owner.pk, header.id), keys.PLAYLIST_DEAD_SK) or {}
        return {str(k) for k in raw.get("keys") or ()}

    # ------------------------------------------------------------------ changing
    def check_new(self, owner: Owner, name: str) -> str:
        """The cleaned ``name`` when a new playlist of that name may be made, else the sentence."""
        shown = clean_name(name)
        self._check_free(owner, self.headers(owner), shown)
        return shown

    def create(
        self, owner: Owner, name: str, tracks: Sequence[dict[str, Any]], *, created_by: str
    ) -> tuple[Header, int]:
        """A new playlist of ``tracks`` (at most the cap; returns the header and how many were left out)."""
        shown = clean_name(name)
        existing = self.headers(owner)
        self._check_free(owner, existing, shown)
        kept, left_out = self._within_cap([t for t in map(storable, tracks) if t is not None])
        header = Header(secrets.token_hex(6), shown, name_key(shown), len(kept), 1, created_by, self._clock())
        self._write_chunks(owner, header, kept)

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            lists = [dict(item) for item in (current or {}).get("lists") or ()]
            self._check_free(owner, [Header.from_dict(item) for item in lists], shown)
            return {"lists": [*lists, header.to_dict()]}

        try:
            self._store.update_record(owner.pk, keys.PLAYLIST_INDEX_SK, change)
        except Exception:
            self._delete_chunks(owner, header)
            raise
        if owner.scope == "server":  # /forget-me finds the server playlists its creator made there
            from timmybot.controls import remember_guild  # noqa: PLC0415

            remember_guild(self._store, created_by, owner.owner_id)
        return header, left_out

    def replace_tracks(self, owner: Owner, header: Header, tracks: Sequence[dict[str, Any]]) -> Header:
        """``header``'s playlist with exactly ``tracks`` (already within the cap)."""
        kept = [t for t in map(storable, tracks) if t is not None][: self.max_tracks]
        moved = replace(header, count=len(kept), revision=header.revision + 1, updated_at=self._clock())
        self._write_chunks(owner, moved, kept)
        try:
            self._swap_header(owner, header, moved)
        except Exception:
            self._delete_chunks(owner, moved)
            raise
        self._delete_chunks(owner, header)
        return moved

    def append(self, owner: Owner, name: str, tracks: Sequence[dict[str, Any]]) -> tuple[Header, int, int]:
        """Add ``tracks`` at the end: (header, how many were added, how many the cap left out)."""
        header = self.get(owner, name)
        current = self.tracks(owner, header)
        fresh = [t for t in map(storable, tracks) if t is not None]
        room = max(0, self.max_tracks - len(current))
        if room == 0:
            raise InvalidInputError(
                f"{header.shown} is full: a playlist holds at most {self.max_tracks} tracks. "
                "Remove some with /playlist remove first."
            )
        added = fresh[:room]
        return self.replace_tracks(owner, header, current + added), len(added), len(fresh) - len(added)

    def remove_at(self, owner: Owner, name: str, index: int) -> tuple[Header, dict[str, Any]]:
        """Remove track number ``index`` (1-based)."""
        header = self.get(owner, name)
        current = self.tracks(owner, header)
        if not 1 <= index <= len(current):
            raise InvalidInputError(f"{header.shown} has {len(current)} tracks: `index` must be 1 to {len(current)}.")
        removed = current.pop(index - 1)
        return self.replace_tracks(owner, header, current), removed

    def rename(self, owner: Owner, name: str, new_name: str) -> Header:
        header = self.get(owner, name)
        shown = clean_name(new_name)
        others = [h for h in self.headers(owner) if h.id != header.id]
        if any(h.key == name_key(shown) for h in others):
            raise InvalidInputError(_taken(owner, shown))
        renamed = replace(header, name=shown, key=name_key(shown), updated_at=self._clock())

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            lists = [Header.from_dict(item) for item in (current or {}).get("lists") or ()]
            if any(h.key == renamed.key and h.id != header.id for h in lists):
                raise InvalidInputError(_taken(owner, shown))
            return {"lists": [(renamed if h.id == header.id else h).to_dict() for h in lists]}

        self._store.update_record(owner.pk, keys.PLAYLIST_INDEX_SK, change)
        return renamed

    def delete(self, owner: Owner, playlist_id: str) -> Header | None:
        """Delete the playlist with id ``playlist_id`` (a confirm button names it by id); None if gone."""
        gone: list[Header] = []

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            lists = [Header.from_dict(item) for item in (current or {}).get("lists") or ()]
            gone[:] = [h for h in lists if h.id == playlist_id]
            if not gone:
                return current
            return {"lists": [h.to_dict() for h in lists if h.id != playlist_id]}

        self._store.update_record(owner.pk, keys.PLAYLIST_INDEX_SK, change)
        if not gone:
            return None
        self._delete_chunks(owner, gone[0])
        self._store.delete_record(keys.playlist_dead_pk(owner.pk, playlist_id), keys.PLAYLIST_DEAD_SK)
        return gone[0]

    def by_id(self, owner: Owner, playlist_id: str) -> Header | None:
        return next((h for h in self.headers(owner) if h.id == playlist_id), None)

    # ------------------------------------------------------------------ /forget-me
    def forget_personal(self, user_id: str) -> int:
        """Delete every personal playlist of ``user_id``; how many there were."""
        owner = Owner("personal", user_id)
        headers = self.headers(owner)
        for header in headers:
            self._delete_chunks(owner, header)
            self._store.delete_record(keys.playlist_dead_pk(owner.pk, header.id), keys.PLAYLIST_DEAD_SK)
        self._store.delete_record(owner.pk, keys.PLAYLIST_INDEX_SK)
        return len(headers)

    def forget_creator(self, guild_id: str, user_id: str) -> int:
        """Keep ``guild_id``'s server playlists that ``user_id`` created, without their id; how many."""
        count = [0]

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            lists = [Header.from_dict(item) for item in (current or {}).get("lists") or ()]
            count[0] = sum(1 for h in lists if h.created_by == user_id)
            if not count[0]:
                return current
            return {"lists": [(replace(h, created_by="") if h.created_by == user_id else h).to_dict() for h in lists]}

        self._store.update_record(Owner("server", guild_id).pk, keys.PLAYLIST_INDEX_SK, change)
        return count[0]

    # ------------------------------------------------------------------ helpers
    def _check_free(self, owner: Owner, existing: Sequence[Header], shown: str) -> None:
        if any(h.key == name_key(shown) for h in existing):
            raise InvalidInputError(_taken(owner, shown))
        if len(existing) >= self.max_playlists:
            whose = "You have" if owner.scope == "personal" else "This server has"
            raise InvalidInputError(
                f"{whose} {len(existing)} saved playlists, the most allowed ({self.max_playlists}). "
                "Delete one with /playlist delete first."
            )

    def _within_cap(self, tracks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        return tracks[: self.max_tracks], max(0, len(tracks) - self.max_tracks)

    def _write_chunks(self, owner: Owner, header: Header, tracks: Sequence[dict[str, Any]]) -> None:
        for n in range(_chunks(len(tracks))):
            chunk = {"tracks": list(tracks[n * CHUNK_SIZE : (n + 1) * CHUNK_SIZE])}
            sk = keys.playlist_chunk_sk(header.id, header.revision, n)
            self._store.update_record(owner.pk, sk, lambda _current, chunk=chunk: chunk)  # type: ignore[misc]

    def _delete_chunks(self, owner: Owner, header: Header) -> None:
        for n in range(_chunks(header.count)):
            self._store.delete_record(owner.pk, keys.playlist_chunk_sk(header.id, header.revision, n))

    def _swap_header(self, owner: Owner, old: Header, new: Header) -> None:
        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            lists = [Header.from_dict(item) for item in (current or {}).get("lists") or ()]
            now = next((h for h in lists if h.id == old.id), None)
            if now is None or now.revision != old.revision:
                raise ChangedMeanwhileError()
            return {"lists": [(new if h.id == old.id else h).to_dict() for h in lists]}

        self._store.update_record(owner.pk, keys.PLAYLIST_INDEX_SK, change)


def _chunks(count: int) -> int:
    return (count + CHUNK_SIZE - 1) // CHUNK_SIZE


def _taken(owner: Owner, shown: str) -> str:
    whose = "You already have a playlist" if owner.scope == "personal" else "This server already has a playlist"
    return (
        f"{whose} named **{text.quote(shown, text.IN_SENTENCE)}** (names ignore case and letter forms). "
        "Choose another name."
    )


def book_for(store: Store, settings: Any) -> PlaylistBook:
    """The book with ``settings``' caps (a ``timmybot.config.Settings``)."""
    return PlaylistBook(
        store, max_playlists=settings.saved_playlists_max, max_tracks=settings.saved_playlist_tracks_max
    )
