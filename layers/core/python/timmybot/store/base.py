"""The Store port.

One single-table layout serves every access pattern of BRIEF §4, so the two adapters only
differ in a handful of item primitives (get, conditional put, batch put/get/delete, the sparse
"active" index). Everything with meaning — the queue model, the lease with generations, the
desired/actual split, dedupe — is written once here, in terms of those primitives, so SQLite and
DynamoDB cannot drift apart. (The same shape as Powertools' idempotency persistence layer.)

Keys: ``timmybot.store.keys`` is the table's map (the guild record, queue entries, the guild's
history, interaction dedupe, the track cache, and the small records of the other modules).
"""

from __future__ import annotations

import abc
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from timmybot.errors import ConflictError, InvalidInputError, QueueEmptyError, QueueFullError, StaleGenerationError
from timmybot.filters import Filters
from timmybot.models import (
    Actual,
    Desired,
    GuildRecord,
    GuildSettings,
    Lease,
    LeaseState,
    LoopMode,
    QueueEntry,
    root_id,
)
from timmybot.store.keys import (
    DEDUPE_SK,
    GUILD_HISTORY_SK,
    GUILD_SK,
    HISTORY_SLOTS,
    TRACK_SK,
    dedupe_pk,
    entry_sk,
    guild_id_of,
    guild_pk,
    history_slot_sk,
    history_slot_sks,
    is_core_key,
    track_pk,
)
from timmybot.store.limits import item_size

if TYPE_CHECKING:
    from timmybot.sources.models import Track

_log = logging.getLogger(__name__)

TRACK_CACHE_TTL_S = 7 * 24 * 3600
GUILD_HISTORY_MAX = HISTORY_SLOTS
ENTRY_TTL_S = 30 * 24 * 3600  # an entry never listed (crashed append) disappears after this
MAX_CAS_ATTEMPTS = 200

Key = tuple[str, str]


@dataclass(frozen=True)
class StoredItem:
    data: dict[str, Any]
    version: int
    expires_at: float | None


@dataclass(frozen=True)
class QueuePage:
    entries: list[QueueEntry]
    total: int
    total_duration_s: int  # sum of known durations of every queued entry
    unknown_durations: int  # entries whose duration is unknown (live streams, local files)


Clock = Callable[[], float]


class Store(abc.ABC):
    """Guild records, queues, voice-task leases and interaction dedupe (BRIEF §4: 1, 2, 3, 8)."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        #: Called with each guild record this store wrote (the control plane sends a wake hint to
        #: the guild's voice task from here); None in the voice task itself.
        self.on_guild_write: Callable[[GuildRecord], None] | None = None

    # ------------------------------------------------------------------ adapter primitives
    @abc.abstractmethod
    def _get_item(self, key: Key, *, consistent: bool = True) -> StoredItem | None:
        """The item, or None. May return an expired item: the caller filters.

        ``consistent=False`` allows an eventually consistent read (DynamoDB: half a read unit),
        which may return an older version than the last write; a backend with only one copy
        (SQLite) may ignore it. Conditional writes always start from a consistent read.
        """

    @abc.abstractmethod
    def _put_item(
        self,
        key: Key,
        data: dict[str, Any],
        *,
        expected_version: int | None,
        now: float,
        expires_at: float | None = None,
        active: bool = False,
    ) -> bool:
        """Conditional put storing ``version = (expected_version or 0) + 1``.

        ``expected_version=None``: only if no item exists or the existing one has expired
        (``expires_at < now``). Otherwise only if the stored version equals ``expected_version``.
        ``active`` puts the item in the sparse active index. Returns False if the condition failed.
        """

    @abc.abstractmethod
    def _put_items(self, items: Sequence[tuple[Key, dict[str, Any], float | None]]) -> None:
        """Unconditional batch put of (key, data, expires_at), version 1."""

    @abc.abstractmethod
    def _get_items(self, keys: Sequence[Key]) -> dict[Key, StoredItem]:
        """Batch get; missing keys are simply absent from the result."""

    @abc.abstractmethod
    def _delete_items(self, keys: Sequence[Key]) -> None:
        """Unconditional batch delete."""

    @abc.abstractmethod
    def _purge_expired(self, now: float) -> int:
        """Delete items whose ``expires_at`` has passed, where the backend has no TTL of its own."""

    @abc.abstractmethod
    def _active_keys(self) -> list[Key]:
        """Keys of every item currently in the sparse active index (never a table scan)."""

    # ------------------------------------------------------------------ guild record
    def get_guild(self, guild_id: str, *, consistent: bool = True) -> GuildRecord:
        """The guild record. ``consistent=False`` may return an older version than the newest
        write (an eventually consistent read, half the price on DynamoDB): a caller that takes it
        must compare ``version`` with the newest it has seen and ignore an older record."""
        record, _ = self._load_guild(guild_id, consistent=consistent)
        return record

    def update_guild(self, guild_id: str, change: Callable[[GuildRecord], GuildRecord]) -> GuildRecord:
        """Apply ``change`` atomically (optimistic concurrency, retried on conflict).

        ``change`` must be a pure function of the record: it may run several times. It may raise a
        domain error to abort without writing. Returns the record as written.
        """
        for attempt in range(MAX_CAS_ATTEMPTS):
            current, exists = self._load_guild(guild_id)
            updated = change(current)
            if updated is current:
                return current
            now = self._clock()
            written = replace(updated, version=current.version + 1)
            ok = self._put_item(
                (guild_pk(guild_id), GUILD_SK),
                written.to_dict(),
                expected_version=current.version if exists else None,
                now=now,
                active=written.is_active(now),
            )
            if ok:
                if self.on_guild_write is not None:
                    self._notify(written)
                return written
            _backoff(attempt)
        raise ConflictError()

    def _notify(self, record: GuildRecord) -> None:
        assert self.on_guild_write is not None
        try:
            self.on_guild_write(record)
        except Exception:  # a hint is only a hint: the write stands, the task will poll it
            _log.warning("guild-write hook failed for guild %s", record.guild_id, exc_info=True)

    def update_desired(self, guild_id: str, **changes: Any) -> GuildRecord:
        """Set desired fields (paused, volume, loop, autoplay, seek_ms); counters via ``bump_*``."""
        bumps = {name: changes.pop(name) for name in ("bump_skip", "bump_stop", "bump_seek") if name in changes}

        def change(record: GuildRecord) -> GuildRecord:
            desired = replace(record.desired, **changes)
            if bumps.get("bump_skip"):
                desired = replace(desired, skip_seq=desired.skip_seq + 1)
            if bumps.get("bump_stop"):
                desired = replace(desired, stop_seq=desired.stop_seq + 1)
            if bumps.get("bump_seek"):
                desired = replace(desired, seek_seq=desired.seek_seq + 1)
            return record.evolve(desired=desired, last_active=self._clock())

        return self.update_guild(guild_id, change)

    def set_filters(self, guild_id: str, filters: Filters) -> GuildRecord:
        """/filter, /speed and /pitch: the sound the voice task plays with (desired state, like volume)."""

        def change(record: GuildRecord) -> GuildRecord:
            desired = replace(record.desired, filter=filters.preset, speed=filters.speed, pitch=filters.pitch)
            return record.evolve(desired=desired, last_active=self._clock())

        return self.update_guild(guild_id, change)

    def update_settings(self, guild_id: str, **changes: Any) -> GuildRecord:
        return self.update_guild(guild_id, lambda r: r.evolve(settings=replace(r.settings, **changes)))

    def set_channels(self, guild_id: str, *, voice_channel_id: str, text_channel_id: str | None) -> GuildRecord:
        return self.update_guild(
            guild_id,
            lambda r: r.evolve(voice_channel_id=voice_channel_id, text_channel_id=text_channel_id),
        )

    def write_actual(self, guild_id: str, generation: int, actual: Actual) -> GuildRecord:
        """The voice task reports its state; refused (StaleGenerationError) with a superseded generation."""

        def change(record: GuildRecord) -> GuildRecord:
            _require_generation(record, generation)
            return record.evolve(actual=replace(actual, updated_at=self._clock()))

        return self.update_guild(guild_id, change)

    # ------------------------------------------------------------------ queue
    def append_entries(self, guild_id: str, entries: Sequence[QueueEntry], *, cap: int) -> GuildRecord:
        """Write the entry items, then ONE conditional update appends their ids (BRIEF §4.2).

        Idempotent: entries whose ids are already queued (or now playing) are not added again,
        so a redelivered job enqueues nothing. Raises QueueFullError past ``cap``.
        """
        if not entries:
            return self.get_guild(guild_id)
        now = self._clock()
        pk = guild_pk(guild_id)
        self._put_items([((pk, entry_sk(e.entry_id)), e.to_dict(), now + ENTRY_TTL_S) for e in entries])
        new_ids = [e.entry_id for e in entries]

        def change(record: GuildRecord) -> GuildRecord:
            present = set(record.queue)
            if record.actual.now_playing is not None:
                present.add(record.actual.now_playing.entry_id)
            fresh = [i for i in new_ids if i not in present]
            if not fresh:
                return record
            if len(record.queue) + len(fresh) > cap:
                raise QueueFullError(f"The queue is full ({cap} tracks at most, {len(record.queue)} queued now).")
            return record.evolve(queue=record.queue + tuple(fresh), last_active=self._clock())

        try:
            return self.update_guild(guild_id, change)
        except QueueFullError:
            current = self.get_guild(guild_id)
            listed = set(current.queue)
            if current.actual.now_playing is not None:
                listed.add(current.actual.now_playing.entry_id)
            self._delete_items([(pk, entry_sk(i)) for i in new_ids if i not in listed])
            raise

    def insert_entries(
        self,
        guild_id: str,
        entries: Sequence[QueueEntry],
        *,
        cap: int,
        now_play: bool = False,
        comeback: tuple[str, QueueEntry] | None = None,
    ) -> GuildRecord:
        """Put ``entries`` at the head of the queue, in order ("play next"), with ONE conditional update.

        With ``now_play`` the current track is skipped as well ("play now"). ``comeback`` is
        ``(id of the entry playing now, the entry that replays it)``: it goes right after the new
        ones, but only if that entry is still the one playing when the update lands. Every item is
        written before the record lists it. Idempotent like ``append_entries``: a redelivered job
        finds its ids queued or playing and changes nothing.

        Under loop queue a new entry that replays a queued track (``root_id``: /back's replay) takes
        that track's place in the cycle: the older entry leaves the queue.
        """
        if not entries:
            return self.get_guild(guild_id)
        pk = guild_pk(guild_id)
        now = self._clock()
        items = [*entries, comeback[1]] if comeback is not None else list(entries)
        self._put_items([((pk, entry_sk(e.entry_id)), e.to_dict(), now + ENTRY_TTL_S) for e in items])
        new_ids = [e.entry_id for e in entries]
        replaced: list[str] = []

        def change(record: GuildRecord) -> GuildRecord:
            replaced[:] = []
            playing = record.actual.now_playing
            present = set(record.queue) | ({playing.entry_id} if playing is not None else set())
            fresh = [i for i in new_ids if i not in present]
            if not fresh:
                return record
            back: list[str] = []
            if now_play and comeback is not None and playing is not None and playing.entry_id == comeback[0]:
                back = [comeback[1].entry_id] if comeback[1].entry_id not in present else []
            kept = record.queue
            if record.desired.loop is LoopMode.QUEUE:
                roots = {root_id(i) for i in fresh}
                kept = tuple(i for i in record.queue if root_id(i) not in roots)
                replaced[:] = [i for i in record.queue if i not in kept]
            if len(kept) + len(fresh) + len(back) > cap:
                raise QueueFullError(f"The queue is full ({cap} tracks at most, {len(kept)} queued now).")
            queue = tuple(fresh) + tuple(back) + kept
            if not now_play or playing is None:
                return record.evolve(queue=queue, last_active=self._clock())
            desired = replace(record.desired, skip_seq=record.desired.skip_seq + 1)
            return record.evolve(
                queue=queue, desired=desired, skip_votes=(), skip_votes_entry=None, last_active=self._clock()
            )

        try:
            written = self.update_guild(guild_id, change)
        except QueueFullError:
            self._delete_items([(pk, entry_sk(e.entry_id)) for e in items])
            raise
        if comeback is not None and comeback[1].entry_id not in written.queue:
            self._delete_items([(pk, entry_sk(comeback[1].entry_id))])  # the track it stood for had ended
        if replaced:
            self._delete_items([(pk, entry_sk(i)) for i in replaced])  # their replays took their places
        return written

    def get_entries(self, guild_id: str, entry_ids: Sequence[str]) -> list[QueueEntry]:
        """Entries in the given order; ids whose item is missing or expired are left out."""
        pk = guild_pk(guild_id)
        found = self._get_items([(pk, entry_sk(i)) for i in entry_ids])
        fresh = [self._fresh(found.get((pk, entry_sk(i)))) for i in entry_ids]
        return [QueueEntry.from_dict(item.data) for item in fresh if item is not None]

    def page_queue(self, guild_id: str, *, offset: int, limit: int) -> QueuePage:
        record = self.get_guild(guild_id)
        every = self.get_entries(guild_id, record.queue)
        known = [e.duration_s for e in every if e.duration_s is not None]
        return QueuePage(
            entries=every[offset : offset + limit],
            total=len(record.queue),
            total_duration_s=sum(known),
            unknown_durations=len(every) - len(known),
        )

    def remove_at(self, guild_id: str, position: int) -> QueueEntry:
        """Remove the entry at 1-based ``position``."""
        removed: list[str] = []

        def change(record: GuildRecord) -> GuildRecord:
            _check_position(record, position, "position")
            queue = list(record.queue)
            removed[:] = [queue.pop(position - 1)]
            return record.evolve(queue=tuple(queue))

        self.update_guild(guild_id, change)
        entry = self.get_entries(guild_id, removed)
        self._delete_items([(guild_pk(guild_id), entry_sk(removed[0]))])
        if not entry:
            raise QueueEmptyError("That entry vanished while removing it.")
        return entry[0]

    def move(self, guild_id: str, source: int, destination: int) -> QueueEntry:
        """Move the entry at 1-based ``source`` to 1-based ``destination``."""
        moved: list[str] = []

        def change(record: GuildRecord) -> GuildRecord:
            _check_position(record, source, "from")
            _check_position(record, destination, "to")
            queue = list(record.queue)
            moved[:] = [queue.pop(source - 1)]
            queue.insert(destination - 1, moved[0])
            return record.evolve(queue=tuple(queue))

        self.update_guild(guild_id, change)
        return self.get_entries(guild_id, moved)[0]

    def skip_to(
        self, guild_id: str, position: int, *, check: Callable[[GuildRecord, Sequence[str]], None] | None = None
    ) -> tuple[GuildRecord, tuple[str, ...]]:
        """Make the entry at 1-based ``position`` the next one and skip the current track, atomically.

        The entries before it are dropped, or, with loop queue on, moved to the end (in order).
        ``check(record, skipped_ids)`` may raise a domain error to refuse (who may skip those).
        Returns the record as written and the ids that were skipped over.
        """
        skipped: list[str] = []

        def change(record: GuildRecord) -> GuildRecord:
            _check_position(record, position, "position")
            queue = list(record.queue)
            passed, rest = queue[: position - 1], queue[position - 1 :]
            if check is not None:
                check(record, passed)
            skipped[:] = passed
            looping = record.desired.loop is LoopMode.QUEUE
            desired = replace(record.desired, skip_seq=record.desired.skip_seq + 1)
            return record.evolve(
                queue=tuple(rest + passed) if looping else tuple(rest),
                desired=desired,
                skip_votes=(),
                skip_votes_entry=None,
                last_active=self._clock(),
            )

        record = self.update_guild(guild_id, change)
        if record.desired.loop is not LoopMode.QUEUE and skipped:
            self._delete_items([(guild_pk(guild_id), entry_sk(i)) for i in skipped])
        return record, tuple(skipped)

    def shuffle(self, guild_id: str, rng: random.Random | None = None) -> int:
        shuffler = rng or random.SystemRandom()
        count: list[int] = [0]

        def change(record: GuildRecord) -> GuildRecord:
            if not record.queue:
                raise QueueEmptyError()
            queue = list(record.queue)
            shuffler.shuffle(queue)
            count[0] = len(queue)
            return record.evolve(queue=tuple(queue))

        self.update_guild(guild_id, change)
        return count[0]

    def clear_queue(self, guild_id: str) -> int:
        cleared: list[str] = []

        def change(record: GuildRecord) -> GuildRecord:
            cleared[:] = list(record.queue)
            return record.evolve(queue=()) if record.queue else record

        self.update_guild(guild_id, change)
        self._delete_items([(guild_pk(guild_id), entry_sk(i)) for i in cleared])
        return len(cleared)

    def pop_head(self, guild_id: str, generation: int, *, requeue_current: bool = False) -> QueueEntry | None:
        """Move the head id into "now playing" (None when the queue is empty).

        With ``requeue_current`` (loop queue) the entry that just finished goes to the tail first,
        unless a replay of the same track (``root_id``) is queued already: that one is its place in
        the cycle. Conditional on the task's lease generation.
        """
        finished: list[str] = []
        requeued: list[QueueEntry] = []

        def change(record: GuildRecord) -> GuildRecord:
            _require_generation(record, generation)
            queue = list(record.queue)
            current = record.actual.now_playing
            finished[:] = []
            requeued[:] = []
            if current is not None:
                # A track is in the loop queue's cycle once: a queued replay of it (a comeback) takes its place.
                if requeue_current and not any(root_id(i) == root_id(current.entry_id) for i in queue):
                    queue.append(current.entry_id)
                    requeued[:] = [current]
                else:
                    finished[:] = [current.entry_id]
            head_entry: QueueEntry | None = None
            while queue:
                found = self.get_entries(guild_id, queue[:1])
                if found:
                    head_entry = found[0]
                    break
                # A dangling id (its entry expired or was deleted) would otherwise block the queue.
                _log.warning("Queue of guild %s lists a missing entry %s; skipping it", guild_id, queue[0])
                queue.pop(0)
            actual = replace(
                record.actual,
                now_playing=head_entry,
                started_at=None,
                position_ms=0,
            )
            return record.evolve(queue=tuple(queue[1:]), actual=actual, last_active=self._clock())

        record = self.update_guild(guild_id, change)
        before = requeued[0] if requeued else None
        if finished:
            self._delete_items([(guild_pk(guild_id), entry_sk(i)) for i in finished])
        if before is not None and before.start_ms and before.entry_id in record.queue:
            # Looping round, a resumed track plays whole next time.
            pk = guild_pk(guild_id)
            restarted = replace(before, start_ms=0)
            self._put_items([((pk, entry_sk(before.entry_id)), restarted.to_dict(), self._clock() + ENTRY_TTL_S)])
        return record.actual.now_playing

    # ------------------------------------------------------------------ lease (BRIEF §4.3)
    def acquire_lease(self, guild_id: str, *, holder: str, state: LeaseState, ttl_s: float,
                      wake: str | None = None) -> Lease | None:  # fmt: skip
        """Take the lease if it is free, released or expired; bumps the generation.

        A new holder adopts the desired counters as applied, so a stale skip never skips the
        first track of a new session. Returns None if someone else holds a live lease.
        """

        def change(record: GuildRecord) -> GuildRecord:
            now = self._clock()
            if record.lease.is_live(now):
                raise _LeaseHeld()
            lease = Lease(
                state=state,
                generation=record.lease.generation + 1,
                holder=holder,
                expires_at=now + ttl_s,
                resume=record.lease.resume,
                wake=wake,
                voice_gave_up_at=record.lease.voice_gave_up_at,
            )
            return record.evolve(lease=lease, actual=_adopt_counters(record.actual, record.desired))

        try:
            return self.update_guild(guild_id, change).lease
        except _LeaseHeld:
            return None

    def claim_lease(self, guild_id: str, *, generation: int, holder: str, ttl_s: float,
                    wake: str | None = None) -> Lease | None:  # fmt: skip
        """A launched task turns its ``launching`` lease (same generation) into ``running``."""

        def change(record: GuildRecord) -> GuildRecord:
            now = self._clock()
            lease = record.lease
            if lease.generation != generation or lease.state != LeaseState.LAUNCHING or lease.expires_at <= now:
                raise _LeaseHeld()
            return record.evolve(
                lease=replace(lease, state=LeaseState.RUNNING, holder=holder, expires_at=now + ttl_s, wake=wake),
                actual=_adopt_counters(record.actual, record.desired),
            )

        try:
            return self.update_guild(guild_id, change).lease
        except _LeaseHeld:
            return None

    def renew_lease(self, guild_id: str, *, generation: int, ttl_s: float, wake: str | None = None) -> bool:
        """Extend the lease. ``wake`` (the task's wake address) is written again each time: a
        control plane of an older release rewrites records without it during a rolling deploy."""

        def change(record: GuildRecord) -> GuildRecord:
            _require_generation(record, generation)
            lease = replace(record.lease, expires_at=self._clock() + ttl_s)
            if wake is not None:
                lease = replace(lease, wake=wake)
            return record.evolve(lease=lease)

        try:
            self.update_guild(guild_id, change)
        except StaleGenerationError:
            return False
        return True

    def release_lease(self, guild_id: str, *, generation: int, resume_position_ms: int | None = None,
                      voice_gave_up: bool = False) -> bool:  # fmt: skip
        """Give the lease up (``released``).

        With ``resume_position_ms`` (SIGTERM, a deploy, a voice connection given up) the current
        entry goes back to the head of the queue and the lease remembers where to continue;
        otherwise the current entry is done. ``voice_gave_up`` keeps the reaper from relaunching
        for a while (each relaunch costs an identify); a release without it clears an earlier mark.
        """
        finished: list[str] = []

        def change(record: GuildRecord) -> GuildRecord:
            _require_generation(record, generation)
            current = record.actual.now_playing
            queue = record.queue
            resume: dict[str, Any] | None = None
            finished[:] = []
            if current is not None and resume_position_ms is not None:
                queue = (current.entry_id, *queue)
                resume = {"entry_id": current.entry_id, "position_ms": int(resume_position_ms)}
            elif current is not None:
                finished[:] = [current.entry_id]
            # A task that ends on its own terms (not giving up on voice) proves voice works again: the
            # reaper may relaunch the guild at once, whatever an earlier generation gave up on
            gave_up = self._clock() if voice_gave_up else None
            lease = replace(record.lease, state=LeaseState.RELEASED, expires_at=0.0, resume=resume, wake=None,
                            voice_gave_up_at=gave_up)  # fmt: skip
            actual = replace(record.actual, now_playing=None, started_at=None, position_ms=0, listener_ids=())
            return record.evolve(lease=lease, actual=actual, queue=queue)

        try:
            self.update_guild(guild_id, change)
        except StaleGenerationError:
            return False
        if finished:
            self._delete_items([(guild_pk(guild_id), entry_sk(i)) for i in finished])
        return True

    def purge_expired(self) -> int:
        """Remove expired items (SQLite); DynamoDB's TTL does this by itself. Returns how many."""
        return self._purge_expired(self._clock())

    def active_guild_ids(self) -> list[str]:
        """Guilds with a lease or queued music, read from the sparse index."""
        return sorted(g for pk, sk in self._active_keys() if sk == GUILD_SK and (g := guild_id_of(pk)) is not None)

    # ------------------------------------------------------------------ interaction dedupe (BRIEF §4.8)
    def claim_interaction(self, interaction_id: str, *, ttl_s: float) -> bool:
        """True for the first delivery of ``interaction_id``; False for a repeat within the TTL."""
        now = self._clock()
        return self._put_item(
            (dedupe_pk(interaction_id), DEDUPE_SK),
            {"response": None},
            expected_version=None,
            now=now,
            expires_at=now + ttl_s,
        )

    def save_interaction_response(self, interaction_id: str, response: str, *, ttl_s: float) -> None:
        now = self._clock()
        key = (dedupe_pk(interaction_id), DEDUPE_SK)
        item = self._get_item(key)
        if item is None:
            return
        self._put_item(key, {"response": response}, expected_version=item.version, now=now, expires_at=now + ttl_s)

    def release_interaction(self, interaction_id: str) -> bool:
        """Give up a claim whose run failed, so a retry may claim it at once. Only a claim still in
        progress and unchanged since it was read is released (a saved answer is kept). True if released."""
        now = self._clock()
        key = (dedupe_pk(interaction_id), DEDUPE_SK)
        item = self._fresh(self._get_item(key))
        if item is None or item.data.get("response") is not None:
            return False
        # Rewritten as already expired (conditional on its version): absent to every reader and to
        # the next claim, and DynamoDB's TTL removes it.
        return self._put_item(key, {"response": None}, expected_version=item.version, now=now, expires_at=now - 1)

    def interaction_response(self, interaction_id: str) -> str | None:
        """The saved answer to a repeated interaction (None while the first is still being handled)."""
        item = self._fresh(self._get_item((dedupe_pk(interaction_id), DEDUPE_SK)))
        if item is None:
            return None
        response = item.data.get("response")
        return str(response) if response is not None else None

    # ------------------------------------------------------------------ track cache (BRIEF §4.7)
    def get_cached_track(self, source: str, source_id: str) -> Track | None:
        """Resolved metadata of (source, id), or None when absent or expired."""
        item = self._fresh(self._get_item((track_pk(source, source_id), TRACK_SK)))
        if item is None:
            return None
        from timmybot.sources.models import Track  # noqa: PLC0415 - plain data; keeps the store import-light

        try:
            return Track.from_dict(item.data)
        except (KeyError, TypeError, ValueError):
            _log.warning("Track cache item %s/%s is malformed; ignoring it", source, source_id)
            return None

    def put_cached_track(self, track: Track, *, ttl_s: float = TRACK_CACHE_TTL_S) -> None:
        """Remember ``track``'s metadata (never a stream URL: those expire) for ``ttl_s`` seconds."""
        expires_at = self._clock() + ttl_s
        self._put_items([((track_pk(track.source, track.source_id), TRACK_SK), track.to_dict(), expires_at)])

    # ------------------------------------------------------------------ small records (caches, breakers, budgets)
    def get_record(self, pk: str, sk: str) -> dict[str, Any] | None:
        """A small auxiliary record (track cache, circuit breaker, identify budget…); expired = absent."""
        item = self._fresh(self._get_item((pk, sk)))
        return dict(item.data) if item is not None else None

    def update_record(
        self,
        pk: str,
        sk: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        *,
        ttl_s: float | None = None,
    ) -> dict[str, Any] | None:
        """Atomically replace a small record with ``change(current)`` (optimistic concurrency).

        ``change`` gets None when the record is absent or expired and must be pure (it may run
        several times); returning the same object writes nothing. Raises ConflictError after
        repeated races. Keys must not be guild or dedupe keys (``keys.is_core_key``).
        """
        if is_core_key(pk):
            raise ValueError("auxiliary records may not use guild or dedupe keys")
        return self._update_item((pk, sk), change, ttl_s=ttl_s)

    def _update_item(
        self,
        key: Key,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        *,
        ttl_s: float | None = None,
    ) -> dict[str, Any] | None:
        pk, sk = key
        for attempt in range(MAX_CAS_ATTEMPTS):
            item = self._get_item((pk, sk))
            fresh = self._fresh(item)
            current = dict(fresh.data) if fresh is not None else None
            updated = change(current)
            if updated is current or updated is None:
                return current
            now = self._clock()
            ok = self._put_item(
                (pk, sk),
                updated,
                expected_version=item.version if fresh is not None and item is not None else None,
                now=now,
                expires_at=now + ttl_s if ttl_s is not None else None,
            )
            if ok:
                return updated
            _backoff(attempt)
        raise ConflictError()

    # ------------------------------------------------------------------ guild history (issue 18)
    def record_played(self, guild_id: str, entry: QueueEntry, *, now: float, seq: int) -> None:
        """Note that ``entry`` started playing, as the guild's play number ``seq``.

        One small item of its own (``G#{guild}`` / ``H#{seq % 50}``, see ``keys.history_slot_sk``),
        written unconditionally: about one write unit and no read, where the legacy single item
        (``HISTORY``, rewritten whole at every track) cost ten to twenty-five. ``seq`` comes from the
        voice task's ``Actual.played_seq``; noting the same ``seq`` again (a retried write) rewrites
        the same slot."""
        key = (guild_pk(guild_id), history_slot_sk(seq % HISTORY_SLOTS))
        self._put_items([(key, history_slot(key, entry, now=now, seq=seq), None)])

    def guild_history(self, guild_id: str) -> list[QueueEntry]:
        """The tracks played in the guild, newest first (the one playing now, if any, is the first).

        ONE batch get: the ring's 50 slots and the legacy item, which an older voice task may still
        write during a rolling deploy (and guilds that played before the ring have). Both are merged
        by when they played, newest first, each entry once (its newest play), at most 50."""
        pk = guild_pk(guild_id)
        legacy_key = (pk, GUILD_HISTORY_SK)
        slot_keys = [(pk, sk) for sk in history_slot_sks()]
        found = self._get_items([*slot_keys, legacy_key])
        slots = [
            (int(item.data.get("seq") or 0), raw)
            for key in slot_keys
            if (item := self._fresh(found.get(key))) is not None and isinstance(raw := item.data, dict)
        ]
        ring = [raw for _, raw in sorted(slots, key=lambda pair: pair[0], reverse=True)]
        legacy_item = self._fresh(found.get(legacy_key))
        legacy = [i for i in (legacy_item.data.get("items") or ()) if isinstance(i, dict)] if legacy_item else []
        played: list[QueueEntry] = []
        seen: set[str] = set()
        for raw in _newest_first(ring, legacy):
            entry_id = str(raw.get("entry_id") or "")
            if entry_id in seen or not isinstance(raw.get("track"), dict):
                continue
            seen.add(entry_id)
            played.append(
                QueueEntry(
                    entry_id=entry_id,
                    track=dict(raw["track"]),
                    requester_id=str(raw.get("requester_id") or ""),
                    added_at=float(raw.get("played_at") or 0.0),
                )
            )
        return played[:GUILD_HISTORY_MAX]

    def forget_requester(self, guild_id: str, user_id: str) -> int:
        """/forget-me: keep the guild history's tracks, drop ``user_id`` as their requester, in the
        ring's slots and in the legacy item. Returns how many plays named them.

        A slot is rewritten only if it still holds the version read (a conditional put); a voice
        task that writes a new play into that very slot in between wins, and its play is newer than
        the one forgotten."""
        pk = guild_pk(guild_id)
        slot_keys = [(pk, sk) for sk in history_slot_sks()]
        dropped = 0
        for key, item in self._get_items(slot_keys).items():
            fresh = self._fresh(item)
            if fresh is None or fresh.data.get("requester_id") != user_id:
                continue
            dropped += 1
            data = {**fresh.data, "requester_id": ""}
            self._put_item(key, data, expected_version=fresh.version, now=self._clock())
        legacy = [0]

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            items = [dict(i) for i in (current or {}).get("items") or () if isinstance(i, dict)]
            legacy[0] = sum(1 for i in items if i.get("requester_id") == user_id)
            if not legacy[0]:
                return current
            for i in items:
                if i.get("requester_id") == user_id:
                    i["requester_id"] = ""
            return {"items": items}

        self._update_item((pk, GUILD_HISTORY_SK), change)
        return dropped + legacy[0]

    def delete_record(self, pk: str, sk: str) -> bool:
        """Delete a small auxiliary record (forget-me, spent OAuth state); True if a live one existed."""
        if is_core_key(pk):
            raise ValueError("auxiliary records may not use guild or dedupe keys")
        existed = self._fresh(self._get_item((pk, sk))) is not None
        self._delete_items([(pk, sk)])
        return existed

    # ------------------------------------------------------------------ helpers
    def _fresh(self, item: StoredItem | None) -> StoredItem | None:
        if item is None or (item.expires_at is not None and item.expires_at < self._clock()):
            return None
        return item

    def _load_guild(self, guild_id: str, *, consistent: bool = True) -> tuple[GuildRecord, bool]:
        item = self._get_item((guild_pk(guild_id), GUILD_SK), consistent=consistent)
        if item is None:
            return GuildRecord(guild_id=guild_id), False
        data = dict(item.data)
        data["version"] = item.version
        return GuildRecord.from_dict(data), True


class _LeaseHeld(Exception):
    """Internal: aborts a lease change without writing."""


def _adopt_counters(actual: Actual, desired: Desired) -> Actual:
    return replace(
        actual,
        applied_skip_seq=desired.skip_seq,
        applied_stop_seq=desired.stop_seq,
        applied_seek_seq=desired.seek_seq,
    )


def _require_generation(record: GuildRecord, generation: int) -> None:
    if record.lease.generation != generation or record.lease.state not in (
        LeaseState.LAUNCHING,
        LeaseState.RUNNING,
    ):
        raise StaleGenerationError("This voice task's lease was superseded.")


def _check_position(record: GuildRecord, position: int, name: str) -> None:
    if not record.queue:
        raise QueueEmptyError()
    if not 1 <= position <= len(record.queue):
        raise InvalidInputError(
            f"`{name}` must be between 1 and {len(record.queue)} (the queue has {len(record.queue)} tracks)."
        )


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))  # noqa: S311 - jitter, not crypto


#: What a history slot keeps of a track: what /history shows and what queueing it again needs
#: (``Track.from_dict``); the title and artist capped in bytes, so that a slot stays within one
#: write unit (1 KB) for any link up to about 300 bytes.
SLOT_TRACK_FIELDS = ("source", "source_id", "title", "url", "duration_s", "artist", "thumbnail", "isrc")
SLOT_TITLE_BYTES = 200
SLOT_ARTIST_BYTES = 100
WRITE_UNIT_BYTES = 1024


def history_slot(key: Key, entry: QueueEntry, *, now: float, seq: int) -> dict[str, Any]:
    """The data of one history slot: small (the thumbnail goes when the slot would pass 1 KB)."""
    track = {name: entry.track[name] for name in SLOT_TRACK_FIELDS if entry.track.get(name) is not None}
    for name, limit in (("title", SLOT_TITLE_BYTES), ("artist", SLOT_ARTIST_BYTES)):
        if isinstance(track.get(name), str):
            track[name] = cap_bytes(track[name], limit)
    data: dict[str, Any] = {
        "entry_id": entry.entry_id,
        "track": track,
        "requester_id": entry.requester_id,
        "played_at": round(now, 3),
        "seq": seq,
    }
    if item_size(key, data) > WRITE_UNIT_BYTES:
        track.pop("thumbnail", None)
    return data


def cap_bytes(value: str, limit: int) -> str:
    """``value`` in at most ``limit`` UTF-8 bytes, cut at a character with an ellipsis."""
    if len(value.encode("utf-8", "surrogatepass")) <= limit:
        return value
    ellipsis = "…"
    budget = limit - len(ellipsis.encode())
    out = value.encode("utf-8", "surrogatepass")[:budget].decode("utf-8", "ignore")
    return out + ellipsis


def _newest_first(ring: list[dict[str, Any]], legacy: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Two histories, each newest first, merged by ``played_at`` (the ring's play first on a tie)."""
    i = j = 0
    while i < len(ring) or j < len(legacy):
        take_ring = j >= len(legacy) or (
            i < len(ring) and float(ring[i].get("played_at") or 0.0) >= float(legacy[j].get("played_at") or 0.0)
        )
        if take_ring:
            yield ring[i]
            i += 1
        else:
            yield legacy[j]
            j += 1


def chunked(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = [
    "DEDUPE_SK",
    "GUILD_SK",
    "TRACK_SK",
    "GuildSettings",
    "Key",
    "QueuePage",
    "Store",
    "StoredItem",
    "chunked",
    "entry_sk",
    "guild_pk",
    "track_pk",
]
