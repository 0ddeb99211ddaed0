"""How a worker job answers its interaction: the one place the deferred reply is edited.

The api answered "thinking…" (type 5) and handed a job over; the job's work runs here and its
result becomes the original response:

- the body ``run`` returns is edited in (unless ``send`` is False: the run sent its last edit
  itself, as the playlist export does with its file);
- a domain error (``TimmyError``) becomes its sentence, and the job ends normally;
- anything else is logged with the interaction id, the reply becomes ``apology`` (an edit that
  fails then is logged, never raised over the first error), and the error is re-raised so the
  worker's retry can run.

With ``once`` the run is claimed on the job's marker through ``timmybot.idempotency.run_once``
(Lambda async invoke delivers at least once): a redelivery after the job finished repeats the reply
it saved and runs nothing; one while it still runs leaves the edit to it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from timmybot import idempotency
from timmybot.errors import TimmyError

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.discord.rest import DiscordRest
    from timmybot.store.base import Store
    from timmybot.worker.jobs import InteractionJob

_log = logging.getLogger(__name__)

Body = dict[str, Any]


@dataclass(frozen=True)
class Once:
    """Claim the run on ``marker`` in ``store``: held for ``claim_ttl_s`` while it runs, its reply kept ``ttl_s``."""

    store: Store
    marker: str
    claim_ttl_s: float
    ttl_s: float

    @classmethod
    def for_worker(cls, store: Store, marker: str, settings: Settings) -> Once:
        """The worker's claim on ``marker``: held ``worker_claim_ttl_s``, its reply kept ``worker_dedupe_ttl_s``."""
        return cls(store, marker, settings.worker_claim_ttl_s, settings.worker_dedupe_ttl_s)


def sentence(content: str) -> Body:
    """A reply that is one sentence: it replaces any embed or component an earlier edit showed."""
    return {"content": content, "embeds": [], "components": []}


def answer(
    job: InteractionJob,
    rest: DiscordRest,
    run: Callable[[], Body],
    *,
    what: str,
    apology: str,
    once: Once | None = None,
    send: bool = True,
) -> Body | None:
    """Run ``run`` and edit the reply (see the module). ``what`` names the job in the logs ("play job").
    Returns the body this delivery ran to, or None when it ran nothing (a domain error, a repeat)."""

    def edit(body: Body) -> None:
        rest.edit_original(job.application_id, job.token, body)

    try:
        if once is None:
            body = run()
        else:
            outcome = idempotency.run_once(
                once.store, once.marker, run, save=json.dumps, claim_ttl_s=once.claim_ttl_s, ttl_s=once.ttl_s
            )
            if isinstance(outcome, idempotency.Repeat):
                _repeat(job, what, outcome, edit)
                return None
            body = outcome.value
    except TimmyError as error:
        _log.info("%s %s in guild %s: %s", what, job.interaction_id, job.guild_id, type(error).__name__)
        edit(sentence(error.user_message))
        return None
    except Exception:
        _log.exception("%s %s in guild %s failed", what, job.interaction_id, job.guild_id)
        try:
            edit(sentence(apology))
        except Exception:
            _log.exception("could not tell interaction %s that its %s failed", job.interaction_id, what)
        raise
    if send:
        edit(body)
    return body


def _repeat(job: InteractionJob, what: str, outcome: idempotency.Repeat, edit: Callable[[Body], None]) -> None:
    if outcome.saved is None:
        _log.info("%s %s is being handled by another delivery; leaving it the reply", what, job.interaction_id)
        return
    _log.info("%s %s was already handled; repeating its reply only", what, job.interaction_id)
    edit(json.loads(outcome.saved))
