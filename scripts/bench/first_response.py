"""Benchmark: time to answer a signed interaction, cold (fresh process) and warm (in-process).

Cold: a fresh interpreter does what a cold Lambda does for its first signed ``/queue`` — import
``app``, bootstrap from ``TIMMYBOT_*`` settings (the Lambda flavour: ``AWS_LAMBDA_FUNCTION_NAME`` is
set, so Powertools logs and metrics are built), verify the Ed25519 signature, build the store, read
a 25-entry queue and render the answer — through Chalice's own Lambda entry point with an API
Gateway proxy event. Against SQLite (a temp file) and DynamoDB on a loopback moto server. Baseline
in the same run: a fresh interpreter that imports boto3 and creates one DynamoDB client.

Warm: signed /queue, /skip and /nowplaying (a track is playing, so /skip and /nowplaying take their
real path) through ``chalice.test.Client``, interleaved, over SQLite and over DynamoDB on moto.
Baseline in the same run, per request: signature verification + ``json.loads`` of the same body.

Queue length: warm signed /queue in a guild with 5 queued entries and in one with 500, interleaved,
over SQLite and over DynamoDB on moto; p99 of each and the ratio 500 / 5 (target ≤ 1.5: /queue
reads the guild record, with the queue's totals in it, and one batch get of the page). Baseline in
the same run, per request: signature verification + ``json.loads`` of the same body.

Every request is signed in advance; only answering it is timed. BRIEF §7 target: warm p99 ≤ 30 ms.

    .venv/bin/python scripts/bench/first_response.py [--cold-runs 5] [--requests 1000]
        [--moto-requests 200] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench._common import (
    FAKE_AWS_ENV,
    RESULT_MARKER,
    ChildRun,
    add_source_paths,
    child_env,
    median,
    ms,
    percentile,
    print_header,
    print_reproduce,
    run_child,
    table,
    verdict,
)

if TYPE_CHECKING:
    from chalice.test import Client

    from chalicelib.bootstrap import Services
    from tests.support.signing import Signer
    from timmybot.config import Settings

TARGET_WARM_P99_S = 0.030
TARGET_QUEUE_RATIO = 1.5  # /queue's p99 at 500 entries over its p99 at 5
QUEUE_LENGTH = 25
#: The guilds of the queue-length rows: entries queued in each (the main guild has QUEUE_LENGTH).
QUEUE_GUILDS = {5: "123456789012345605", 500: "123456789012345500"}
WARMUP_REQUESTS = 10
TABLE_NAME = "timmybot-bench"
WARM_COMMANDS = ("queue", "skip", "nowplaying")
# What each answer must contain: a fast wrong answer is not a figure.
EXPECTED_TEXT = {"queue": "Track q001", "skip": "skipped", "nowplaying": "Now Song"}
WATCHED = ("yt_dlp", "discord", "spotipy", "boto3", "nacl", "aws_lambda_powertools")
FORBIDDEN = ("yt_dlp", "discord", "spotipy")

# A cold Lambda: the runtime has parsed the event; the handler module is imported, then called.
_COLD_CHILD = """\
import time
top_time = time.time()
top = time.perf_counter()
import app as api
imported = time.perf_counter()
api.app_services.get()
bootstrapped = time.perf_counter()
import json, os, sys
event = json.loads(os.environ["BENCH_EVENT"])
answered_start = time.perf_counter()
response = api.app(event, None)
answered = time.perf_counter()
loaded = [name for name in {watched!r} if name in sys.modules]
print({marker!r} + json.dumps({{
    "top_time": top_time,
    "import_s": imported - top,
    "bootstrap_s": bootstrapped - imported,
    "request_s": answered - answered_start,
    "in_child_s": answered - top,
    "status": response["statusCode"],
    "body": response["body"],
    "loaded": loaded,
}}))
"""

_BASELINE_CHILD = """\
import time
top_time = time.time()
top = time.perf_counter()
import boto3
imported = time.perf_counter()
client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url={endpoint!r})
created = time.perf_counter()
import json
print({marker!r} + json.dumps({{
    "top_time": top_time,
    "import_s": imported - top,
    "bootstrap_s": created - imported,
    "request_s": 0.0,
    "in_child_s": created - top,
    "loaded": [],
}}))
"""


@dataclass(frozen=True)
class SignedRequest:
    name: str
    body: bytes
    headers: dict[str, str]


def signed(signer: Signer, name: str, guild_id: str | None = None) -> SignedRequest:
    from tests.support.signing import GUILD_ID, command  # noqa: PLC0415 - importable only after add_source_paths

    body = json.dumps(command(name, guild_id=guild_id or GUILD_ID)).encode()
    return SignedRequest(name, body, signer.headers(body))


def api_gateway_event(request: SignedRequest) -> dict[str, Any]:
    """The REST API (v1) proxy event API Gateway hands the Lambda for ``POST /interactions``."""
    return {
        "resource": "/interactions",
        "path": "/interactions",
        "httpMethod": "POST",
        "headers": request.headers,
        "multiValueHeaders": {key: [value] for key, value in request.headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/interactions",
            "httpMethod": "POST",
            "path": "/api/interactions",
            "stage": "api",
            "requestId": "bench",
        },
        "body": request.body.decode(),
        "isBase64Encoded": False,
    }


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``TIMMYBOT_*`` variables a deployed api Lambda would get for ``settings``."""
    env = {
        "TIMMYBOT_DISCORD_PUBLIC_KEY": settings.discord_public_key,
        "TIMMYBOT_DISCORD_APPLICATION_ID": settings.discord_application_id,
        "TIMMYBOT_STORE_BACKEND": settings.store_backend,
        "TIMMYBOT_SQLITE_PATH": settings.sqlite_path,
        "TIMMYBOT_DYNAMODB_TABLE": settings.dynamodb_table,
        "TIMMYBOT_AWS_REGION": settings.aws_region,
        "TIMMYBOT_ALLOWLIST_EXTRA": ",".join(settings.allowlist_extra),
        "TIMMYBOT_DATA_DIR": settings.data_dir,
        "AWS_LAMBDA_FUNCTION_NAME": "timmybot-bench-api",
    }
    if settings.aws_endpoint_url:
        env["TIMMYBOT_AWS_ENDPOINT_URL"] = settings.aws_endpoint_url
    return env


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port, in this process; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - heavy; only this script needs it

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def seed(settings: Settings) -> None:
    """A 25-entry queue and a playing track, as the voice task would have left them."""
    from tests.support.signing import seed_playing, seed_queue  # noqa: PLC0415
    from timmybot.store import build_store  # noqa: PLC0415

    client = None
    if settings.store_backend == "dynamodb":
        import boto3  # noqa: PLC0415

        from timmybot.store.schema import create_dynamodb_table  # noqa: PLC0415

        client = boto3.client("dynamodb", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
        create_dynamodb_table(client, settings.dynamodb_table)
    store = build_store(settings, client=client)
    seed_queue(store, QUEUE_LENGTH)
    seed_playing(store)
    for length, guild_id in QUEUE_GUILDS.items():
        seed_queue(store, length, guild_id=guild_id)


def check_answer(name: str, status: int, body: str) -> None:
    if status != 200 or EXPECTED_TEXT[name] not in body:
        raise RuntimeError(f"/{name} answered {status} without {EXPECTED_TEXT[name]!r}: {body[:500]}")


# --- cold ---------------------------------------------------------------------------------------


def cold(signer: Signer, backends: Mapping[str, Settings], endpoint: str, runs: int) -> list[str]:
    """Fresh processes, interleaved per round; prints the table and returns forbidden modules seen."""
    baseline_code = _BASELINE_CHILD.format(endpoint=endpoint, marker=RESULT_MARKER)
    cold_code = _COLD_CHILD.format(watched=WATCHED, marker=RESULT_MARKER)
    kinds: dict[str, tuple[str, Callable[[], dict[str, str]]]] = {
        label: (cold_code, _cold_env_factory(signer, settings)) for label, settings in backends.items()
    }
    kinds["baseline: import boto3 + boto3.client('dynamodb')"] = (baseline_code, child_env)
    for code, make_env in kinds.values():  # warm the page cache; not a sample
        run_child(code, make_env())

    samples: dict[str, list[ChildRun]] = {label: [] for label in kinds}
    labels = list(kinds)
    for index in range(runs):
        shift = index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            code, make_env = kinds[label]
            run = run_child(code, make_env())
            if "status" in run.result:
                check_answer("queue", run.result["status"], run.result["body"])
            samples[label].append(run)

    print(f"\ncold: first signed /queue in a fresh process ({runs} per row, interleaved; medians)")
    rows = [["", "interpreter start", "import", "bootstrap", "first request", "start → answer", "process wall"]]
    for label, runs_ in samples.items():
        rows.append(
            [
                label,
                ms(median([r.startup_s for r in runs_])),
                ms(median([r.result["import_s"] for r in runs_])),
                ms(median([r.result["bootstrap_s"] for r in runs_])),
                ms(median([r.result["request_s"] for r in runs_])) if "status" in runs_[0].result else "-",
                ms(median([r.startup_s + r.result["in_child_s"] for r in runs_])),
                ms(median([r.wall_s for r in runs_])),
            ]
        )
    table(rows)
    print(
        "  (bootstrap: settings, verifier, allowlist, Powertools logger/metrics; baseline row: client creation. "
        "first request: verify, build the store, dedupe claim, read, render, save the answer.)"
    )
    loaded = sorted({name for label in backends for run in samples[label] for name in run.result["loaded"]})
    print("modules after the first /queue: " + ", ".join(f"{n}={'yes' if n in loaded else 'no'}" for n in WATCHED))
    return [name for name in FORBIDDEN if name in loaded]


def _cold_env_factory(signer: Signer, settings: Settings) -> Callable[[], dict[str, str]]:
    def make() -> dict[str, str]:  # a new interaction id each time: the store dedupes by id
        event = api_gateway_event(signed(signer, "queue"))
        return child_env({**settings_env(settings), "BENCH_EVENT": json.dumps(event)})

    return make


# --- warm ---------------------------------------------------------------------------------------


@dataclass
class WarmResult:
    per_command: dict[str, list[float]]
    baseline: list[float]
    health: list[float]


def warm(signer: Signer, settings: Settings, requests_per_command: int) -> WarmResult:
    """Interleaved signed requests through chalice.test.Client; each followed by its baseline."""
    from app import app  # noqa: PLC0415
    from chalice.test import Client  # noqa: PLC0415

    from chalicelib.bootstrap import app_services, bootstrap  # noqa: PLC0415

    services = bootstrap(settings, in_lambda=False)
    plan = [signed(signer, name) for _ in range(requests_per_command) for name in WARM_COMMANDS]
    warmup = [signed(signer, name) for _ in range(WARMUP_REQUESTS) for name in WARM_COMMANDS]
    result = WarmResult({name: [] for name in WARM_COMMANDS}, [], [])
    with app_services.override(services), Client(app) as client:
        for request in warmup:
            _post(client, request)
        for index, request in enumerate(plan):
            result.per_command[request.name].append(_post(client, request))
            result.baseline.append(_verify_and_parse(services, request))
            if index % len(WARM_COMMANDS) == 0:
                started = time.perf_counter()
                client.http.get("/health")
                result.health.append(time.perf_counter() - started)
    return result


def _post(client: Client, request: SignedRequest) -> float:
    started = time.perf_counter()
    response = client.http.post("/interactions", headers=request.headers, body=request.body)
    elapsed = time.perf_counter() - started
    check_answer(request.name, response.status_code, response.body.decode())
    return elapsed


def _verify_and_parse(services: Services, request: SignedRequest) -> float:
    started = time.perf_counter()
    ok = services.verifier.verify(
        request.headers["X-Signature-Ed25519"], request.headers["X-Signature-Timestamp"], request.body
    )
    json.loads(request.body)
    elapsed = time.perf_counter() - started
    if not ok:
        raise RuntimeError("baseline: the signature did not verify")
    return elapsed


def print_warm(title: str, result: WarmResult, *, with_target: bool) -> None:
    print(f"\n{title}")
    base_p50 = median(result.baseline)
    header = ["", "p50", "p99", "max", "p50 − baseline p50"]
    if with_target:
        header.append(f"p99 vs target ≤ {TARGET_WARM_P99_S * 1000:.0f} ms")
    rows = [header]
    for name, values in result.per_command.items():
        p99 = percentile(values, 99)
        row = [f"/{name} ({len(values)})", ms(median(values)), ms(p99), ms(max(values)), ms(median(values) - base_p50)]
        if with_target:
            row.append(verdict(p99, TARGET_WARM_P99_S))
        rows.append(row)
    for label, values in (
        ("baseline: verify + json.loads", result.baseline),
        ("GET /health via chalice.test.Client", result.health),
    ):
        rows.append([label, ms(median(values)), ms(percentile(values, 99)), ms(max(values)), ""])
    table(rows)


# --- queue length -------------------------------------------------------------------------------


def queue_lengths(signer: Signer, settings: Settings, requests_per_length: int) -> WarmResult:
    """Signed /queue in the 5-entry and the 500-entry guild, alternating (the order flips each
    round); each request followed by its baseline."""
    from app import app  # noqa: PLC0415
    from chalice.test import Client  # noqa: PLC0415

    from chalicelib.bootstrap import app_services, bootstrap  # noqa: PLC0415

    services = bootstrap(settings, in_lambda=False)
    lengths = list(QUEUE_GUILDS)
    rounds = [lengths if index % 2 == 0 else lengths[::-1] for index in range(requests_per_length)]
    plan = [(length, signed(signer, "queue", QUEUE_GUILDS[length])) for order in rounds for length in order]
    warmup = [signed(signer, "queue", QUEUE_GUILDS[length]) for _ in range(WARMUP_REQUESTS) for length in lengths]
    result = WarmResult({f"queue, {length} entries": [] for length in lengths}, [], [])
    with app_services.override(services), Client(app) as client:
        for request in warmup:
            _post(client, request)
        for length, request in plan:
            result.per_command[f"queue, {length} entries"].append(_post(client, request))
            result.baseline.append(_verify_and_parse(services, request))
    return result


def print_queue_lengths(title: str, result: WarmResult) -> float:
    """The table and the ratio line; returns the ratio of the p99s (500 / 5)."""
    print(f"\n{title}")
    rows = [["", "p50", "p99", "max", "p50 − baseline p50"]]
    base_p50 = median(result.baseline)
    for name, values in result.per_command.items():
        rows.append([f"/{name} ({len(values)})", ms(median(values)), ms(percentile(values, 99)), ms(max(values)),
                     ms(median(values) - base_p50)])  # fmt: skip
    rows.append(["baseline: verify + json.loads", ms(base_p50), ms(percentile(result.baseline, 99)),
                 ms(max(result.baseline)), ""])  # fmt: skip
    table(rows)
    short, long = (percentile(result.per_command[f"queue, {n} entries"], 99) for n in QUEUE_GUILDS)
    ratio = long / short
    label = "within target" if ratio <= TARGET_QUEUE_RATIO else "OVER target"
    print(f"ratio of p99 (500 entries / 5 entries): {ratio:.2f} (target ≤ {TARGET_QUEUE_RATIO}: {label})")
    return ratio


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-runs", type=int, default=None, help="fresh processes per row (default 5)")
    parser.add_argument("--requests", type=int, default=None, help="warm requests per command, SQLite (default 1000)")
    parser.add_argument("--moto-requests", type=int, default=None, help="warm requests per command, moto (default 200)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, not a figure)")
    args = parser.parse_args(argv)
    cold_runs = args.cold_runs or (1 if args.quick else 5)
    requests = args.requests or (50 if args.quick else 1000)
    moto_requests = args.moto_requests or (20 if args.quick else 200)

    for name in [n for n in os.environ if n.startswith("TIMMYBOT_")] + ["AWS_PROFILE"]:
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS_ENV)
    add_source_paths()
    from tests.support.signing import GUILD_ID, Signer, make_settings  # noqa: PLC0415 - after add_source_paths

    print_header(
        "first response: signed interactions, cold and warm",
        f"cold {cold_runs} per row; warm {requests} per command on SQLite, {moto_requests} on moto; "
        f"queue of {QUEUE_LENGTH}; queue-length rows at {' and '.join(map(str, QUEUE_GUILDS))} entries",
    )
    signer = Signer()
    with tempfile.TemporaryDirectory(prefix="timmybot-bench-") as tmp, moto_server() as endpoint:
        guilds = (GUILD_ID, *QUEUE_GUILDS.values())
        sqlite_settings = make_settings(Path(tmp), signer, allowlist_extra=guilds)
        dynamo_settings = make_settings(
            Path(tmp),
            signer,
            store_backend="dynamodb",
            aws_endpoint_url=endpoint,
            dynamodb_table=TABLE_NAME,
            allowlist_extra=guilds,
        )
        seed(sqlite_settings)
        seed(dynamo_settings)
        forbidden = cold(
            signer,
            {"SQLite (temp file)": sqlite_settings, "DynamoDB (moto server, loopback)": dynamo_settings},
            endpoint,
            cold_runs,
        )
        print_warm(
            f"warm, in-process via chalice.test.Client, SQLite ({requests} per command, interleaved, "
            f"after {WARMUP_REQUESTS} warm-up each)",
            warm(signer, sqlite_settings, requests),
            with_target=True,
        )
        print_warm(
            f"warm, DynamoDB on a moto server in this process ({moto_requests} per command; "
            "includes moto's HTTP round trips, so not comparable with the target)",
            warm(signer, dynamo_settings, moto_requests),
            with_target=False,
        )
        print_queue_lengths(
            f"queue length: signed /queue at 5 and at 500 entries, SQLite ({requests} each, interleaved)",
            queue_lengths(signer, sqlite_settings, requests),
        )
        print_queue_lengths(
            f"queue length: signed /queue at 5 and at 500 entries, DynamoDB on moto ({moto_requests} each, "
            "interleaved; includes moto's HTTP round trips)",
            queue_lengths(signer, dynamo_settings, moto_requests),
        )

    if forbidden:
        print(f"FAIL: the fast path imported {', '.join(forbidden)}")
    print()
    sizes = f"--cold-runs {cold_runs} --requests {requests} --moto-requests {moto_requests}"
    print_reproduce(
        f".venv/bin/python scripts/bench/first_response.py {sizes}",
        "python3 scripts/dev.py bench" + (" --quick" if args.quick else ""),
    )
    return 1 if forbidden else 0


if __name__ == "__main__":
    sys.exit(main())
