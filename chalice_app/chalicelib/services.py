"""What one api process holds: ``Services``, its ports built lazily, once, and ``PORTS``, the
names a handler may ask for.

``chalicelib.bootstrap`` builds a ``Services`` from settings and hands it the worker's entry point
(``job_runner``), so this module imports neither the bootstrap nor the worker. A command handler
names the ports it uses as parameters (``store``, ``dispatcher``, ``accounts``, ``discord``,
``launcher``); ``chalicelib.commands.base.bind`` checks those names against ``PORTS`` at import and
the router passes exactly those, so a command that does not name ``accounts`` never builds the vault.

Secrets are read once per process, on first need (``secret_settings``): the Discord REST client,
the accounts service and the worker's jobs all share that one resolved ``Settings``, and nothing on
the interactions endpoint reads a secret unless its command needs a port that does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.allowlist import Allowlist
from chalicelib.observability import Observability
from chalicelib.signature import SignatureVerifier
from timmybot.config import Settings

if TYPE_CHECKING:
    from chalicelib.dispatch import Dispatcher
    from timmybot.accounts.linked import LinkedAccounts
    from timmybot.discord.rest import DiscordRest
    from timmybot.launcher import Launcher
    from timmybot.sources.chain import SourceChain
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

JobRunner = Callable[["Services", Mapping[str, Any]], None]


@dataclass
class Services:
    """Everything a request needs. The ports (``store``, ``discord``, ``dispatcher``, ``launcher``,
    ``accounts``) and ``secret_settings`` are built on first use, once."""

    settings: Settings
    verifier: SignatureVerifier
    allowlist: Allowlist
    observability: Observability
    store_factory: Callable[[], Store]
    discord_factory: Callable[[Services], DiscordRest]
    job_runner: JobRunner | None = field(default=None, repr=False)  # the worker's entry (the thread/inline dispatchers)
    dispatcher_factory: Callable[[Services], Dispatcher] | None = field(default=None, repr=False)
    launcher_factory: Callable[[Services], Launcher] | None = field(default=None, repr=False)
    accounts_factory: Callable[[Services], LinkedAccounts] | None = field(default=None, repr=False)
    secrets_loader: Callable[[Settings], Settings] | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)
    _discord: DiscordRest | None = field(default=None, repr=False)
    _dispatcher: Dispatcher | None = field(default=None, repr=False)
    _launcher: Launcher | None = field(default=None, repr=False)
    _accounts: LinkedAccounts | None = field(default=None, repr=False)
    _sources: SourceChain | None = field(default=None, repr=False)
    _secret_settings: Settings | None = field(default=None, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def secret_settings(self) -> Settings:
        """The settings with every secret they name filled in (the bot token, the OAuth client
        secrets, the link key): read from SSM once per process, on first need; locally the values
        come from the environment and nothing is fetched. The one ``Settings`` the worker's jobs,
        the Discord client and the accounts service use."""
        if self._secret_settings is None:
            with self._lock:
                if self._secret_settings is None:
                    self._secret_settings = (self.secrets_loader or _load_secrets)(self.settings)
        return self._secret_settings

    @property
    def secrets_loaded(self) -> bool:
        return self._secret_settings is not None

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
                    self._discord = self.discord_factory(self)
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
            with self._lock:
                if self._launcher is None:
                    self._launcher = (self.launcher_factory or _default_launcher)(self)
        return self._launcher

    @property
    def accounts(self) -> LinkedAccounts:
        """Linked accounts and the token vault: built only for account commands and the OAuth callback."""
        if self._accounts is None:
            with self._lock:
                if self._accounts is None:
                    self._accounts = (self.accounts_factory or _default_accounts)(self)
        return self._accounts

    @property
    def sources(self) -> SourceChain:
        """The worker's source chain over ``store`` (breakers, track cache): built on the first job."""
        if self._sources is None:
            with self._lock:
                if self._sources is None:
                    self._sources = _default_sources(self)
        return self._sources

    def built_ports(self) -> frozenset[str]:
        """The names (of ``PORTS``) of the ports built so far in this process."""
        return frozenset(name for name in PORTS if getattr(self, f"_{name}") is not None)

    @property
    def store_built(self) -> bool:
        return self._store is not None

    @property
    def accounts_built(self) -> bool:
        return self._accounts is not None


#: The ports a command or component handler may name as a parameter, and how each is obtained.
#: Only what a handler names is built (each on first use, then kept for the container's life).
PORTS: Mapping[str, Callable[[Services], object]] = {
    "store": lambda services: services.store,
    "dispatcher": lambda services: services.dispatcher,
    "accounts": lambda services: services.accounts,
    "discord": lambda services: services.discord,
    "launcher": lambda services: services.launcher,
}


def _load_secrets(settings: Settings) -> Settings:
    from timmybot.secrets import load_parameter_secrets  # noqa: PLC0415 - read on first need only

    return load_parameter_secrets(settings, oauth=True)


def _default_dispatcher(services: Services) -> Dispatcher:
    from chalicelib.dispatch import build_dispatcher  # noqa: PLC0415 - built on the first /play

    runner = services.job_runner
    if runner is None:
        raise RuntimeError("these services have no job runner: bootstrap() gives them the worker's entry point")
    return build_dispatcher(services.settings, lambda job: runner(services, job))


def _default_launcher(services: Services) -> Launcher:
    from timmybot.launcher import build_launcher  # noqa: PLC0415 - the worker's side only

    return build_launcher(services.settings, services.store)


def _default_sources(services: Services) -> SourceChain:
    from timmybot.sources.chain import SourceChain  # noqa: PLC0415 - the worker's side only

    # The secret settings carry the Spotify app secret (read once per container, shared with the jobs).
    return SourceChain.over_store(services.secret_settings.source_settings(), services.store)


def _default_accounts(services: Services) -> LinkedAccounts:
    from timmybot.accounts.linked import build_linked_accounts  # noqa: PLC0415 - account commands only
    from timmybot.accounts.vault import build_vault  # noqa: PLC0415

    settings = services.secret_settings
    _log.info("building the %s vault", settings.vault_backend)
    return build_linked_accounts(settings, services.store, build_vault(settings))
