"""Messages the voice task posts in the guild's text channel: the now-playing card and notices."""

from __future__ import annotations

from typing import Any, Protocol

from timmybot import text
from timmybot.discord import ui
from timmybot.discord.types import requester_ping
from timmybot.models import GuildRecord, QueueEntry

Body = dict[str, Any]


class Notifier(Protocol):
    """Posting port: the Discord REST adapter in production, anything that records in tests."""

    def send(self, channel_id: str, body: Body) -> str | None: ...

    def edit(self, channel_id: str, message_id: str, body: Body) -> None: ...

    def upsert(self, channel_id: str, message_id: str | None, body: Body) -> str | None: ...

    def edit_card(self, channel_id: str, message_id: str, body: Body) -> str:
        """Edit the now-playing card: "ok", "gone" (deleted: 404 / 10008) or "failed"."""
        ...


def now_playing_message(
    record: GuildRecord, now: float, *, status: str | None = None, lyrics: tuple[str, str, str] | None = None
) -> Body:
    """The same card /nowplaying shows, with the ⏮ ⏯ ⏭ ⏹ buttons (``status``: e.g. reconnecting;
    ``lyrics``: the synced lines around the position, when the guild shows them)."""
    return {
        "embeds": [ui.now_playing_embed(record, now, status=status, lyrics=lyrics)],
        "components": list(ui.now_playing_buttons()),
    }


def requester_ping_message(entry: QueueEntry) -> Body:
    """ "Your track is playing" for the member who queued ``entry`` and asked to be told (/preferences
    notify): the one message that pings, and only them (``discord.types.requester_ping``)."""
    line = text.fit("your track is playing now: **{title}**", text.IN_LINE, title=entry.title)
    return {"content": f"<@{entry.requester_id}> {line}", "allowed_mentions": requester_ping(entry.requester_id)}
