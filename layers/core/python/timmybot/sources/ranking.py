"""Ranking search results against the query: which of ten results is the song the user meant.

Pure and cheap (no network, no yt-dlp): it scores yt-dlp's flat search entries — the dicts of
``extract_flat`` with ``title``, ``channel``/``uploader``, ``duration`` (seconds, often a float),
``channel_is_verified`` and, where a source knows it, ``isrc`` — and ``entry_of`` gives the same
shape for a ``Track``. The score adds up:

- how much of the query the title and channel cover (the title and the artist);
- official uploads: an auto-generated "Artist - Topic" channel, VEVO, "official video/audio", the
  artist's own channel (its name in the query), a verified channel;
- penalties for variants the query does not ask for: 10-hour loops and other over-long uploads,
  sped up / nightcore / slowed / reverb / 8D / bass boosted edits, live versions, covers, karaoke,
  instrumentals, remixes; a lyric video is a small step below the official one, not a variant;
- an exact ISRC match, only when the query's recording has one (a Spotify link), wins outright.

Ties keep the source's own order (its relevance ranking).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from timmybot.models import Track

_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)

#: Words that make a result a variant of the song; each is a penalty unless the query says it too.
#: Multi-word phrases are matched on the normalised word sequence.
VARIANTS: dict[str, float] = {
    "sped up": 40.0,
    "speed up": 40.0,
    "nightcore": 40.0,
    "slowed": 40.0,
    "reverb": 30.0,
    "8d": 35.0,
    "bass boosted": 35.0,
    "daycore": 40.0,
    "10 hours": 50.0,
    "10 hour": 50.0,
    "1 hour": 40.0,
    "loop": 25.0,
    "live": 30.0,
    "cover": 35.0,
    "karaoke": 40.0,
    "instrumental": 35.0,
    "remix": 25.0,
    "reaction": 40.0,
    "tutorial": 40.0,
}
#: A word of the query that asks for a variant, and the variant words it allows.
_ASKS = {
    "live": ("live",),
    "concert": ("live",),
    "cover": ("cover",),
    "karaoke": ("karaoke", "instrumental"),
    "instrumental": ("instrumental",),
    "remix": ("remix",),
    "nightcore": ("nightcore",),
    "sped": ("sped up", "speed up"),
    "speed": ("sped up", "speed up"),
    "slowed": ("slowed", "reverb"),
    "reverb": ("slowed", "reverb"),
    "8d": ("8d",),
    "bass": ("bass boosted",),
    "hour": ("10 hours", "10 hour", "1 hour", "loop"),
    "hours": ("10 hours", "10 hour", "1 hour", "loop"),
    "loop": ("loop", "10 hours", "10 hour", "1 hour"),
    "daycore": ("daycore",),
}
_OFFICIAL_PHRASES = ("official video", "official music video", "official audio", "official lyric video")
_LYRIC_PHRASES = ("lyrics", "lyric video", "lyric")
_CHANNEL_NOISE = {"vevo", "official", "music", "topic", "tv", "channel", "records"}
SONG_MAX_S = 15 * 60  # longer than this is a mix, a loop or a concert unless asked
SONG_MIN_S = 45


def normalise(text: str) -> str:
    """Lower case, accents and punctuation gone, single spaces: what matching compares."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_WORD_RE.findall(stripped))


def _words(text: str) -> list[str]:
    return normalise(text).split()


def _has(phrase: str, haystack: str) -> bool:
    """``phrase`` (normalised words) occurs in ``haystack`` (normalised) on word boundaries."""
    return f" {phrase} " in f" {haystack} "


def entry_of(track: Track) -> dict[str, Any]:
    """A ``Track`` in the flat-entry shape ``score`` reads."""
    return {
        "id": track.source_id,
        "title": track.title,
        "channel": track.artist,
        "uploader": track.artist,
        "duration": track.duration_s,
        "isrc": track.isrc,
    }


def _channel(entry: Mapping[str, Any]) -> str:
    for key in ("channel", "uploader", "artist"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _duration(entry: Mapping[str, Any]) -> float | None:
    value = entry.get("duration")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def asked_variants(query: str) -> frozenset[str]:
    """The variant words ``query`` asks for (its "live", "cover", "nightcore"...)."""
    allowed: set[str] = set()
    for word in _words(query):
        allowed.update(_ASKS.get(word, ()))
    return frozenset(allowed)


def score(query: str, entry: Mapping[str, Any], *, isrc: str | None = None) -> float:
    """How well ``entry`` (a flat yt-dlp entry) answers ``query``; higher is better."""
    title_raw = entry.get("title")
    title = normalise(title_raw) if isinstance(title_raw, str) else ""
    channel_raw = _channel(entry)
    channel = normalise(channel_raw)
    query_words = _words(query)
    query_set = set(query_words)
    title_set = set(title.split())
    channel_set = set(channel.split()) - _CHANNEL_NOISE
    total = 0.0

    if isrc and entry.get("isrc") == isrc:
        total += 200.0
    if query_set:
        covered = query_set & (title_set | channel_set)
        total += 40.0 * len(covered) / len(query_set)
        total += 20.0 * len(query_set & title_set) / len(query_set)
        # Title words the query does not have: "(Official Video)" is fine, a long tail is not.
        extra = title_set - query_set - {"official", "video", "audio", "music", "hd", "hq", "lyrics", "lyric"}
        total -= min(10.0, 1.0 * len(extra))

    # Official uploads.
    is_topic = channel_raw.strip().endswith("- Topic")
    if is_topic:
        total += 25.0
    if "vevo" in channel.replace(" ", ""):
        total += 15.0
    if any(_has(p, title) for p in _OFFICIAL_PHRASES):
        total += 15.0
    artist_words = channel_set
    if artist_words and artist_words <= query_set:
        total += 12.0  # the artist's own channel: its name is in the query
    if entry.get("channel_is_verified") is True:
        total += 5.0

    # Variants the query did not ask for.
    allowed = asked_variants(query)
    for phrase, penalty in VARIANTS.items():
        if _has(phrase, title) and phrase not in allowed and not _has(phrase, normalise(query)):
            total -= penalty
        elif phrase in allowed and _has(phrase, title):
            total += 10.0  # asked for, and this is one
    if any(_has(p, title) for p in _LYRIC_PHRASES):
        total += 20.0 if query_set & {"lyrics", "lyric"} else -5.0  # asked for: it beats the official video

    duration = _duration(entry)
    if duration is not None:
        if duration > SONG_MAX_S and not allowed & {"live", "10 hours", "10 hour", "1 hour", "loop"}:
            total -= 30.0
        elif duration < SONG_MIN_S:
            total -= 15.0
    return total


def rank(query: str, entries: Sequence[Mapping[str, Any]], *, isrc: str | None = None) -> list[int]:
    """The indices of ``entries``, best first (ties keep the source's order)."""
    scores = [score(query, entry, isrc=isrc) for entry in entries]
    return sorted(range(len(entries)), key=lambda i: (-scores[i], i))


def rank_tracks(query: str, tracks: Sequence[Track], *, isrc: str | None = None) -> list[Track]:
    """``tracks`` best first for ``query`` (``rank`` over their flat-entry view)."""
    order = rank(query, [entry_of(t) for t in tracks], isrc=isrc)
    return [tracks[i] for i in order]
