"""Playlist names: 1-50 characters, no control characters, unique per owner and scope after NFKC
normalisation and casefolding ("Road Trip", "road trip" and "ｒｏａｄ ｔｒｉｐ" are one name)."""

from __future__ import annotations

import unicodedata

from timmybot.errors import InvalidInputError

NAME_MAX = 50


def clean_name(raw: str) -> str:
    """The name as shown (spaces collapsed), or InvalidInputError with the user's sentence."""
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn") for char in raw):
        raise InvalidInputError("A playlist name can't contain control or invisible characters.")
    name = " ".join(raw.split())
    if not name:
        raise InvalidInputError("A playlist name needs at least one visible character.")
    if len(name) > NAME_MAX:
        raise InvalidInputError(f"A playlist name can be at most {NAME_MAX} characters.")
    return name


def name_key(name: str) -> str:
    """What two names must differ in to be two playlists."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())
