"""/forget-me for saved playlists: the user's personal playlists are deleted; server playlists
they created stay with their servers, without the creator's id.

The servers are the ones the user queued music in or saved a server playlist in (the "servers a
user queued in" record, ``timmybot.controls.remember_guild``), so no table scan is needed.
"""

from __future__ import annotations

from timmybot.playlists.book import PlaylistBook
from timmybot.store.base import Store
from timmybot.store.keys import USER_GUILDS_SK, user_pk


def forget_user(store: Store, user_id: str) -> tuple[int, int]:
    """(personal playlists deleted, server playlists that no longer name their creator)."""
    book = PlaylistBook(store)
    deleted = book.forget_personal(user_id)
    guilds = (store.get_record(user_pk(user_id), USER_GUILDS_SK) or {}).get("ids") or ()
    unnamed = sum(book.forget_creator(str(guild_id), user_id) for guild_id in guilds)
    return deleted, unnamed
