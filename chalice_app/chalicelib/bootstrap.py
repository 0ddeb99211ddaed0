"""The api process's wiring: ``bootstrap(settings)`` builds every service from typed settings.

Heavy things are built on first use and then kept for the container's life: the store (and with
it boto3) only when a request passed verification and the allowlist; the Discord REST client only
when something calls Discord; secrets when a port that needs them is built (``Services.secret_settings``).
``Services`` lives in ``chalicelib.services``; the bootstrap hands it the worker's entry point
(``chalicelib.worker.run_job``) for the thread and inline dispatchers, so neither imports this module.
``app_services`` is what ``app.py`` uses (the one service lookup in chalicelib: it hands the services
to the routes, which pass them on); tests install their own services with
``app_services.override(bootstrap(test_settings))``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from chalicelib.allowlist import Allowlist
from chalicelib.observability import build_observability, configure_local_logging
from chalicelib.services import Services
from chalicelib.signature import SignatureVerifier
from chalicelib.worker import run_job
from timmybot import netguard
from timmybot.config import Settings

if TYPE_CHECKING:
    from chalicelib.dispatch import Dispatcher
    from timmybot.accounts.linked import LinkedAccounts
    from timmybot.discord.rest import DiscordRest
    from timmybot.launcher import Launcher
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)


def bootstrap(
    settings: Settings,
    *,
    store: Store | None = None,
    discord: DiscordRest | None = None,
    dispatcher: Dispatcher | None = None,
    launcher: Launcher | None = None,
    accounts: LinkedAccounts | None = None,
    in_lambda: bool | None = None,
) -> Services:
    """Build the api's services. ``store``/``discord``/``dispatcher``/``launcher``/``accounts`` replace
    the adapters the settings name."""
    # The network guard lets the configured endpoints through (cheap: nothing is parsed or started here).
    netguard.configure_from_settings(settings)

    def make_store() -> Store:
        if store is not None:
            return store
        from timmybot.store import build_store  # noqa: PLC0415 - the store is built on first use
        from timmybot.wake import send_hints  # noqa: PLC0415

        _log.info("building the %s store", settings.store_backend)
        return send_hints(build_store(settings), settings)

    def make_discord(services: Services) -> DiscordRest:
        if discord is not None:
            return discord
        from timmybot.discord.rest import DiscordRest  # noqa: PLC0415 - built on first use

        return DiscordRest.from_settings(services.secret_settings)

    lambda_runtime = "AWS_LAMBDA_FUNCTION_NAME" in os.environ if in_lambda is None else in_lambda
    return Services(
        settings=settings,
        verifier=SignatureVerifier(
            settings.discord_public_key,
            max_age_s=settings.signature_max_age_s,
            max_future_s=settings.signature_max_future_s,
        ),
        allowlist=Allowlist.from_settings(settings),
        observability=build_observability(in_lambda=lambda_runtime, level=settings.log_level),
        store_factory=make_store,
        discord_factory=make_discord,
        job_runner=run_job,
        dispatcher_factory=(lambda _services: dispatcher) if dispatcher is not None else None,
        launcher_factory=(lambda _services: launcher) if launcher is not None else None,
        accounts_factory=(lambda _services: accounts) if accounts is not None else None,
    )


def services_from_environment() -> Services:
    """The entry point's services: settings from ``TIMMYBOT_*`` variables."""
    settings = Settings.from_env()
    if "AWS_LAMBDA_FUNCTION_NAME" not in os.environ:
        configure_local_logging(settings.log_level)
    return bootstrap(settings)


class ServiceHolder:
    """Builds the services once per container, on first request; tests swap them with ``override``."""

    def __init__(self, factory: Callable[[], Services]) -> None:
        self._factory = factory
        self._services: Services | None = None
        self._lock = threading.Lock()

    def get(self) -> Services:
        if self._services is None:
            with self._lock:
                if self._services is None:
                    self._services = self._factory()
        return self._services

    @contextlib.contextmanager
    def override(self, services: Services) -> Iterator[Services]:
        """Use ``services`` inside the ``with`` block, then restore what was there."""
        with self._lock:
            previous, self._services = self._services, services
        try:
            yield services
        finally:
            with self._lock:
                self._services = previous


app_services = ServiceHolder(services_from_environment)


__all__ = ["ServiceHolder", "Services", "app_services", "bootstrap", "services_from_environment"]
