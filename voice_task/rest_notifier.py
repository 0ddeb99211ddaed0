"""The Notifier over Discord's REST API (429s are retried after ``retry_after`` by the client)."""

from __future__ import annotations

import logging

from timmybot.config import Settings
from timmybot.discord.rest import DiscordHTTPError, DiscordRest
from voice_task.notices import Body

_log = logging.getLogger(__name__)

UNKNOWN_MESSAGE = 10008  # Discord's error code for a message that no longer exists


class RestNotifier:
    def __init__(self, settings: Settings, rest: DiscordRest | None = None) -> None:
        self.rest = rest or DiscordRest.from_settings(settings)

    def send(self, channel_id: str, body: Body) -> str | None:
        try:
            message = self.rest.create_message(channel_id, body)
        except DiscordHTTPError as exc:
            # Missing Send Messages / Embed Links, a deleted channel…: playback goes on regardless.
            _log.warning("could not post in channel %s: %s", channel_id, exc)
            return None
        return str(message.get("id")) if message.get("id") else None

    def edit(self, channel_id: str, message_id: str, body: Body) -> None:
        try:
            self.rest.edit_message(channel_id, message_id, body)
        except DiscordHTTPError as exc:
            _log.warning("could not edit message %s in channel %s: %s", message_id, channel_id, exc)

    def edit_card(self, channel_id: str, message_id: str, body: Body) -> str:
        try:
            self.rest.edit_message(channel_id, message_id, body)
        except DiscordHTTPError as exc:
            if exc.status == 404 or exc.code == UNKNOWN_MESSAGE:
                return "gone"
            _log.info("now-playing message %s could not be edited (%s)", message_id, exc)
            return "failed"
        return "ok"

    def upsert(self, channel_id: str, message_id: str | None, body: Body) -> str | None:
        """Edit the existing now-playing post, or post a new one if there is none (or it is gone)."""
        if message_id:
            try:
                self.rest.edit_message(channel_id, message_id, body)
                return message_id
            except DiscordHTTPError as exc:
                _log.info("now-playing message %s could not be edited (%s): posting a new one", message_id, exc)
        return self.send(channel_id, body)
