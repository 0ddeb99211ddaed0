"""The worker Lambda's entry (``@app.lambda_function(name="worker")``): a job dict → ``run_play_job``
(or ``run_personal_job`` for the personal-music commands' jobs, ``run_search_job`` for /search's,
``run_lyrics_job`` for /lyrics', ``run_playlist_job`` for /playlist's).

The thread and inline dispatchers call ``run_job`` with the api process's own services (the
bootstrap hands it to them). Every job runs with ``Services.secret_settings``: the secrets the
worker needs (the Spotify app secret for Spotify links, the bot token) are read from SSM once per
container, on the first job; locally they come from the environment and nothing is fetched.
A malformed event is logged and dropped (a retry cannot fix it); infrastructure failures inside
the job propagate so Lambda retries them (the job is idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from timmybot.worker.jobs import PlayJob

if TYPE_CHECKING:
    from chalicelib.services import Services

# The worker's own modules (sources, launcher, personal libraries) are imported when a job runs: the
# api and reaper functions load this module too (one app.py), and must not pay for them.

_log = logging.getLogger(__name__)


def run_job(services: Services, event: Mapping[str, Any]) -> None:
    from timmybot.lyrics.job import is_lyrics_job  # noqa: PLC0415
    from timmybot.playlists.jobs import is_playlist_job  # noqa: PLC0415
    from timmybot.worker.personal_jobs import is_personal_job  # noqa: PLC0415
    from timmybot.worker.play import run_play_job  # noqa: PLC0415
    from timmybot.worker.search import is_search_job  # noqa: PLC0415

    if is_personal_job(event):
        _run_personal_job(services, event)
        return
    if is_search_job(event):
        _run_search_job(services, event)
        return
    if is_lyrics_job(event):
        _run_lyrics_job(services, event)
        return
    if is_playlist_job(event):
        _run_playlist_job(services, event)
        return
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
        sources=services.sources,
        settings=services.secret_settings,
    )


def _run_personal_job(services: Services, event: Mapping[str, Any]) -> None:
    """A personal-music job (timmybot.worker.personal_jobs): the user's libraries, history, mixes."""
    from timmybot.library.personal import Library  # noqa: PLC0415
    from timmybot.worker.personal_jobs import PersonalJob, PersonalPorts, run_personal_job  # noqa: PLC0415

    try:
        job = PersonalJob.from_dict(event)
    except (TypeError, ValueError) as error:
        _log.error("dropping a malformed personal job (interaction %s): %s", event.get("interaction_id"), error)
        return
    settings = services.secret_settings
    ports = PersonalPorts(
        store=services.store,
        rest=services.discord,
        launcher=services.launcher,
        sources=services.sources,
        settings=settings,
        library=Library(services.accounts, settings),
    )
    run_personal_job(job, ports)


def _run_search_job(services: Services, event: Mapping[str, Any]) -> None:
    """/search (timmybot.worker.search): results through the source chain, ranked, as a menu."""
    from timmybot.worker.search import SearchJob, run_search_job  # noqa: PLC0415

    try:
        job = SearchJob.from_dict(event)
    except (TypeError, ValueError) as error:
        _log.error("dropping a malformed search job (interaction %s): %s", event.get("interaction_id"), error)
        return
    run_search_job(
        job, store=services.store, rest=services.discord, sources=services.sources, settings=services.secret_settings
    )


def _run_lyrics_job(services: Services, event: Mapping[str, Any]) -> None:
    """/lyrics (timmybot.lyrics.job): LRCLIB through the store cache, as paged embeds."""
    from timmybot.lyrics.job import LyricsJob, run_lyrics_job  # noqa: PLC0415

    try:
        job = LyricsJob.from_dict(event)
    except (TypeError, ValueError) as error:
        _log.error("dropping a malformed lyrics job (interaction %s): %s", event.get("interaction_id"), error)
        return
    run_lyrics_job(job, store=services.store, rest=services.discord, settings=services.settings)


def _run_playlist_job(services: Services, event: Mapping[str, Any]) -> None:
    """/playlist load, add (a search), import and export (timmybot.playlists.jobs)."""
    from timmybot.playlists.jobs import PlaylistJob, PlaylistPorts, run_playlist_job  # noqa: PLC0415

    try:
        job = PlaylistJob.from_dict(event)
    except (TypeError, ValueError) as error:
        _log.error("dropping a malformed playlist job (interaction %s): %s", event.get("interaction_id"), error)
        return
    ports = PlaylistPorts(
        store=services.store,
        rest=services.discord,
        launcher=services.launcher,
        sources=services.sources,
        settings=services.secret_settings,
    )
    run_playlist_job(job, ports)
