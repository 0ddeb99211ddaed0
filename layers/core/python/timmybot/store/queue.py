"""The queue's operations (BRIEF §4.2): entry items first, then ONE conditional update of the ids.

Each change goes through ``StoreCore.update_guild``, which keeps the queue's totals in the same write.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace

from timmybot.errors import InvalidInputError, QueueEmptyError, QueueFullError
from timmybot.models import GuildRecord, LoopMode, QueueEntry, QueuePage, QueueTotals, root_id
from timmybot.store.core import ENTRY_TTL_S, StoreCore, _check_position, _log, _require_generation
from timmybot.store.keys import GUILD_SK, entry_sk, guild_pk
from timmybot.store.schema import VIEWS

MAX_PAGE = 100  # one batch get (DynamoDB's limit of keys)
#: What /queue reads of the guild record: what plays and the totals (which carry the queue's head),
#: not the list of ids.
VIEW_FIELDS = VIEWS[GUILD_SK]


class QueueOps(StoreCore):
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
            return self.update_guild(guild_id, change, entries=entries)
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
            written = self.update_guild(guild_id, change, entries=items)
        except QueueFullError:
            self._delete_items([(pk, entry_sk(e.entry_id)) for e in items])
            raise
        if comeback is not None and comeback[1].entry_id not in written.queue:
            self._delete_items([(pk, entry_sk(comeback[1].entry_id))])  # the track it stood for had ended
        if replaced:
            self._delete_items([(pk, entry_sk(i)) for i in replaced])  # their replays took their places
        return written

    def insert_at(self, guild_id: str, position: int, entries: Sequence[QueueEntry], *, cap: int) -> GuildRecord:
        """Put ``entries`` before the entry at 1-based ``position`` (``len(queue) + 1``: at the end),
        in order, with ONE conditional update: all of them or none (QueueFullError past ``cap``).

        Every item is written before the record lists it. Idempotent like ``append_entries``: ids
        already queued or playing are not added again. A position past the end puts them at the end.
        """
        if position < 1:
            raise InvalidInputError("`position` must be 1 or more.")
        if not entries:
            return self.get_guild(guild_id)
        pk = guild_pk(guild_id)
        now = self._clock()
        self._put_items([((pk, entry_sk(e.entry_id)), e.to_dict(), now + ENTRY_TTL_S) for e in entries])
        new_ids = [e.entry_id for e in entries]

        def change(record: GuildRecord) -> GuildRecord:
            playing = record.actual.now_playing
            present = set(record.queue) | ({playing.entry_id} if playing is not None else set())
            fresh = tuple(i for i in new_ids if i not in present)
            if not fresh:
                return record
            if len(record.queue) + len(fresh) > cap:
                raise QueueFullError(f"The queue is full ({cap} tracks at most, {len(record.queue)} queued now).")
            at = min(position, len(record.queue) + 1) - 1
            queue = record.queue[:at] + fresh + record.queue[at:]
            return record.evolve(queue=queue, last_active=self._clock())

        try:
            return self.update_guild(guild_id, change, entries=entries)
        except QueueFullError:
            current = self.get_guild(guild_id)
            listed = set(current.queue) | (
                {current.actual.now_playing.entry_id} if current.actual.now_playing else set()
            )
            self._delete_items([(pk, entry_sk(i)) for i in new_ids if i not in listed])
            raise

    def queue_page(self, guild_id: str, *, number: int, size: int) -> QueuePage:
        """Page ``number`` (from 1; past the last page: the last) of ``size`` entries, for /queue.

        The same cost for 5 entries or 500: one read of the guild record without its list of ids
        (its totals carry the head of the queue) and one batch get of the page's entries. A page
        past that head, or a record a release without totals wrote since, reads the whole record.
        """
        number = max(1, number)
        item = self._get_item_fields((guild_pk(guild_id), GUILD_SK), VIEW_FIELDS)
        if item is None:  # a guild that never queued anything
            return QueuePage(entries=[], total=0, total_duration_s=0, unknown_durations=0)
        totals = QueueTotals.from_dict(item.data.get("queue_totals"))
        if totals is not None and totals.version == item.version:
            number = min(number, max(1, -(-totals.count // size)))
            offset = (number - 1) * size
            head = totals.head_ids()
            if offset + size <= len(head) or len(head) == totals.count:
                return QueuePage(
                    entries=self.get_entries(guild_id, head[offset : offset + size]),
                    total=totals.count,
                    total_duration_s=totals.duration_s,
                    unknown_durations=totals.unknown,
                    number=number,
                    now_playing=_now_playing(item.data.get("actual")),
                )
        record = self.get_guild(guild_id)
        number = min(number, max(1, -(-len(record.queue) // size)))
        page = self.page_queue(guild_id, offset=(number - 1) * size, limit=size, record=record)
        return replace(page, number=number, now_playing=record.actual.now_playing)

    def page_queue(self, guild_id: str, *, offset: int, limit: int, record: GuildRecord | None = None) -> QueuePage:
        """One page of the queue and the whole queue's totals: ONE batch get of the page's entries
        (at most ``MAX_PAGE`` keys), whatever the queue's length. ``record`` is the guild record the
        caller read already (it is not read again)."""
        if not 0 < limit <= MAX_PAGE:
            raise ValueError(f"a queue page holds 1 to {MAX_PAGE} entries")
        record = record if record is not None else self.get_guild(guild_id)
        totals = record.queue_totals
        if totals is None or not totals.describes(record.queue):
            totals = self.count_totals(guild_id, record.queue)  # a record written before totals
        return QueuePage(
            entries=self.get_entries(guild_id, record.queue[max(0, offset) : max(0, offset) + limit]),
            total=len(record.queue),
            total_duration_s=totals.duration_s,
            unknown_durations=totals.unknown,
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

    def remove_range(self, guild_id: str, start: int, end: int) -> list[QueueEntry]:
        """Remove the entries at 1-based positions ``start`` to ``end`` (both included), with ONE
        conditional update. Returns the removed entries, in queue order."""
        if end < start:
            raise InvalidInputError("`end` must not come before `start`.")
        removed: list[str] = []

        def change(record: GuildRecord) -> GuildRecord:
            _check_position(record, start, "start")
            _check_position(record, end, "end")
            removed[:] = record.queue[start - 1 : end]
            return record.evolve(queue=record.queue[: start - 1] + record.queue[end:])

        self.update_guild(guild_id, change)
        gone = self.get_entries(guild_id, removed)
        self._delete_items([(guild_pk(guild_id), entry_sk(i)) for i in removed])
        return gone

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


def _now_playing(actual: object) -> QueueEntry | None:
    """The entry playing, from the ``actual`` part of a guild record read without the rest."""
    raw = actual.get("now_playing") if isinstance(actual, dict) else None
    return QueueEntry.from_dict(raw) if isinstance(raw, dict) else None
