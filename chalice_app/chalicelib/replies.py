"""What a handler returns (``Reply``), how it becomes Discord's response JSON, and the ONE place
where errors turn into ephemeral replies."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from timmybot.config import Settings
from timmybot.discord.types import (
    ButtonStyle,
    ComponentPayload,
    ComponentType,
    EmbedPayload,
    InteractionResponseType,
    MessageFlags,
    ResponsePayload,
    no_mentions,
)
from timmybot.errors import TimmyError

_log = logging.getLogger(__name__)

GENERIC_ERROR_TEXT = "Something went wrong on my side. Please try again in a moment."
ALREADY_WORKING_TEXT = "I'm already working on that."
ALREADY_HANDLED_TEXT = "That request was already handled. Run /link again if you still need a link or a code."


@dataclass(frozen=True)
class Reply:
    """A handler's answer. Build it with the class methods; ``to_response`` gives Discord's JSON."""

    kind: InteractionResponseType = InteractionResponseType.CHANNEL_MESSAGE_WITH_SOURCE
    content: str | None = None
    embeds: tuple[EmbedPayload, ...] = ()
    components: tuple[ComponentPayload, ...] = ()
    ephemeral: bool = False
    choices: tuple[dict[str, str | int | float], ...] = field(default=())
    # False: the reply carries something live (a link's authorize URL, a device code's user code),
    # so the interaction's dedupe record saves ``already_handled_reply()`` instead of it.
    replayable: bool = True

    @classmethod
    def message(
        cls,
        content: str | None = None,
        *,
        embeds: tuple[EmbedPayload, ...] = (),
        components: tuple[ComponentPayload, ...] = (),
        ephemeral: bool = False,
    ) -> Reply:
        return cls(content=content, embeds=embeds, components=components, ephemeral=ephemeral)

    @classmethod
    def private(cls, content: str, *, components: tuple[ComponentPayload, ...] = (), replayable: bool = True) -> Reply:
        """An ephemeral message: only the member who acted sees it."""
        return cls(content=content, components=components, ephemeral=True, replayable=replayable)

    @classmethod
    def update(
        cls,
        content: str | None = None,
        *,
        embeds: tuple[EmbedPayload, ...] = (),
        components: tuple[ComponentPayload, ...] = (),
        replayable: bool = True,
    ) -> Reply:
        """Type 7: edit the message whose component was clicked."""
        return cls(
            kind=InteractionResponseType.UPDATE_MESSAGE,
            content=content,
            embeds=embeds,
            components=components,
            replayable=replayable,
        )

    @classmethod
    def deferred(cls, *, ephemeral: bool = False) -> Reply:
        """Type 5: "thinking…"; the worker edits the original response within 15 minutes."""
        return cls(kind=InteractionResponseType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, ephemeral=ephemeral)

    @classmethod
    def autocomplete(cls, choices: tuple[dict[str, str | int | float], ...] = ()) -> Reply:
        return cls(kind=InteractionResponseType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT, choices=choices)

    def to_response(self) -> ResponsePayload:
        if self.kind is InteractionResponseType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT:
            return {"type": self.kind, "data": {"choices": list(self.choices)}}
        data: dict[str, Any] = {}
        if self.ephemeral:
            data["flags"] = int(MessageFlags.EPHEMERAL)
        if self.kind is InteractionResponseType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            return {"type": self.kind, "data": data} if data else {"type": self.kind}
        if self.content is not None:
            data["content"] = self.content
        if self.embeds or self.kind is InteractionResponseType.UPDATE_MESSAGE:
            data["embeds"] = [dict(e) for e in self.embeds]
        if self.components or self.kind is InteractionResponseType.UPDATE_MESSAGE:
            data["components"] = [dict(c) for c in self.components]
        data["allowed_mentions"] = no_mentions()
        return {"type": self.kind, "data": data}


PONG: ResponsePayload = {"type": InteractionResponseType.PONG}


def error_reply(error: TimmyError) -> Reply:
    """The ONE mapping of a domain error to what the user sees: its sentence, ephemeral."""
    return Reply.private(error.user_message)


def generic_error_reply() -> Reply:
    return Reply.private(GENERIC_ERROR_TEXT)


def already_working_reply() -> Reply:
    return Reply.private(ALREADY_WORKING_TEXT)


def already_handled_reply() -> Reply:
    """What a repeat of an interaction whose reply was not replayable gets: no link, no code."""
    return Reply.private(ALREADY_HANDLED_TEXT)


def not_authorized_reply(settings: Settings) -> Reply:
    """The refusal for a DM or a guild not on the allowlist: text and links from settings."""
    lines = [settings.not_authorized_text]
    buttons: list[ComponentPayload] = []
    if settings.request_access_url:
        lines.append(f"Request access: <{settings.request_access_url}>")
        buttons.append(_link_button("Request access", settings.request_access_url))
    if settings.self_deploy_url:
        lines.append(f"Or run your own TimmyBot: <{settings.self_deploy_url}>")
        buttons.append(_link_button("Self-deploy", settings.self_deploy_url))
    row: tuple[ComponentPayload, ...] = ({"type": ComponentType.ACTION_ROW, "components": buttons},) if buttons else ()
    return Reply.private("\n".join(lines), components=row)


def _link_button(label: str, url: str) -> ComponentPayload:
    return {"type": ComponentType.BUTTON, "style": ButtonStyle.LINK, "label": label, "url": url}
