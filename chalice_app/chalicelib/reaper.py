"""The reaper Lambda's entry: one pass of ``timmybot.reaper.reap`` with this container's services."""

from __future__ import annotations

from chalicelib.services import Services
from timmybot.reaper import ReapReport, reap


def run_reaper(services: Services) -> ReapReport:
    return reap(services.store, services.launcher, services.settings)
