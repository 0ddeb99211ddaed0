"""The reaper (BRIEF §1): every minute, relaunch guilds whose voice task died with music queued.

It reads the sparse index of active guilds (a lease or queued music), never the whole table:

* a running/launching lease that EXPIRED with music queued or playing, recently active → the task
  died without cleaning up (SIGKILL, a crashed host): launch a new one, which replays the track;
* a lease RELEASED with a resume point (SIGTERM: Spot interruption, deploy) → launch a new one,
  which continues at the saved position;
* a launching lease whose task the launcher reports as stopped (e.g. ECS DescribeTasks says
  STOPPED before it ever claimed the lease) → free it and launch again;
* a lease released cleanly (/stop, idle, alone, kicked) → nothing: people left on purpose;
* a task that gave up on its voice connection (Discord would not take it back before the deadline)
  → no relaunch for ``reaper_voice_cooldown_s``: each launch costs an identify, and a voice server
  that refuses us would otherwise be retried every minute. A /play relaunches it at once;
* anything else no longer active is rewritten so it drops out of the index.

It also purges expired records where the store does not do so itself (SQLite; DynamoDB has TTL).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from timmybot.config import Settings
from timmybot.launcher.base import LAUNCHER_HOLDER, Launcher, LaunchOutcome
from timmybot.models import GuildRecord, LeaseState
from timmybot.store.base import Store

_log = logging.getLogger(__name__)


@dataclass
class ReapReport:
    checked: int = 0
    relaunched: list[str] = field(default_factory=list)
    freed: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    purged: int = 0


def needs_relaunch(record: GuildRecord, now: float, *, recent_s: float, voice_cooldown_s: float = 0.0) -> bool:
    """Music was left behind by a task that did not finish on purpose (and did not just give up on
    its voice connection)."""
    lease = record.lease
    has_music = bool(record.queue) or record.actual.now_playing is not None
    if not has_music or now - record.last_active > recent_s:
        return False
    if lease.voice_gave_up_at is not None and now - lease.voice_gave_up_at < voice_cooldown_s:
        return False
    died = lease.state in (LeaseState.RUNNING, LeaseState.LAUNCHING) and lease.expires_at <= now
    interrupted = lease.state is LeaseState.RELEASED and lease.resume is not None
    return died or interrupted


def reap(store: Store, launcher: Launcher, settings: Settings, *, clock: Callable[[], float] = time.time) -> ReapReport:
    report = ReapReport()
    now = clock()
    for guild_id in store.active_guild_ids():
        report.checked += 1
        record = store.get_guild(guild_id)
        lease = record.lease
        if lease.is_live(now):
            if _launch_died(launcher, record):
                _log.warning("voice task %s of guild %s stopped before it started", lease.holder, guild_id)
                _expire(store, guild_id, lease.generation)
                report.freed.append(guild_id)
                _relaunch(launcher, guild_id, report)
            continue
        if needs_relaunch(record, now, recent_s=settings.reaper_recent_s,
                          voice_cooldown_s=settings.reaper_voice_cooldown_s):  # fmt: skip
            _log.info("relaunching guild %s (lease %s, generation %s)", guild_id, lease.state, lease.generation)
            _relaunch(launcher, guild_id, report)
        elif _cooling_down(record, now, settings):
            _log.info("guild %s: its last task gave up on voice %.0f s ago; not relaunching yet", guild_id,
                      now - (lease.voice_gave_up_at or now))  # fmt: skip
        elif not record.queue and record.actual.now_playing is None:
            _deactivate(store, guild_id)
            report.deactivated.append(guild_id)
    report.purged = store.purge_expired()
    _log.info(
        "reaper: checked %s, relaunched %s, freed %s, deactivated %s, purged %s",
        report.checked,
        len(report.relaunched),
        len(report.freed),
        len(report.deactivated),
        report.purged,
    )
    return report


def _cooling_down(record: GuildRecord, now: float, settings: Settings) -> bool:
    gave_up = record.lease.voice_gave_up_at
    return gave_up is not None and now - gave_up < settings.reaper_voice_cooldown_s


def _launch_died(launcher: Launcher, record: GuildRecord) -> bool:
    """A launching lease whose task the launcher knows to be stopped (ECS: DescribeTasks STOPPED)."""
    lease = record.lease
    if lease.state is not LeaseState.LAUNCHING or not lease.holder or lease.holder == LAUNCHER_HOLDER:
        return False
    return launcher.is_alive(lease.holder) is False


def _relaunch(launcher: Launcher, guild_id: str, report: ReapReport) -> None:
    result = launcher.ensure_running(guild_id)
    if result.outcome is LaunchOutcome.STARTED:
        report.relaunched.append(guild_id)
    elif result.outcome is LaunchOutcome.FAILED:
        report.failed.append(guild_id)


def _expire(store: Store, guild_id: str, generation: int) -> None:
    def change(record: GuildRecord) -> GuildRecord:
        lease = record.lease
        if lease.generation != generation or lease.state is not LeaseState.LAUNCHING:
            return record
        return record.evolve(lease=replace(lease, expires_at=0.0))

    store.update_guild(guild_id, change)


def _deactivate(store: Store, guild_id: str) -> None:
    """Rewrite a record whose lease ran out with nothing queued, so it leaves the active index."""

    def change(record: GuildRecord) -> GuildRecord:
        if record.lease.is_live(time.time()) or record.queue or record.actual.now_playing is not None:
            return record
        return record.evolve(lease=replace(record.lease, state=LeaseState.FREE, resume=None))

    store.update_guild(guild_id, change)
