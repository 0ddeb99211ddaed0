"""Reading yt-dlp's answers: full and flat info dicts to ``Track`` values, playlist entries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from timmybot.errors import TrackTooLongError
from timmybot.models import Track

from ..models import SourceSettings

# Flat-playlist placeholders YouTube uses for entries nobody can play.
_UNPLAYABLE_TITLES = frozenset({"[private video]", "[deleted video]", "[unavailable video]"})
_UNPLAYABLE_AVAILABILITY = frozenset({"private", "needs_auth", "premium_only", "subscriber_only"})


def too_long_error(settings: SourceSettings) -> TrackTooLongError:
    hours, rest = divmod(settings.max_track_seconds, 3600)
    limit = f"{hours} h" if not rest else f"{settings.max_track_seconds // 60} min"
    return TrackTooLongError(f"That track is too long: the limit is {limit}.")


def is_playlist(info: Mapping[str, Any]) -> bool:
    return info.get("_type") in {"playlist", "multi_video"} or "entries" in info


def playlist_entries(info: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for entry in info.get("entries") or ():
        if isinstance(entry, dict):
            yield entry


def _source_of(info: Mapping[str, Any]) -> str | None:
    key = str(info.get("ie_key") or info.get("extractor_key") or info.get("extractor") or "").lower()
    if key.startswith("youtube"):
        return "youtube"
    if key.startswith("soundcloud"):
        return "soundcloud"
    return None


def track_from_info(info: Mapping[str, Any]) -> Track | None:
    """A Track from a full or flat yt-dlp info dict; None for entries nobody can play."""
    source = _source_of(info)
    source_id = str_or_none(info.get("id"))
    if source is None or not source_id:
        return None
    title = str_or_none(info.get("title"))
    if title is not None and title.lower() in _UNPLAYABLE_TITLES:
        return None
    if info.get("availability") in _UNPLAYABLE_AVAILABILITY:
        return None
    if source == "youtube":
        url = f"https://www.youtube.com/watch?v={source_id}"
    else:
        url = str_or_none(info.get("webpage_url")) or str_or_none(info.get("url")) or ""
        if not url:
            return None
    thumbnail = str_or_none(info.get("thumbnail"))
    if thumbnail is None:
        thumbnails = [t for t in info.get("thumbnails") or () if isinstance(t, dict) and t.get("url")]
        thumbnail = str_or_none(thumbnails[-1]["url"]) if thumbnails else None
    artists = info.get("artists")
    artist = (
        (str(artists[0]) if isinstance(artists, list) and artists else None)
        or str_or_none(info.get("artist"))
        or str_or_none(info.get("uploader"))
        or str_or_none(info.get("channel"))
    )
    return Track(
        source=source,
        source_id=source_id,
        title=title or f"{source.capitalize()} track {source_id}",
        url=url,
        duration_s=int_or_none(info.get("duration")),
        thumbnail=thumbnail,
        artist=artist,
        isrc=str_or_none(info.get("isrc")),
        song=str_or_none(info.get("track")),
        album=str_or_none(info.get("album")),
    )


def str_or_none(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return None
