"""A track's metadata, as the queue, the track cache and the histories store it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from timmybot import text

# What the user reads as the source that played a track.
SOURCE_LABELS: dict[str, str] = {
    "youtube": "YouTube",
    "ytmusic": "YouTube Music",
    "soundcloud": "SoundCloud",
    "spotify": "Spotify",
    "local": "local media",
}


def source_label(source: str) -> str:
    """What the user reads for a ``Track.source`` value."""
    return SOURCE_LABELS.get(source, source)


@dataclass(frozen=True, slots=True)
class Track:
    """Metadata of one playable item; what the queue stores. ``url`` is re-resolved at play time."""

    source: str
    source_id: str
    title: str
    url: str
    duration_s: int | None
    thumbnail: str | None
    artist: str | None
    isrc: str | None = None
    #: Set when the chain played this track from ``source`` because ``fallback_from`` refused or
    #: failed (e.g. "youtube"); None for the source the user asked for.
    fallback_from: str | None = None
    #: Music metadata yt-dlp found (its ``track`` and ``album`` fields; YouTube Music and "Topic"
    #: uploads carry them): the song's own name apart from the video's title. Lyrics look-ups use them.
    song: str | None = None
    album: str | None = None
    #: Fields of the stored track this release does not know (a newer release's), written back as read.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)

    def __post_init__(self) -> None:
        # Titles and artists come from whoever uploaded the track: stored no longer than STORED_MAX
        # (rendering escapes and shortens again, for records stored before this cap).
        object.__setattr__(self, "title", text.cap(self.title))
        for name in ("artist", "song", "album"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, text.cap(value))

    @property
    def label(self) -> str:
        """The source's name as the user reads it ("YouTube", "SoundCloud"...)."""
        return source_label(self.source)

    @property
    def identified(self) -> bool:
        """It names its source and its id there (a stored track from before either was kept does not)."""
        return bool(self.source and self.source_id)

    @property
    def cache_key(self) -> tuple[str, str]:
        return (self.source, self.source_id)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            **self.extra,
            "source": self.source,
            "source_id": self.source_id,
            "title": self.title,
            "url": self.url,
            "duration_s": self.duration_s,
            "thumbnail": self.thumbnail,
            "artist": self.artist,
            "isrc": self.isrc,
            "fallback_from": self.fallback_from,
        }
        # Written only when known: a track without them keeps the shape older releases stored.
        if self.song is not None:
            data["song"] = self.song
        if self.album is not None:
            data["album"] = self.album
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Track:
        duration = data.get("duration_s")
        return cls(
            source=str(data["source"]),
            source_id=str(data["source_id"]),
            title=str(data["title"]),
            url=str(data["url"]),
            # DynamoDB hands numbers back as Decimal.
            duration_s=None if duration is None else int(duration),
            thumbnail=_opt_str(data.get("thumbnail")),
            artist=_opt_str(data.get("artist")),
            isrc=_opt_str(data.get("isrc")),
            fallback_from=_opt_str(data.get("fallback_from")),
            song=_opt_str(data.get("song")),
            album=_opt_str(data.get("album")),
            extra=_extra(data),
        )

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Track:
        """A queued entry's track as any release stored it: a field it lacks takes its empty value
        (``from_dict`` is strict: a track cache item without its source is no track)."""
        duration = data.get("duration_s")
        try:
            seconds = None if duration is None else int(duration)
        except (TypeError, ValueError):
            seconds = None
        return cls(
            source=str(data.get("source") or ""),
            source_id=str(data.get("source_id") or ""),
            title=str(data.get("title") or ""),
            url=str(data.get("url") or ""),
            duration_s=seconds,
            thumbnail=_opt_str(data.get("thumbnail")),
            artist=_opt_str(data.get("artist")),
            isrc=_opt_str(data.get("isrc")),
            fallback_from=_opt_str(data.get("fallback_from")),
            song=_opt_str(data.get("song")),
            album=_opt_str(data.get("album")),
            extra=_extra(data),
        )


TRACK_FIELDS = frozenset({"source", "source_id", "title", "url", "duration_s", "thumbnail", "artist", "isrc",
                          "fallback_from", "song", "album"})  # fmt: skip


def _extra(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in TRACK_FIELDS}


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
