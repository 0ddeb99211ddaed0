"""The api process's wiring: ``bootstrap(settings)`` builds every service from typed settings.

Heavy things are built on first use and then kept for the container's life: the store (and with
it boto3) only when a request passed verification and the allowlist; the Discord REST client only
when something calls Discord. ``app_services`` is what ``app.py`` uses; tests install their own
services with ``app_services.override(bootstrap(test_settings))``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chalicelib.allowlist import Allowlist
from chalicelib.observability import Observability, build_observability, configure_local_logging
from chalicelib.signature import SignatureVerifier
from timmybot import netguard
from timmybot.config import Settings

if TYPE_CHECKING:
    from chalicelib.dispatch import Dispatcher
    from timmybot.accounts import LinkedAccounts
    from timmybot.discord.rest import DiscordRest
    from timmybot.launcher import Launcher
    from timmybot.sources.chain import SourceChain
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a request needs. ``store``, ``discord``, ``dispatcher`` and ``launcher`` are built lazily, once."""

    settings: Settings
    verifier: SignatureVerifier
    allowlist: Allowlist
    observability: Observability
    store_factory: Callable[[], Store]
    discord_factory: Callable[[], DiscordRest]
    dispatcher_factory: Callable[[Services], Dispatcher] | None = field(default=None, repr=False)
    launcher_factory: Callable[[Services], Launcher] | None = field(default=None, repr=False)
    accounts_factory: Callable[[Services], LinkedAccounts] | None = field(default=None, repr=False)
    _sources: SourceChain | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)
    _discord: DiscordRest | None = field(default=None, repr=False)
    _dispatcher: Dispatcher | None = field(default=None, repr=False)
    _launcher: Launcher | None = field(default=None, repr=False)
    _accounts: LinkedAccounts | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self.store_factory()
        return self._store

    @property
    def discord(self) -> DiscordRest:
        if self._discord is None:
            with self._lock:
                if self._discord is None:
                    self._discord = self.discord_factory()
        return self._discord

    @property
    def dispatcher(self) -> Dispatcher:
        """Hands slow jobs (/play) to the worker: Lambda async invoke, a thread pool, or inline."""
        if self._dispatcher is None:
            with self._lock:
                if self._dispatcher is None:
                    self._dispatcher = (self.dispatcher_factory or _default_dispatcher)(self)
        return self._dispatcher

    @property
    def launcher(self) -> Launcher:
        """Starts the guild's voice task (the worker's side; built on first use)."""
        if self._launcher is None:
            _ = self.store  # the launcher needs it: build it first, since building it takes the same lock
            with self._lock:
                if self._launcher is None:
                    self._launcher = (self.launcher_factory or _default_launcher)(self)
        return self._launcher

    @property
    def accounts(self) -> LinkedAccounts:
        """Linked accounts and the token vault: built only for account commands and the OAuth callback."""
        if self._accounts is None:
            _ = self.store  # built first: building it takes the same lock
            with self._lock:
                if self._accounts is None:
                    self._accounts = (self.accounts_factory or _default_accounts)(self)
        return self._accounts

    @property
    def sources(self) -> SourceChain:
        """The worker's source chain over ``store`` (breakers, track cache): built on the first job."""
        if self._sources is None:
            _ = self.store  # built first: building it takes the same lock
            with self._lock:
                if self._sources is None:
                    self._sources = _default_sources(self)
        return self._sources

    @property
    def store_built(self) -> bool:
        return self._store is not None

    @property
    def accounts_built(self) -> bool:
        return self._accounts is not None


def _default_dispatcher(services: Services) -> Dispatcher:
    from chalicelib.dispatch import build_dispatcher  # noqa: PLC0415 - built on the first /play
    from chalicelib.worker import run_job  # noqa: PLC0415

    return build_dispatcher(services.settings, lambda job: run_job(services, job))


def _default_launcher(services: Services) -> Launcher:
    from timmybot.launcher import build_launcher  # noqa: PLC0415 - the worker's side only

    return build_launcher(services.settings, services.store)


def _default_sources(services: Services) -> SourceChain:
    from chalicelib.worker import worker_settings  # noqa: PLC0415 - the worker's side only
    from timmybot.sources.chain import SourceChain  # noqa: PLC0415

    # The worker's settings carry the Spotify app secret (read once per container, shared with the jobs).
    return SourceChain.over_store(worker_settings(services).source_settings(), services.store)


def _default_accounts(services: Services) -> LinkedAccounts:
    from timmybot.accounts import build_linked_accounts  # noqa: PLC0415 - account commands only
    from timmybot.secrets import load_parameter_secrets  # noqa: PLC0415
    from timmybot.vault import build_vault  # noqa: PLC0415

    settings = load_parameter_secrets(services.settings, oauth=True)
    _log.info("building the %s vault", settings.vault_backend)
    return build_linked_accounts(settings, services.store, build_vault(settings))


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

    def make_discord() -> DiscordRest:
        if discord is not None:
            return discord
        from timmybot.discord.rest import DiscordRest  # noqa: PLC0415 - built on first use
        from timmybot.secrets import load_parameter_secrets  # noqa: PLC0415

        return DiscordRest.from_settings(load_parameter_secrets(settings))

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
