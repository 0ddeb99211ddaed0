"""The worker Lambda's entry (``@app.lambda_function(name="worker")``): a job dict → ``run_play_job``.

The thread and inline dispatchers call ``run_job`` with the api process's own services.
A malformed event is logged and dropped (a retry cannot fix it); infrastructure failures inside
the job propagate so Lambda retries them (the job is idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from timmybot.play import PlayJob, run_play_job

if TYPE_CHECKING:
    from chalicelib.bootstrap import Services

_log = logging.getLogger(__name__)


def run_job(services: Services, event: Mapping[str, Any]) -> None:
    try:
        job = PlayJob.from_dict(event)
    except (TypeError, ValueError) as error:
        _log.error("dropping a malformed play job (interaction %s): %s", event.get("interaction_id"), error)
        return
    run_play_job(
        job,
        store=services.store,
        rest=services.discord,
        launcher=services.launcher,
        settings=services.settings,
    )
