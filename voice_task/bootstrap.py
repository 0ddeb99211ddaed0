"""Build the voice task from settings: the one place that wires adapters together."""

from __future__ import annotations

from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from timmybot import netguard
from timmybot.config import Settings
from timmybot.discord.rest import DiscordRest
from timmybot.identify import IdentifyBudget
from timmybot.sources.chain import SourceChain
from timmybot.store import build_store
from voice_task.exits import holder_id
from voice_task.rest_notifier import RestNotifier
from voice_task.task import VoiceTask
from voice_task.wake import build_listener


def point_discord_at(settings: Settings) -> None:
    """The two documented discord.py attributes: REST base and gateway URL (REST proxies use them too)."""
    discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def build_task(settings: Settings, guild_id: str, generation: str | None) -> VoiceTask:
    point_discord_at(settings)
    netguard.configure_from_settings(settings)
    store = build_store(settings)
    rest = DiscordRest.from_settings(settings)
    notifier = RestNotifier(settings, rest)

    def gateway_limits() -> dict[str, Any]:
        return dict(rest.request("GET", "/gateway/bot", route="/gateway/bot").get("session_start_limit") or {})

    launched = int(generation) if generation else None
    return VoiceTask(
        settings,
        store,
        guild_id,
        generation=launched,
        holder=holder_id(),
        notifier=notifier,
        budget=IdentifyBudget(store, reserve_fraction=settings.identify_reserve_fraction),
        gateway_limits=gateway_limits,
        wake=build_listener(settings, guild_id, launched or 0),
        sources=SourceChain.over_store(settings.source_settings(), store),
    )
