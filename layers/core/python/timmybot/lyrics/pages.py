"""What /lyrics shows: plain lyrics in pages of one embed each, with ◀ ▶ buttons; the sentences
for a miss and an instrumental. Pure functions (no I/O): the worker renders the first page, the api
renders the others from the cached record when a button is clicked.

Discord's limits: an embed's description at most 4096 characters, an embed's text 6000 in all; a
page holds at most ``PAGE_CHARS`` (escaped), cut at stanza breaks, else at line breaks.
"""

from __future__ import annotations

from typing import Any

from timmybot import text
from timmybot.discord import custom_ids
from timmybot.discord.custom_ids import MAX_PAGE, LyricsPageId
from timmybot.discord.types import ButtonStyle, ComponentPayload, ComponentType, EmbedPayload
from timmybot.lyrics import lrc
from timmybot.lyrics.models import Lyrics
from timmybot.lyrics.service import LyricsResult

PAGE_CHARS = 3500  # below the description's 4096, with room for the title and the footer in 6000
TITLE_MAX = 256
COLOR = 0x5865F2
HINT = "Try `/lyrics query:` with the artist and the title, for example `/lyrics query: Artist - Song`."
EXPIRED = "Those lyrics are no longer kept. Run /lyrics again."


def words(lyrics: Lyrics) -> str:
    """The plain words: the record's plain lyrics, else its synced ones without timestamps."""
    if lyrics.plain.strip():
        return lyrics.plain
    return lrc.plain_text(lyrics.synced or "")


def split_pages(lyrics_text: str, limit: int = PAGE_CHARS) -> list[str]:
    """``lyrics_text`` escaped for Discord, in pages of at most ``limit`` characters."""
    stanzas = [s for s in _stanzas(lyrics_text) if s]
    pages: list[str] = []
    current = ""
    for stanza in stanzas:
        for piece in _fit(stanza, limit):
            joined = f"{current}\n\n{piece}" if current else piece
            if len(joined) <= limit:
                current = joined
            else:
                pages.append(current)
                current = piece
    if current:
        pages.append(current)
    return pages[:MAX_PAGE] or [""]


def _stanzas(lyrics_text: str) -> list[str]:
    stanzas: list[str] = []
    lines: list[str] = []
    for line in lyrics_text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            lines.append(text.escape(" ".join(line.split())))
        elif lines:
            stanzas.append("\n".join(lines))
            lines = []
    if lines:
        stanzas.append("\n".join(lines))
    return stanzas


def _fit(stanza: str, limit: int) -> list[str]:
    """A stanza in pieces of at most ``limit``: whole lines, and a line longer than a page cut."""
    if len(stanza) <= limit:
        return [stanza]
    pieces: list[str] = []
    current = ""
    for whole in stanza.split("\n"):
        rest = whole
        while len(rest) > limit:
            cut = limit - (1 if rest[:limit].endswith("\\") else 0)  # never half an escape
            pieces.append(rest[:cut])
            rest = rest[cut:]
        joined = f"{current}\n{rest}" if current else rest
        if len(joined) <= limit:
            current = joined
        else:
            pieces.append(current)
            current = rest
    if current:
        pieces.append(current)
    return pieces


def not_found(asked: str) -> str:
    return f"No lyrics found for {text.quote(asked, text.IN_SENTENCE) or 'that song'}. {HINT}"


def body(result: LyricsResult, page: int = 1) -> dict[str, Any]:
    """The message for ``result`` at ``page`` (clamped): content, embeds and components."""
    lyrics = result.lyrics
    if lyrics is None:
        return {"content": not_found(result.asked), "embeds": [], "components": []}
    name = text.quote(f"{lyrics.track_name} – {lyrics.artist_name}" if lyrics.artist_name else lyrics.track_name, 150)
    if lyrics.instrumental and not lyrics.has_words:
        return {"content": f"🎼 **{name}** is an instrumental: it has no lyrics.", "embeds": [], "components": []}
    pages = split_pages(words(lyrics))
    number = max(1, min(page, len(pages)))
    footer = f"Page {number}/{len(pages)} · lyrics from LRCLIB"
    if result.how == "search":
        footer += " · matched by search"
    embed: EmbedPayload = {
        "title": text.cap(f"Lyrics · {name}", TITLE_MAX),
        "description": pages[number - 1],
        "color": COLOR,
        "footer": {"text": footer},
    }
    return {"content": "", "embeds": [embed], "components": list(buttons(result.digest, number, len(pages)))}


def buttons(digest: str, page: int, pages: int) -> tuple[ComponentPayload, ...]:
    """◀ ▶ for the neighbouring pages (a disabled one keeps an id of its own: ids stay unique)."""
    if pages <= 1:
        return ()
    previous = _button("◀", LyricsPageId(digest, max(1, page - 1)), disabled=page <= 1)
    following = _button("▶", LyricsPageId(digest, min(pages, page + 1)), disabled=page >= pages)
    return ({"type": ComponentType.ACTION_ROW, "components": [previous, following]},)


def _button(emoji: str, custom_id: LyricsPageId, *, disabled: bool) -> ComponentPayload:
    return {
        "type": ComponentType.BUTTON,
        "style": ButtonStyle.SECONDARY,
        "emoji": {"name": emoji},
        "custom_id": custom_ids.build(custom_id),
        "disabled": disabled,
    }
