"""The Dispatcher port: how the api hands a slow job (/play) to the worker and answers at once.

- ``LambdaDispatcher``: an asynchronous invoke (``InvocationType="Event"``) of the worker Lambda;
  at-least-once delivery, which the worker's idempotency absorbs. The boto3 client is built on
  first use, never at import (the api's cold start stays light).
- ``ThreadDispatcher``: an in-process thread pool (``chalice local``, the demo).
- ``InlineDispatcher``: runs the job before returning (tests).

A job is a plain JSON-able dict; ``run_job`` is the worker entry point bound to this process's
services. Errors inside a thread or inline job are logged (the worker already told the user);
they never reach the api's response.
"""

from __future__ import annotations

import abc
import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from timmybot.config import Settings

_log = logging.getLogger(__name__)

Job = Mapping[str, Any]
JobRunner = Callable[[dict[str, Any]], None]
ACCEPTED = 202  # Lambda's status for a queued asynchronous invoke


class DispatchError(Exception):
    """The job could not be handed over (the api answers with its generic error)."""


class LambdaClient(Protocol):
    def invoke(self, **kwargs: Any) -> dict[str, Any]: ...


class Dispatcher(abc.ABC):
    @abc.abstractmethod
    def dispatch(self, job: Job) -> None:
        """Hand ``job`` over; returns as soon as it is queued (inline: once it has run)."""


def _job_id(job: Job) -> str:
    return str(job.get("interaction_id", "?"))


class InlineDispatcher(Dispatcher):
    def __init__(self, run_job: JobRunner) -> None:
        self._run_job = run_job

    def dispatch(self, job: Job) -> None:
        try:
            self._run_job(dict(job))
        except Exception:
            _log.exception("inline job %s failed", _job_id(job))


class ThreadDispatcher(Dispatcher):
    def __init__(self, run_job: JobRunner, *, max_workers: int = 4) -> None:
        self._run_job = run_job
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="play-worker")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def dispatch(self, job: Job) -> None:
        payload = dict(job)
        future = self._executor.submit(self._run_job, payload)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(lambda done: self._finished(done, _job_id(payload)))

    def _finished(self, future: Future[None], job_id: str) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception()
        if error is not None:
            _log.error("job %s failed in its thread", job_id, exc_info=error)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait for every job dispatched so far; False if some are still running after ``timeout``."""
        with self._lock:
            pending = set(self._pending)
        _, not_done = wait(pending, timeout=timeout)
        return not not_done

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


class LambdaDispatcher(Dispatcher):
    def __init__(
        self,
        function_name: str,
        *,
        client: LambdaClient | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if not function_name:
            raise ValueError("LambdaDispatcher needs the worker's function name")
        self._function_name = function_name
        self._client_instance = client
        self._region_name = region_name
        self._endpoint_url = endpoint_url or None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> LambdaClient:
        if self._client_instance is None:
            with self._client_lock:
                if self._client_instance is None:
                    import boto3  # noqa: PLC0415 - built on the first /play, not at import

                    self._client_instance = boto3.client(
                        "lambda", region_name=self._region_name, endpoint_url=self._endpoint_url
                    )
        return self._client_instance

    def dispatch(self, job: Job) -> None:
        response = self.client.invoke(
            FunctionName=self._function_name,
            InvocationType="Event",
            Payload=json.dumps(dict(job)).encode("utf-8"),
        )
        status = response.get("StatusCode")
        if status != ACCEPTED:
            raise DispatchError(f"worker invoke for job {_job_id(job)} answered status {status}")
        _log.info("job %s handed to %s", _job_id(job), self._function_name)


def build_dispatcher(settings: Settings, run_job: JobRunner, *, client: LambdaClient | None = None) -> Dispatcher:
    """The dispatcher ``settings.dispatcher`` names."""
    if settings.dispatcher == "lambda":
        return LambdaDispatcher(
            settings.worker_function_name,
            client=client,
            region_name=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
        )
    if settings.dispatcher == "inline":
        return InlineDispatcher(run_job)
    return ThreadDispatcher(run_job, max_workers=settings.dispatcher_threads)
