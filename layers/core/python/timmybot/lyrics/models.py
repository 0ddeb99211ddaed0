"""Value types of lyrics look-ups: what is asked, what LRCLIB holds, and the domain errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from timmybot.errors import TimmyError

#: The most of one lyrics text kept (plain or synced): far more than any song, far below an item's cap.
TEXT_MAX = 40_000


class LyricsUnavailableError(TimmyError):
    user_message = "I can't reach the lyrics service (LRCLIB) right now. Please try again in a moment."


@dataclass(frozen=True, slots=True)
class LyricsQuery:
    """Clean names to look up. ``text`` set: a free-text search (``/lyrics query:``), names unused."""

    artist: str = ""
    track: str = ""
    album: str | None = None
    duration_s: int | None = None
    text: str | None = None

    @property
    def label(self) -> str:
        """What the user reads as the song asked for ("Artist – Track", or their words)."""
        if self.text is not None:
            return self.text
        return f"{self.artist} – {self.track}" if self.artist else self.track

    @property
    def usable(self) -> bool:
        return bool((self.text or "").strip() or self.track.strip())


@dataclass(frozen=True, slots=True)
class Lyrics:
    """One LRCLIB record (its field names: trackName, artistName, albumName, duration...)."""

    track_name: str
    artist_name: str
    album_name: str | None
    duration_s: float | None
    instrumental: bool
    plain: str
    synced: str | None

    @classmethod
    def from_lrclib(cls, raw: Mapping[str, Any]) -> Lyrics | None:
        """A record from LRCLIB's JSON; None for one without a track name."""
        name = raw.get("trackName") or raw.get("name")
        if not isinstance(name, str) or not name.strip():
            return None
        duration = raw.get("duration")
        plain = raw.get("plainLyrics")
        synced = raw.get("syncedLyrics")
        album = raw.get("albumName")
        artist = raw.get("artistName")
        return cls(
            track_name=name.strip(),
            artist_name=artist.strip() if isinstance(artist, str) else "",
            album_name=album.strip() if isinstance(album, str) and album.strip() else None,
            duration_s=float(duration)
            if isinstance(duration, int | float) and not isinstance(duration, bool)
            else None,
            instrumental=raw.get("instrumental") is True,
            plain=plain[:TEXT_MAX] if isinstance(plain, str) else "",
            synced=synced[:TEXT_MAX] if isinstance(synced, str) and synced.strip() else None,
        )

    @property
    def has_words(self) -> bool:
        return bool(self.plain.strip() or (self.synced or "").strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_name": self.track_name,
            "artist_name": self.artist_name,
            "album_name": self.album_name,
            "duration_s": self.duration_s,
            "instrumental": self.instrumental,
            "plain": self.plain,
            "synced": self.synced,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lyrics:
        duration = data.get("duration_s")
        album = data.get("album_name")
        synced = data.get("synced")
        return cls(
            track_name=str(data["track_name"]),
            artist_name=str(data.get("artist_name") or ""),
            album_name=str(album) if album else None,
            # DynamoDB hands numbers back as Decimal.
            duration_s=None if duration is None else float(duration),
            instrumental=bool(data.get("instrumental")),
            plain=str(data.get("plain") or ""),
            synced=str(synced) if synced else None,
        )
