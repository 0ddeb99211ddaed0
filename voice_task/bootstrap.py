"""Build the voice task from settings: the one place that wires adapters together."""

from __future__ import annotations

import discord
import discord.gateway
import discord.http
import yarl

from timmybot.config import Settings
from timmybot.store import build_store
from voice_task.rest_notifier import RestNotifier
from voice_task.task import VoiceTask, holder_id


def point_discord_at(settings: Settings) -> None:
    """The two documented discord.py attributes: REST base and gateway URL (REST proxies use them too)."""
    discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def build_task(settings: Settings, guild_id: str, generation: str | None) -> VoiceTask:
    point_discord_at(settings)
    store = build_store(settings)
    notifier = RestNotifier(settings)
    return VoiceTask(
        settings,
        store,
        guild_id,
        generation=int(generation) if generation else None,
        holder=holder_id(),
        notifier=notifier,
    )
