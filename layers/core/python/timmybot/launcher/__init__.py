"""Launchers: start the per-guild voice task, at most one live per guild (BRIEF §3, §4.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    GENERATION_ENV,
    GUILD_ENV,
    DisabledLauncher,
    Launcher,
    LaunchFailedError,
    LaunchOutcome,
    LaunchResult,
)

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.store.base import Store

    from .ecs import EcsClient


def build_launcher(settings: Settings, store: Store, *, client: EcsClient | None = None) -> Launcher:
    """The adapter ``settings.launcher`` names: local subprocess, ECS RunTask, or none."""
    if settings.launcher == "ecs":
        from .ecs import EcsLauncher  # noqa: PLC0415 - only the ECS deployment needs it

        return EcsLauncher(store, settings, client=client)
    if settings.launcher == "local":
        from .local import LocalLauncher  # noqa: PLC0415

        return LocalLauncher(store, settings)
    return DisabledLauncher(store, settings)


__all__ = [
    "GENERATION_ENV",
    "GUILD_ENV",
    "DisabledLauncher",
    "LaunchFailedError",
    "LaunchOutcome",
    "LaunchResult",
    "Launcher",
    "build_launcher",
]
