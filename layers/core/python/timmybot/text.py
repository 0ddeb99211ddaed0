"""User-supplied text (titles, artists, playlist names, reasons) made safe to quote in a message.

Anyone can name a video ``[Free Nitro](https://evil.example) @everyone **x** ||y||``. Quoted as it is,
that would be a clickable masked link, a mention, and a message whose bold and spoilers run
together; quoted whole, a 2100-character title pushes a reply past Discord's 2000-character limit
and Discord refuses it after the action was applied. So every piece of such text goes through
``quote`` at render time (stored records from before the storage cap included):
- Discord's markdown characters are escaped, so the text shows as it was written;
- mentions (``@everyone``, ``@here``, ``<@…>``, ``<#…>``) cannot form;
- it is shortened to a limit, on a character boundary, never in the middle of an escape.
``fit`` shortens the quoted parts of a whole line so that the line stays within its limit.
``cap`` bounds what is stored in the first place (``STORED_MAX``).
"""

from __future__ import annotations

import re

#: How long a title, artist or name may be when stored.
STORED_MAX = 256
#: How much of a title or name a one-line reply quotes (so that no reply nears 2000 characters).
IN_SENTENCE = 100
#: A line that quotes text and a reason that may quote text itself: ``fit`` keeps it within this.
IN_LINE = 400
ELLIPSIS = "…"
#: Characters Discord's markdown gives a meaning to (formatting, masked links, headings, lists).
_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]()<])")
_MASS_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)
_ZERO_WIDTH_SPACE = "\u200b"


#: What a user reads when their text holds something ``is_encodable`` refuses.
UNREADABLE = "That text has a character I can't read (a broken emoji?). Please type it again."


def is_encodable(text: str) -> bool:
    """Whether ``text`` can be stored and sent at all: JSON lets a request carry a lone UTF-16
    surrogate (``"\\ud800"``), which no UTF-8 encoder (SQLite, DynamoDB, Discord) accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def loggable(value: object, limit: int = 80) -> str:
    """``value`` as one safe log token: ``repr`` (so CR/LF and control characters are escaped and a
    line cannot be forged), shortened to ``limit`` characters. For values from unauthenticated requests."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def cap(text: str | None, limit: int = STORED_MAX) -> str:
    """``text`` no longer than ``limit`` code points (for storage: no escaping)."""
    value = text or ""
    return value if len(value) <= limit else value[: limit - 1] + ELLIPSIS


def escape(text: str) -> str:
    """``text`` as plain text in a Discord message: no markdown, no masked link, no mention."""
    escaped = _MARKDOWN.sub(r"\\\1", text)
    return _MASS_MENTION.sub(lambda m: "@" + _ZERO_WIDTH_SPACE + m.group(1), escaped)


def quote(text: str | None, limit: int) -> str:
    """``text`` escaped and shortened to at most ``limit`` code points."""
    escaped = escape(" ".join((text or "").split()))  # newlines would break the line it is quoted in
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: max(0, limit - 1)]
    # Never end on half an escape: a lone trailing backslash would escape the ellipsis.
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    if cut.endswith(_ZERO_WIDTH_SPACE):
        cut = cut[:-1]
    return cut + ELLIPSIS


def fit(template: str, limit: int, **quoted: str | None) -> str:
    """``template`` with each ``{name}`` filled by ``quote(value)``, every quoted part shortened
    alike so that the whole stays within ``limit`` code points."""
    fixed = len(template.format(**dict.fromkeys(quoted, "")))
    room = max(0, limit - fixed)
    share = room // max(1, len(quoted))
    parts = {name: quote(value, share) for name, value in quoted.items()}
    spare = room - sum(len(p) for p in parts.values())
    for name, value in quoted.items():  # give what the short parts left over to the long ones
        if spare <= 0:
            break
        longer = quote(value, len(parts[name]) + spare)
        spare -= len(longer) - len(parts[name])
        parts[name] = longer
    return template.format(**parts)
