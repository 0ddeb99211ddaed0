"""Interaction dedupe (BRIEF §4.8), the track cache (BRIEF §4.7) and the small auxiliary records."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from timmybot.store.core import StoreCore
from timmybot.store.keys import DEDUPE_SK, TRACK_SK, dedupe_pk, is_core_key, track_pk

if TYPE_CHECKING:
    from timmybot.models import Track

_log = logging.getLogger(__name__)

TRACK_CACHE_TTL_S = 7 * 24 * 3600


class RecordOps(StoreCore):
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
        from timmybot.models import Track  # noqa: PLC0415 - plain data; keeps the store import-light

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

    def delete_record(self, pk: str, sk: str) -> bool:
        """Delete a small auxiliary record (forget-me, spent OAuth state); True if a live one existed."""
        if is_core_key(pk):
            raise ValueError("auxiliary records may not use guild or dedupe keys")
        existed = self._fresh(self._get_item((pk, sk))) is not None
        self._delete_items([(pk, sk)])
        return existed
