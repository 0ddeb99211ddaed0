"""Component custom ids: the one place that builds and parses them.

Format: ``v1:<kind>:<fields…>``, ASCII, at most 100 characters (Discord's limit)::

    v1:queue:page:3     the queue embed's ◀ ▶ buttons (1-based page)
    v1:np:back          the now-playing buttons: back, pause (toggles), skip, stop
    v1:np:pause
    v1:np:skip
    v1:np:stop
    v1:auth:check:youtube   /link youtube's "Check" button (polls the user's own pending device code)
    v1:forget:confirm       /forget-me's confirmation button
    v1:mypl:page:2          /my-playlists' ◀ ▶ buttons (1-based page of the user's own listing)
    v1:mypl:pick            /my-playlists' select menu; each option's value is a playlist choice:
                            v1:sp:<22 base62> (Spotify) or v1:yt:<2-64 of A-Z a-z 0-9 _ -> (YouTube)
    v1:hist:<owner id>:<index 0-49>:<8 hex>   /play-history's re-queue buttons (owner-only; the hex
                            digest names the track, so a stale or edited index finds nothing)
    v1:ghist:pick:<end|next|now>   /history's select menu (the guild's history); each option's value
                            is <index 0-49>:<8 hex>, the digest naming the entry as above
    v1:search:<owner id>:<end|next|now>:<8 hex>   /search's select menu (owner-only); the hex names
                            the search it shows (a newer search replaces the menu's record), and
                            each option's value is <index 0-49>:<8 hex> as /history's
    v1:lyrics:<32 hex>:<page>   /lyrics' ◀ ▶ buttons: the hex names the cached look-up (its
                            store record), the page is 1-based
    v1:spl:page:<p|s>:<12 hex>:<page>   /playlist show's ◀ ▶ buttons: a saved playlist by scope
                            (personal: the clicking user's own; server: the clicking guild's) and id
    v1:spl:del:<p|s>:<12 hex>   /playlist delete's confirmation button (checked again when clicked)

Anything else — another version, an unknown kind, extra or missing fields, a page outside
1..MAX_PAGE, non-ASCII — raises ``InvalidCustomIdError``: custom ids come back from clients and
are treated as untrusted input.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from timmybot.errors import InvalidInputError

VERSION = "v1"
MAX_LENGTH = 100
MAX_PAGE = 1000  # 5000 entries (the highest queue cap) / 10 per page, with room to spare

_PAGE_RE = re.compile(r"[1-9][0-9]{0,3}")


class InvalidCustomIdError(InvalidInputError):
    user_message = "That button no longer works (it may be from an older message). Run the command again."


class NowPlayingAction(enum.StrEnum):
    BACK = "back"  # the previous track again (/back)
    PAUSE = "pause"  # toggles pause / resume
    SKIP = "skip"
    STOP = "stop"


@dataclass(frozen=True)
class QueuePageId:
    page: int


@dataclass(frozen=True)
class NowPlayingId:
    action: NowPlayingAction


@dataclass(frozen=True)
class AuthCheckId:
    platform: str  # only "youtube" (the device flow) has a Check button


@dataclass(frozen=True)
class ForgetConfirmId:
    pass


AUTH_CHECK_PLATFORMS = frozenset({"youtube"})


@dataclass(frozen=True)
class MyPlaylistsPageId:
    page: int


@dataclass(frozen=True)
class MyPlaylistsPickId:
    pass


@dataclass(frozen=True)
class HistoryReplayId:
    owner_id: str
    index: int
    digest: str


@dataclass(frozen=True)
class PlaylistChoice:
    """A /my-playlists option value: which platform's playlist, by id (untrusted until parsed)."""

    platform: str  # "spotify" | "youtube"
    playlist_id: str


HISTORY_MAX_INDEX = 49
_SNOWFLAKE_RE = re.compile(r"[1-9][0-9]{15,20}")
_INDEX_RE = re.compile(r"0|[1-9][0-9]?")
_DIGEST_RE = re.compile(r"[0-9a-f]{8}")
_CHOICE_PATTERNS = {
    "sp": ("spotify", re.compile(r"[A-Za-z0-9]{22}")),
    "yt": ("youtube", re.compile(r"[A-Za-z0-9_-]{2,64}")),
}
_CHOICE_PREFIX = {platform: prefix for prefix, (platform, _) in _CHOICE_PATTERNS.items()}


@dataclass(frozen=True)
class GuildHistoryPickId:
    placement: str  # where the pick goes: "end", "next" or "now"


@dataclass(frozen=True)
class HistoryChoice:
    """A /history option value: which entry of the guild's history (untrusted until parsed)."""

    index: int
    digest: str


GUILD_HISTORY_PLACEMENTS = ("end", "next", "now")


@dataclass(frozen=True)
class SearchPickId:
    owner_id: str  # who ran /search: only they may pick
    placement: str  # "end", "next" or "now"
    menu: str  # 8 hex naming the search this menu shows


@dataclass(frozen=True)
class LyricsPageId:
    digest: str  # 32 hex: the lyrics cache record (``timmybot.lyrics.service.lookup_digest``)
    page: int


_LYRICS_DIGEST_RE = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class SavedPlaylistPageId:
    scope: str  # "personal" or "server"
    playlist_id: str  # 12 hex
    page: int


@dataclass(frozen=True)
class SavedPlaylistDeleteId:
    scope: str
    playlist_id: str


_SAVED_ID_RE = re.compile(r"[0-9a-f]{12}")
_SCOPE_LETTERS = {"personal": "p", "server": "s"}
_LETTER_SCOPES = {letter: scope for scope, letter in _SCOPE_LETTERS.items()}


CustomId = (
    QueuePageId
    | NowPlayingId
    | AuthCheckId
    | ForgetConfirmId
    | MyPlaylistsPageId
    | MyPlaylistsPickId
    | HistoryReplayId
    | GuildHistoryPickId
    | SearchPickId
    | LyricsPageId
    | SavedPlaylistPageId
    | SavedPlaylistDeleteId
)


def build(custom_id: CustomId) -> str:
    if isinstance(custom_id, QueuePageId):
        if not 1 <= custom_id.page <= MAX_PAGE:
            raise ValueError(f"queue page out of range: {custom_id.page}")
        raw = f"{VERSION}:queue:page:{custom_id.page}"
    elif isinstance(custom_id, AuthCheckId):
        if custom_id.platform not in AUTH_CHECK_PLATFORMS:
            raise ValueError(f"no Check button for {custom_id.platform!r}")
        raw = f"{VERSION}:auth:check:{custom_id.platform}"
    elif isinstance(custom_id, ForgetConfirmId):
        raw = f"{VERSION}:forget:confirm"
    elif isinstance(custom_id, MyPlaylistsPageId):
        if not 1 <= custom_id.page <= MAX_PAGE:
            raise ValueError(f"playlist page out of range: {custom_id.page}")
        raw = f"{VERSION}:mypl:page:{custom_id.page}"
    elif isinstance(custom_id, MyPlaylistsPickId):
        raw = f"{VERSION}:mypl:pick"
    elif isinstance(custom_id, HistoryReplayId):
        if (
            not _SNOWFLAKE_RE.fullmatch(custom_id.owner_id)
            or not 0 <= custom_id.index <= HISTORY_MAX_INDEX
            or not _DIGEST_RE.fullmatch(custom_id.digest)
        ):
            raise ValueError("invalid history button")
        raw = f"{VERSION}:hist:{custom_id.owner_id}:{custom_id.index}:{custom_id.digest}"
    elif isinstance(custom_id, GuildHistoryPickId):
        if custom_id.placement not in GUILD_HISTORY_PLACEMENTS:
            raise ValueError(f"no placement {custom_id.placement!r}")
        raw = f"{VERSION}:ghist:pick:{custom_id.placement}"
    elif isinstance(custom_id, SearchPickId):
        if (
            not _SNOWFLAKE_RE.fullmatch(custom_id.owner_id)
            or custom_id.placement not in GUILD_HISTORY_PLACEMENTS
            or not _DIGEST_RE.fullmatch(custom_id.menu)
        ):
            raise ValueError("invalid search menu")
        raw = f"{VERSION}:search:{custom_id.owner_id}:{custom_id.placement}:{custom_id.menu}"
    elif isinstance(custom_id, LyricsPageId):
        if not _LYRICS_DIGEST_RE.fullmatch(custom_id.digest) or not 1 <= custom_id.page <= MAX_PAGE:
            raise ValueError("invalid lyrics page")
        raw = f"{VERSION}:lyrics:{custom_id.digest}:{custom_id.page}"
    elif isinstance(custom_id, SavedPlaylistPageId):
        if (
            custom_id.scope not in _SCOPE_LETTERS
            or not _SAVED_ID_RE.fullmatch(custom_id.playlist_id)
            or not 1 <= custom_id.page <= MAX_PAGE
        ):
            raise ValueError("invalid saved playlist page")
        raw = f"{VERSION}:spl:page:{_SCOPE_LETTERS[custom_id.scope]}:{custom_id.playlist_id}:{custom_id.page}"
    elif isinstance(custom_id, SavedPlaylistDeleteId):
        if custom_id.scope not in _SCOPE_LETTERS or not _SAVED_ID_RE.fullmatch(custom_id.playlist_id):
            raise ValueError("invalid saved playlist delete")
        raw = f"{VERSION}:spl:del:{_SCOPE_LETTERS[custom_id.scope]}:{custom_id.playlist_id}"
    else:
        raw = f"{VERSION}:np:{custom_id.action.value}"
    assert len(raw) <= MAX_LENGTH
    return raw


def queue_page(page: int) -> str:
    return build(QueuePageId(page))


def now_playing(action: NowPlayingAction) -> str:
    return build(NowPlayingId(action))


def parse(raw: object) -> CustomId:
    """The custom id ``raw`` names; raises InvalidCustomIdError for anything we did not build."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_LENGTH or not raw.isascii():
        raise InvalidCustomIdError()
    parts = raw.split(":")
    if parts[0] != VERSION:
        raise InvalidCustomIdError()
    match parts[1:]:
        case ["queue", "page", page] if _PAGE_RE.fullmatch(page) and int(page) <= MAX_PAGE:
            return QueuePageId(int(page))
        case ["np", action] if action in NowPlayingAction._value2member_map_:
            return NowPlayingId(NowPlayingAction(action))
        case ["auth", "check", platform] if platform in AUTH_CHECK_PLATFORMS:
            return AuthCheckId(platform)
        case ["forget", "confirm"]:
            return ForgetConfirmId()
        case ["mypl", "page", page] if _PAGE_RE.fullmatch(page) and int(page) <= MAX_PAGE:
            return MyPlaylistsPageId(int(page))
        case ["mypl", "pick"]:
            return MyPlaylistsPickId()
        case ["hist", owner, index, digest] if (
            _SNOWFLAKE_RE.fullmatch(owner)
            and _INDEX_RE.fullmatch(index)
            and int(index) <= HISTORY_MAX_INDEX
            and _DIGEST_RE.fullmatch(digest)
        ):
            return HistoryReplayId(owner, int(index), digest)
        case ["ghist", "pick", placement] if placement in GUILD_HISTORY_PLACEMENTS:
            return GuildHistoryPickId(placement)
        case ["search", owner, placement, menu] if (
            _SNOWFLAKE_RE.fullmatch(owner) and placement in GUILD_HISTORY_PLACEMENTS and _DIGEST_RE.fullmatch(menu)
        ):
            return SearchPickId(owner, placement, menu)
        case ["lyrics", digest, page] if (
            _LYRICS_DIGEST_RE.fullmatch(digest) and _PAGE_RE.fullmatch(page) and int(page) <= MAX_PAGE
        ):
            return LyricsPageId(digest, int(page))
        case ["spl", "page", letter, playlist_id, page] if (
            letter in _LETTER_SCOPES
            and _SAVED_ID_RE.fullmatch(playlist_id)
            and _PAGE_RE.fullmatch(page)
            and int(page) <= MAX_PAGE
        ):
            return SavedPlaylistPageId(_LETTER_SCOPES[letter], playlist_id, int(page))
        case ["spl", "del", letter, playlist_id] if letter in _LETTER_SCOPES and _SAVED_ID_RE.fullmatch(playlist_id):
            return SavedPlaylistDeleteId(_LETTER_SCOPES[letter], playlist_id)
        case _:
            raise InvalidCustomIdError()


def history_choice(index: int, digest: str) -> str:
    """The /history select-option value naming entry ``index`` of the guild's history."""
    if not 0 <= index <= HISTORY_MAX_INDEX or not _DIGEST_RE.fullmatch(digest):
        raise ValueError("invalid history choice")
    return f"{index}:{digest}"


def parse_history_choice(raw: object) -> HistoryChoice:
    """A /history option value we built; InvalidCustomIdError for anything else."""
    if not isinstance(raw, str) or len(raw) > 12:
        raise InvalidCustomIdError()
    index, sep, digest = raw.partition(":")
    if not sep or not _INDEX_RE.fullmatch(index) or int(index) > HISTORY_MAX_INDEX or not _DIGEST_RE.fullmatch(digest):
        raise InvalidCustomIdError()
    return HistoryChoice(int(index), digest)


def playlist_choice(platform: str, playlist_id: str) -> str:
    """The select-option value naming one playlist (validated like ``parse_playlist_choice``)."""
    prefix = _CHOICE_PREFIX.get(platform)
    if prefix is None or not _CHOICE_PATTERNS[prefix][1].fullmatch(playlist_id):
        raise ValueError(f"not a {platform} playlist id")
    return f"{VERSION}:{prefix}:{playlist_id}"


def parse_playlist_choice(raw: object) -> PlaylistChoice:
    """A select-option value we built; InvalidCustomIdError for anything else."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_LENGTH or not raw.isascii():
        raise InvalidCustomIdError()
    parts = raw.split(":")
    if len(parts) != 3 or parts[0] != VERSION or parts[1] not in _CHOICE_PATTERNS:
        raise InvalidCustomIdError()
    platform, pattern = _CHOICE_PATTERNS[parts[1]]
    if not pattern.fullmatch(parts[2]):
        raise InvalidCustomIdError()
    return PlaylistChoice(platform, parts[2])
