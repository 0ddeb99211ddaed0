"""Run something once per key: claim it (a conditional write), run it, then save its result or
release the claim. The one place this flow is written (Powertools' idempotency handler is the shape).

- The first delivery claims ``key`` for ``claim_ttl_s`` and runs; what it returns is saved (as the
  text ``save`` makes of it) for ``ttl_s``, and handed back as ``First``.
- A repeat while the first still runs gets ``Repeat(saved=None)``; a repeat after it finished gets
  ``Repeat(saved=<that text>)``. Nothing runs a second time.
- If the run raises, the claim is released and the exception propagates: a retry (Lambda's, or
  Discord's) runs it again. A claim that outlives ``claim_ttl_s`` (a run killed mid-way, so nothing
  released it) can be claimed again, so a crashed run never blocks its retry for long.
- If saving the result fails, the result is still returned (the caller answers with it); a repeat
  then finds the claim in progress until it expires.

The interactions endpoint (interaction ids) and the worker's jobs (their markers, through
``timmybot.worker.answer``) use it, over the ``Store`` port's claim records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class First(Generic[T]):
    """This delivery ran: ``value`` is what the run returned."""

    value: T


@dataclass(frozen=True)
class Repeat:
    """A repeated delivery: what the first one saved, or None while it still runs."""

    saved: str | None

    @property
    def in_progress(self) -> bool:
        return self.saved is None


def run_once(
    store: Store,
    key: str,
    run: Callable[[], T],
    *,
    save: Callable[[T], str],
    claim_ttl_s: float,
    ttl_s: float,
) -> First[T] | Repeat:
    """Claim ``key``, run ``run`` and save ``save(result)``; a repeat gets what was saved (see the module)."""
    if not store.claim_interaction(key, ttl_s=claim_ttl_s):
        return Repeat(store.interaction_response(key))
    try:
        value = run()
    except BaseException:
        _release(store, key)
        raise
    try:
        store.save_interaction_response(key, save(value), ttl_s=ttl_s)
    except Exception:
        _log.exception("could not save the result of %s; a repeat finds it in progress until the claim expires", key)
    return First(value)


def _release(store: Store, key: str) -> None:
    try:
        store.release_interaction(key)
    except Exception:  # the run's own error is what propagates; the claim then simply expires
        _log.exception("could not release the claim %s; a retry can run once it expires", key)
