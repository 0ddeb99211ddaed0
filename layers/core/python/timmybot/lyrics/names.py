"""Title normalisation: from a track (or typed words) to the clean names LRCLIB matches.

Pure functions, no I/O. The order of preference:

1. music metadata: a Spotify track's own name and artist, or yt-dlp's ``track``/``artist``/``album``
   fields (``Track.song``/``Track.album``), which YouTube Music and "Topic" uploads carry;
2. otherwise the video's title: bracketed video tags dropped ("(Official Video)", "[Lyrics]",
   "(Audio)", "(HD)", "(Visualizer)", "【MV】"...), then "Artist - Title" split (also
   "Artist「Title」" and 'Artist "Title"'); a title with no separator takes the channel as artist,
   with " - Topic", "VEVO" and "Official" taken off its name;
3. "feat."/"ft."/"featuring" and what follows are taken off both names (LRCLIB files a song under
   its main artist), and so are remaster and live tags ("- Remastered 2009", "(Live at ...)"):
   the words are the same.

The duration is the track's; ``service`` allows for intros when it compares durations.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from timmybot.lyrics.models import LyricsQuery

if TYPE_CHECKING:
    from timmybot.models import Track

NAME_MAX = 200  # LRCLIB's names are short; a longer one is a description, not a name

#: Words that make a bracketed part of a title a video tag rather than part of the song's name.
_TAG_WORDS = re.compile(
    r"(?i)\b(?:official|video|audio|lyrics?|letra|hd|hq|4k|8k|1080p|720p|visuali[sz]er|mv|m/v|"
    r"remaster(?:ed)?|live|explicit|clean|karaoke|colou?r coded|full song|prod\.?|feat\.?|ft\.?|featuring|"
    r"music|performance|animated|subtitulado|legendado|sub|subs|360|stereo|mono)\b"
)
_BRACKETS = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]|【([^【】]*)】|\{([^{}]*)\}")
_JP_QUOTED = re.compile(r"^(?P<artist>[^「『]+?)\s*[「『](?P<track>[^」』]+)[」』](?P<rest>.*)$")
_QUOTED = re.compile(r"""^(?P<artist>[^"“”‘']+?)\s+(?P<q>["“‘'])(?P<track>[^"“”’']+)["”’'](?P<rest>.*)$""")
_SEPARATOR = re.compile(r"\s+[-–—~]\s+|\s+[-–—]|[-–—]\s+")
_FEAT = re.compile(r"(?i)\s*(?:[(\[]\s*)?\b(?:feat\.?|ft\.?|featuring)\s.*$")
_TRAILING_TAGS = re.compile(
    r"(?i)\s*(?:official\s+(?:music\s+|lyric\s+)?(?:video|audio|mv)|lyric\s+video|lyrics|visuali[sz]er|"
    r"music\s+video|m/v|mv)\s*$"
)
_SUFFIX = re.compile(
    r"(?i)\s+[-–—]\s+(?:(?:\d{4}\s+)?remaster(?:ed)?(?:\s+\d{4})?(?:\s+version)?|live(?:\s.*)?|"
    r"radio\s+edit|mono|stereo|single\s+version|album\s+version|bonus\s+track|\d{4}\s+mix)\s*$"
)
_CHANNEL_TAIL = re.compile(r"(?:\s+-\s+topic|vevo|\s+official)$", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_QUOTES = "\"'“”‘’«»"
_SEPARATORS = "-–—~:"


def fold(text: str) -> str:
    """Lower case, accents and punctuation gone, single spaces: what name matching compares."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.findall(r"\w+", stripped))


def clean_channel(channel: str) -> str:
    """A channel's name as an artist's: " - Topic", "VEVO" and "Official" off ("TaylorSwiftVEVO" →
    "Taylor Swift": VEVO channels run the words together)."""
    name = " ".join(channel.split())
    vevo = name.upper().endswith("VEVO")
    while True:
        shorter = _CHANNEL_TAIL.sub("", name).strip()
        if shorter == name or not shorter:
            break
        name = shorter
    if vevo and " " not in name:
        name = _CAMEL.sub(" ", name)
    return name


def drop_video_tags(title: str) -> str:
    """``title`` without bracketed video tags, trailing ones ("... Official Video") and " | ..." parts."""
    out = title
    while True:
        shorter = _BRACKETS.sub(_keep_unless_tag, out)
        if shorter == out:
            break
        out = shorter
    out = out.split(" | ")[0] if " | " in out and out.split(" | ")[0].strip() else out
    out = _TRAILING_TAGS.sub("", out)
    return " ".join(out.split())


def _keep_unless_tag(match: re.Match[str]) -> str:
    inner = next(group for group in match.groups() if group is not None)
    return " " if not inner.strip() or _TAG_WORDS.search(inner) else match.group(0)


def clean_track(name: str) -> str:
    """A song's name without feat. credits, remaster/live suffixes, tags and surrounding quotes."""
    out = drop_video_tags(name)
    out = _SUFFIX.sub("", out)
    out = _FEAT.sub("", out).strip(_SEPARATORS + " ")
    return " ".join(out.strip(_QUOTES + " ").split())[:NAME_MAX]


def clean_artist(name: str) -> str:
    """The main artist: feat. credits, channel tails and bracketed parts off (a name in another
    script, "BTS (방탄소년단)", "IU(아이유)": LRCLIB files the artist under one name)."""
    out = _FEAT.sub("", clean_channel(_BRACKETS.sub(" ", drop_video_tags(name))))
    return " ".join(out.strip(_QUOTES + " ").split())[:NAME_MAX]


def split_title(title: str, channel: str | None) -> tuple[str, str]:
    """(artist, track) from a video's title and its channel's name."""
    cleaned = drop_video_tags(title)
    parts = _SEPARATOR.split(cleaned, maxsplit=1)
    channel_artist = clean_artist(channel) if channel else ""
    if len(parts) == 2 and parts[0].strip() and parts[1].strip(_SEPARATORS + " "):
        left, right = clean_artist(parts[0]), clean_track(parts[1])
        # "Title - Artist" from the artist's own channel: the channel says which side is whom.
        if channel_artist and fold(right) == fold(channel_artist) and fold(left) != fold(channel_artist):
            return channel_artist, clean_track(parts[0])
        return left, right
    for pattern in (_JP_QUOTED, _QUOTED):
        match = pattern.match(cleaned)
        if match is not None:
            return clean_artist(match["artist"]), clean_track(match["track"])
    return channel_artist, clean_track(cleaned)


def lyrics_query(track: Track) -> LyricsQuery:
    """The names to look ``track``'s lyrics up by (see the module docstring)."""
    if track.source == "spotify" or track.song:
        artist = clean_artist(track.artist or "")
        name = clean_track(track.song or track.title)
        album = track.album
    else:
        artist, name = split_title(track.title, track.artist)
        album = track.album
    return LyricsQuery(artist=artist, track=name, album=album, duration_s=track.duration_s)


def query_from_text(words: str) -> LyricsQuery:
    """``/lyrics query:``: the user's words for a free-text search, split into names when they read
    "Artist - Title"."""
    text = " ".join(words.split())
    parts = _SEPARATOR.split(text, maxsplit=1)
    if len(parts) == 2 and parts[0].strip() and parts[1].strip():
        return LyricsQuery(artist=clean_artist(parts[0]), track=clean_track(parts[1]), text=text)
    return LyricsQuery(track=clean_track(text), text=text)


def names_match(query: LyricsQuery, track_name: str, artist_name: str) -> bool:
    """LRCLIB's record names the song asked for: the same track name (or one containing the other
    on word boundaries), and an artist sharing a word with the one asked (when one was asked)."""
    wanted, found = fold(query.track), fold(track_name)
    if not wanted or not found:
        return False
    if wanted != found and f" {wanted} " not in f" {found} " and f" {found} " not in f" {wanted} ":
        return False
    if not query.artist:
        return True
    asked_artist, found_artist = fold(query.artist), fold(artist_name)
    if not found_artist:
        return True
    if asked_artist in found_artist or found_artist in asked_artist:
        return True
    return bool(set(asked_artist.split()) & set(found_artist.split()))
