"""ECS adapter: one Fargate task per guild via ``RunTask`` (Spot optional, on-demand fallback).

RunTask reports capacity and Spot shortages in ``failures[]`` without raising. With
``ecs_use_spot`` the first attempt asks for ``FARGATE_SPOT``; a failure (or a refused request) is
retried once on plain ``FARGATE``. An AccessDenied is no shortage: it is the operator's to fix (the
worker's role lacks ``ecs:RunTask`` or ``iam:PassRole`` on the task's roles), so it stops at once with
its own sentence and a ``LaunchesRefused`` metric with ``reason=access_denied``. The container
overrides carry only the guild id and the lease generation: secrets reach the task through the task
definition's ``secrets``, never here.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from timmybot import metrics
from timmybot.config import Settings
from timmybot.store.base import Store

from .base import GENERATION_ENV, GUILD_ENV, Launcher, LaunchFailedError

_log = logging.getLogger(__name__)

STARTED_BY = "timmybot"
STOPPED = "STOPPED"
SPOT_PROVIDER = "FARGATE_SPOT"
NO_CAPACITY_TEXT = (
    "I couldn't start the player: the cloud has no capacity for it right now. "
    "Your music is queued; try /play again in a minute."
)
PERMISSIONS_TEXT = (
    "I couldn't start the player: AWS refused to start it, so the bot's operator must fix the player's "
    "permissions (ecs:RunTask and iam:PassRole for the worker). Your music is queued."
)
#: The error codes AWS answers a refused authorization with (ECS says AccessDeniedException); any
#: HTTP 403 counts too, whatever its body's code.
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})


class EcsClient(Protocol):
    """The two ECS calls the launcher makes (boto3's client satisfies it)."""

    def run_task(self, **kwargs: Any) -> dict[str, Any]: ...

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]: ...


class EcsLauncher(Launcher):
    def __init__(self, store: Store, settings: Settings, *, client: EcsClient | None = None) -> None:
        super().__init__(store, settings)
        self._client_instance = client
        self._client_lock = threading.Lock()

    @property
    def client(self) -> EcsClient:
        """The injected client, else a boto3 client built on first use (never at import)."""
        if self._client_instance is None:
            with self._client_lock:
                if self._client_instance is None:
                    import boto3  # noqa: PLC0415 - heavy; only the worker launches tasks

                    self._client_instance = boto3.client(
                        "ecs",
                        region_name=self._settings.aws_region,
                        endpoint_url=self._settings.aws_endpoint_url or None,
                    )
        return self._client_instance

    def run_task_request(self, guild_id: str, generation: int, *, spot: bool) -> dict[str, Any]:
        """The RunTask arguments for one attempt."""
        settings = self._settings
        request: dict[str, Any] = {
            "cluster": settings.ecs_cluster,
            "taskDefinition": settings.ecs_task_definition,
            "count": 1,
            "startedBy": STARTED_BY,
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": list(settings.ecs_subnets),
                    "securityGroups": list(settings.ecs_security_groups),
                    "assignPublicIp": "ENABLED",
                }
            },
            "overrides": {
                "containerOverrides": [
                    {
                        "name": settings.ecs_container_name,
                        "environment": [
                            {"name": GUILD_ENV, "value": guild_id},
                            {"name": GENERATION_ENV, "value": str(generation)},
                        ],
                    }
                ]
            },
        }
        if spot:
            request["capacityProviderStrategy"] = [{"capacityProvider": SPOT_PROVIDER, "weight": 1}]
        else:
            request["launchType"] = "FARGATE"
        return request

    def _start(self, guild_id: str, generation: int) -> str:
        attempts = (True, False) if self._settings.ecs_use_spot else (False,)
        for spot in attempts:
            arn = self._attempt(guild_id, generation, spot=spot)
            if arn is not None:
                return arn
            if spot:
                _log.warning("Fargate Spot could not start guild %s's task; falling back to on-demand", guild_id)
        raise LaunchFailedError(NO_CAPACITY_TEXT)

    def _attempt(self, guild_id: str, generation: int, *, spot: bool) -> str | None:
        """One RunTask call: the task ARN, or None when ECS reported failures (or refused a Spot request)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415 - boto3 is loaded by now

        kind = "spot" if spot else "on-demand"
        try:
            response = self.client.run_task(**self.run_task_request(guild_id, generation, spot=spot))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "unknown")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ACCESS_DENIED_CODES or status == 403:
                _log.error(
                    "RunTask (%s) for guild %s was denied (%s): fix the worker's permissions", kind, guild_id, code
                )
                metrics.emit(metrics.LAUNCHES_REFUSED, dimensions={"reason": "access_denied"})
                raise LaunchFailedError(PERMISSIONS_TEXT) from error
            if not spot:
                raise LaunchFailedError(NO_CAPACITY_TEXT) from error
            _log.warning("RunTask (%s) for guild %s refused: %s", kind, guild_id, code)
            return None
        tasks = response.get("tasks") or []
        for task in tasks:
            arn = task.get("taskArn")
            if isinstance(arn, str) and arn:
                return arn
        for failure in response.get("failures") or []:
            _log.warning(
                "RunTask (%s) for guild %s failed: %s %s",
                kind,
                guild_id,
                failure.get("reason", "unknown"),
                failure.get("detail", ""),
            )
        return None

    def is_alive(self, holder: str) -> bool | None:
        if not holder.startswith("arn:"):
            return None
        response = self.client.describe_tasks(cluster=self._settings.ecs_cluster, tasks=[holder])
        tasks = response.get("tasks") or []
        if not tasks:
            return False  # ECS answered MISSING: the task is long gone
        return bool(tasks[0].get("lastStatus") != STOPPED)
