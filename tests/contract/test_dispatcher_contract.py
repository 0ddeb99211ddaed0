"""The Dispatcher port behaves the same over every adapter: inline, the thread pool, and Lambda's
asynchronous invoke (moto's Lambda, without Docker).

GIVEN a worker that records each job it receives (and fails the jobs that ask it to)
WHEN  the api dispatches jobs through the adapter ``build_dispatcher`` picks for the setting
THEN  each job reaches the worker exactly once, as the JSON the job is (Lambda carries it as JSON,
      so no adapter may hand over anything JSON would not), and a copy: a change to the dict after
      dispatching it does not reach the worker
AND   a worker that fails never makes ``dispatch`` raise, and the next job still goes through.

For Lambda, moto stands in for the Lambda service: it records each invoke's payload and
invocation type, and the test plays Lambda's asynchronous runtime by handing each recorded
payload to the worker.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.dispatch import (
    Dispatcher,
    DispatchError,
    InlineDispatcher,
    LambdaDispatcher,
    ThreadDispatcher,
    build_dispatcher,
)
from tests.support.signing import Signer, make_settings

REGION = "us-east-1"
WORKER = "timmybot-dev-worker"

JOB: dict[str, Any] = {
    "kind": "play",
    "interaction_id": "1234567890123456789",
    "guild_id": "123456789012345678",
    "query": 'señor — 日本語 "quoted" ♪',
    "options": {"placement": "next", "count": 3, "shuffle": False, "ratio": 0.5, "none": None},
    "entries": [{"id": "a"}, {"id": "b"}],
}


@dataclass
class Worker:
    """The far side of the port: records every job; a job with ``"fail": true`` raises after it is recorded."""

    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run_job(self, job: dict[str, Any]) -> None:
        with self.lock:
            self.received.append(job)
        if job.get("fail"):
            raise RuntimeError(f"job {job.get('interaction_id')} failed in the worker")


@dataclass
class Harness:
    dispatcher: Dispatcher
    worker: Worker
    deliver: Callable[[], None]  # wait until every job dispatched so far has reached the worker

    def received(self) -> list[dict[str, Any]]:
        self.deliver()
        return list(self.worker.received)


@pytest.fixture
def lambda_invokes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, Any]]:
    """What moto's Lambda was asked to invoke: (function name, invocation type, payload)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend  # noqa: PLC0415 - only the lambda case needs it

    invokes: list[tuple[str, str | None, Any]] = []
    original = LambdaSimpleBackend.invoke

    @functools.wraps(original)
    def recording(self: Any, function_name: str, qualifier: str | None, body: Any,
                  headers: Any, response_headers: Any) -> Any:  # fmt: skip
        invokes.append((function_name, headers.get("X-Amz-Invocation-Type"), body))
        return original(self, function_name, qualifier, body, headers, response_headers)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", recording)
    return invokes


def _create_worker_function(client: Any) -> None:
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="timmybot-worker", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", "def worker(event, context):\n    return None\n")
    client.create_function(
        FunctionName=WORKER, Runtime="python3.11", Role=role, Handler="app.worker", Code={"ZipFile": archive.getvalue()}
    )


@pytest.fixture(params=["inline", "thread", "lambda"])
def harness(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Harness]:
    worker = Worker()
    if request.param == "lambda":
        invokes: list[tuple[str, str | None, Any]] = request.getfixturevalue("lambda_invokes")
        with mock_aws(config={"lambda": {"use_docker": False}}):
            client = boto3.client("lambda", region_name=REGION)
            _create_worker_function(client)
            settings = make_settings(tmp_path, Signer(), dispatcher="lambda", worker_function_name=WORKER)
            dispatcher = build_dispatcher(settings, worker.run_job, client=client)
            assert isinstance(dispatcher, LambdaDispatcher)

            def deliver() -> None:
                while invokes:
                    function_name, invocation_type, body = invokes.pop(0)
                    assert (function_name, invocation_type) == (WORKER, "Event")
                    # Lambda's async runtime: a failed run is logged (and retried), never the api's concern
                    with contextlib.suppress(RuntimeError):
                        worker.run_job(json.loads(body))

            yield Harness(dispatcher, worker, deliver)
        return
    settings = make_settings(tmp_path, Signer(), dispatcher=request.param)
    dispatcher = build_dispatcher(settings, worker.run_job)
    if isinstance(dispatcher, ThreadDispatcher):
        thread_dispatcher = dispatcher
        yield Harness(dispatcher, worker, lambda: _drained(thread_dispatcher))
        thread_dispatcher.shutdown()
        return
    assert isinstance(dispatcher, InlineDispatcher)
    yield Harness(dispatcher, worker, lambda: None)


def _drained(dispatcher: ThreadDispatcher) -> None:
    assert dispatcher.drain(timeout=10), "a dispatched job was still running after 10 s"


def test_a_job_reaches_the_worker_once_as_the_json_it_is(harness: Harness) -> None:
    harness.dispatcher.dispatch(JOB)

    assert harness.received() == [json.loads(json.dumps(JOB))]


def test_the_worker_gets_a_copy_of_the_job(harness: Harness) -> None:
    job = dict(JOB)
    harness.dispatcher.dispatch(job)
    job["query"] = "changed after dispatch"
    job["extra"] = True

    assert [got["query"] for got in harness.received()] == [JOB["query"]]
    assert "extra" not in harness.received()[0]


def test_every_job_of_a_burst_arrives_once(harness: Harness) -> None:
    jobs = [dict(JOB, interaction_id=str(1_000 + n)) for n in range(20)]
    for job in jobs:
        harness.dispatcher.dispatch(job)

    assert sorted(got["interaction_id"] for got in harness.received()) == sorted(j["interaction_id"] for j in jobs)


def test_a_failing_job_never_reaches_the_caller_and_the_next_one_goes_through(harness: Harness) -> None:
    harness.dispatcher.dispatch(dict(JOB, interaction_id="1", fail=True))  # does not raise
    harness.dispatcher.dispatch(dict(JOB, interaction_id="2"))

    assert [got["interaction_id"] for got in harness.received()] == ["1", "2"]


# -- what only the Lambda adapter does ---------------------------------------------------------------
def test_the_lambda_adapter_builds_no_client_before_the_first_dispatch() -> None:
    dispatcher = LambdaDispatcher(WORKER, region_name=REGION)

    assert dispatcher._client_instance is None


def test_an_invoke_lambda_did_not_queue_is_a_dispatch_error() -> None:
    class AnsweredSynchronously:
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            return {"StatusCode": 200}  # a synchronous answer: the job was not queued for the worker

    with pytest.raises(DispatchError, match="1234567890123456789"):
        LambdaDispatcher(WORKER, client=AnsweredSynchronously()).dispatch(JOB)


def test_the_lambda_adapter_needs_the_worker_function_name() -> None:
    with pytest.raises(ValueError, match="function name"):
        LambdaDispatcher("")
