"""The Launcher port: at most one live voice task per guild, guarded by the store's lease (BRIEF §4.3).

``ensure_running(guild)``:

1. ``acquire_lease(holder="launcher", state=LAUNCHING, ttl_s=launching_ttl_s)``. None means a task
   is launching or running already: it picks new tracks up by itself (ALREADY_RUNNING).
2. Otherwise start a task with ``TIMMYBOT_GUILD_ID`` and ``TIMMYBOT_LEASE_GENERATION``; the task
   turns the lease into ``running`` with ``claim_lease(generation=…)``.
3. Record the holder (task ARN, ``pid:<n>``) in the lease, conditional on that generation and
   the lease still being ``launching`` (a fast task may have claimed it already).
4. A start failure frees the lease (conditional on the generation) and answers FAILED with the
   sentence the user reads.

Adapters implement ``_start`` and ``is_alive``; the lease logic lives here, once.
"""

from __future__ import annotations

import abc
import enum
import logging
from dataclasses import dataclass, replace

from timmybot.config import Settings
from timmybot.errors import BotRestingError, TimmyError
from timmybot.identify import IdentifyBudget
from timmybot.models import GuildRecord, LeaseState
from timmybot.store.base import Store

_log = logging.getLogger(__name__)

LAUNCHER_HOLDER = "launcher"
GUILD_ENV = "TIMMYBOT_GUILD_ID"
GENERATION_ENV = "TIMMYBOT_LEASE_GENERATION"
START_FAILED_TEXT = "I couldn't start the player right now. Your music is queued; try /play again in a minute."


class LaunchOutcome(enum.StrEnum):
    STARTED = "started"  # this call started a task
    ALREADY_RUNNING = "already_running"  # a task is launching or running; it will pick the queue up
    FAILED = "failed"  # no task could be started; the lease was freed
    DISABLED = "disabled"  # launcher=none: voice tasks are started outside TimmyBot


@dataclass(frozen=True)
class LaunchResult:
    outcome: LaunchOutcome
    message: str = ""  # the user's sentence on FAILED
    holder: str | None = None  # task ARN / pid:<n> on STARTED
    generation: int | None = None  # the lease generation handed to the task on STARTED

    @property
    def started(self) -> bool:
        return self.outcome is LaunchOutcome.STARTED


class LaunchFailedError(TimmyError):
    """An adapter could not start a task; ``user_message`` says so to the user."""

    user_message = START_FAILED_TEXT


class Launcher(abc.ABC):
    """Starts the per-guild voice task; the lease makes concurrent calls start at most one."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def ensure_running(self, guild_id: str) -> LaunchResult:
        lease = self._store.acquire_lease(
            guild_id, holder=LAUNCHER_HOLDER, state=LeaseState.LAUNCHING, ttl_s=self._settings.launching_ttl_s
        )
        if lease is None:
            _log.info("voice task for guild %s is already launching or running", guild_id)
            return LaunchResult(LaunchOutcome.ALREADY_RUNNING)
        generation = lease.generation
        try:
            # Every new task costs one IDENTIFY: refuse before the daily budget runs out (BRIEF §4.4).
            IdentifyBudget(self._store, reserve_fraction=self._settings.identify_reserve_fraction).check_launch()
        except BotRestingError as resting:
            self._free_lease(guild_id, generation)
            return LaunchResult(LaunchOutcome.FAILED, message=resting.user_message)
        try:
            holder = self._start(guild_id, generation)
        except LaunchFailedError as error:
            _log.warning("could not start a voice task for guild %s (generation %s): %s", guild_id, generation, error)
            self._free_lease(guild_id, generation)
            return LaunchResult(LaunchOutcome.FAILED, message=error.user_message)
        except Exception:
            _log.exception("starting a voice task for guild %s (generation %s) failed", guild_id, generation)
            self._free_lease(guild_id, generation)
            return LaunchResult(LaunchOutcome.FAILED, message=START_FAILED_TEXT)
        self._record_holder(guild_id, generation, holder)
        _log.info("started voice task %s for guild %s (generation %s)", holder, guild_id, generation)
        return LaunchResult(LaunchOutcome.STARTED, holder=holder, generation=generation)

    @abc.abstractmethod
    def _start(self, guild_id: str, generation: int) -> str:
        """Start one task for ``guild_id`` holding ``generation``; return its holder id.

        Raise ``LaunchFailedError`` (with the user's sentence) when no task could be started.
        """

    @abc.abstractmethod
    def is_alive(self, holder: str) -> bool | None:
        """Whether the task ``holder`` still runs; None when this adapter cannot tell (not its task)."""

    # ------------------------------------------------------------------ lease bookkeeping
    def _record_holder(self, guild_id: str, generation: int, holder: str) -> None:
        def change(record: GuildRecord) -> GuildRecord:
            lease = record.lease
            if lease.generation != generation or lease.state is not LeaseState.LAUNCHING:
                return record  # claimed (or superseded) already: nothing to record
            return record.evolve(lease=replace(lease, holder=holder))

        self._store.update_guild(guild_id, change)

    def _free_lease(self, guild_id: str, generation: int) -> None:
        """Undo our ``launching`` lease, conditional on its generation.

        Unlike ``Store.release_lease`` this leaves the queue and the actual state alone: a task
        that never started played nothing, and an entry left "now playing" by a crashed earlier
        task must not be dropped as finished.
        """

        def change(record: GuildRecord) -> GuildRecord:
            lease = record.lease
            if lease.generation != generation or lease.state is not LeaseState.LAUNCHING:
                return record
            return record.evolve(lease=replace(lease, state=LeaseState.RELEASED, expires_at=0.0))

        try:
            self._store.update_guild(guild_id, change)
        except Exception:
            _log.exception("could not free the launching lease of guild %s (generation %s)", guild_id, generation)
            raise


class DisabledLauncher(Launcher):
    """``launcher=none``: never starts anything (voice tasks are run by hand or by a test)."""

    def ensure_running(self, guild_id: str) -> LaunchResult:
        return LaunchResult(LaunchOutcome.DISABLED)

    def _start(self, guild_id: str, generation: int) -> str:  # pragma: no cover - never called
        raise LaunchFailedError()

    def is_alive(self, holder: str) -> bool | None:
        return None
