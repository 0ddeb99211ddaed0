"""Messages the voice task posts in the guild's text channel: the now-playing card and notices."""

from __future__ import annotations

from typing import Any, Protocol

from timmybot import ui
from timmybot.models import GuildRecord

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
