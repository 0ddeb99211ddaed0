"""Talking to Discord over HTTP: a small typed REST client shared by scripts, the worker and the voice task."""

from timmybot.discord.rest import DiscordHTTPError, DiscordRest

__all__ = ["DiscordHTTPError", "DiscordRest"]
