"""TimmyBot's api Lambda: the routes, and nothing else (the logic lives in chalicelib)."""

from typing import Any

from chalice.app import Chalice, CloudWatchEvent, Rate, Request, Response

from chalicelib.bootstrap import app_services
from chalicelib.interactions import handle_interaction
from chalicelib.oauth_callback import handle_spotify_callback, handle_spotify_confirm
from chalicelib.reaper import run_reaper
from chalicelib.worker import run_job
from timmybot import __version__

# configure_logs=False: Chalice would otherwise take over the "timmybot" logger (our package
# namespace) at import; chalicelib.observability configures logging once per container.
app = Chalice(app_name="timmybot", configure_logs=False)


@app.route("/interactions", methods=["POST"], content_types=["application/json"])
def interactions() -> Response:
    """Discord's interactions endpoint (signed slash commands, buttons, autocomplete, modals)."""
    request = _request()
    result = handle_interaction(app_services.get(), request.headers, request.raw_body)
    return Response(body=dict(result.body), status_code=result.status, headers={"Content-Type": "application/json"})


@app.route("/oauth/spotify/callback", methods=["GET"])
def spotify_callback() -> Response:
    """The browser's return from Spotify's consent page: a page naming the Discord account, with a confirm form."""
    page = handle_spotify_callback(app_services.get(), _request().query_params)
    return Response(body=page.body, status_code=page.status, headers=dict(page.headers))


@app.route("/oauth/spotify/callback", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def spotify_confirm() -> Response:
    """The callback page's Confirm button: only this links the account (see chalicelib.oauth_callback)."""
    page = handle_spotify_confirm(app_services.get(), _request().raw_body)
    return Response(body=page.body, status_code=page.status, headers=dict(page.headers))


@app.lambda_function(name="worker")
def worker(event: dict[str, Any], context: Any) -> None:
    """Lambda "worker": one /play job per asynchronous invoke (see chalicelib.worker)."""
    run_job(app_services.get(), event)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="reaper")
def reaper(event: CloudWatchEvent) -> None:
    """Lambda "reaper": relaunch guilds whose voice task died with music queued (see timmybot.reaper)."""
    run_reaper(app_services.get())


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


def _request() -> Request:
    request = app.current_request
    assert request is not None, "only called while Chalice handles a request"
    return request
