"""Wake hints: after a control writes a guild's record, tell that guild's voice task to tick now.

The store stays the only truth. A hint carries nothing but "look again": a lost hint only delays
the change until the task's next poll, and with hints the task may poll seldom while nothing
changes. The running task puts where it listens in its lease (``Lease.wake``):
- ``udp://127.0.0.1:<port>`` for a task on this machine (loopback only, never another address);
- an SQS queue URL (``https://sqs.<region>.amazonaws.com/<account>/<prefix>…``) for a Fargate task:
  it creates the queue at start, long-polls it and deletes it at exit.
``WakeSender`` is the store's ``on_guild_write`` hook in the api and the worker.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from timmybot.models import GuildRecord, LeaseState

if TYPE_CHECKING:
    from timmybot.config import Settings
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

UDP_SCHEME = "udp"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
HINT = b"wake"


def udp_address(url: str) -> tuple[str, int] | None:
    """The loopback (host, port) of a ``udp://`` wake address; None for anything else."""
    parts = urlsplit(url)
    if parts.scheme != UDP_SCHEME or parts.hostname not in LOOPBACK_HOSTS or not parts.port:
        return None
    return parts.hostname, parts.port


def sqs_queue_allowed(url: str, prefix: str) -> bool:
    """Only the deployment's own wake queues (by name prefix), over https on SQS."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    name = parts.path.rsplit("/", 1)[-1]
    return parts.scheme == "https" and host.startswith("sqs.") and host.endswith(".amazonaws.com") \
        and name.startswith(prefix)  # fmt: skip


class WakeSender:
    """Sends one hint per guild write to the task that holds the guild's running lease."""

    def __init__(self, settings: Settings, *, sqs_client: Any = None,
                 sqs_factory: Callable[[], Any] | None = None) -> None:  # fmt: skip
        self._prefix = settings.wake_queue_prefix
        self._region = settings.aws_region
        self._endpoint = settings.aws_endpoint_url or None
        self._sqs = sqs_client
        self._sqs_factory = sqs_factory
        self.sent = 0

    def __call__(self, record: GuildRecord) -> None:
        lease = record.lease
        if lease.state is not LeaseState.RUNNING or not lease.wake:
            return
        target = udp_address(lease.wake)
        if target is not None:
            family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.sendto(HINT, target)
            self.sent += 1
            return
        if sqs_queue_allowed(lease.wake, self._prefix):
            self._client().send_message(QueueUrl=lease.wake, MessageBody=HINT.decode())
            self.sent += 1
            return
        _log.warning("ignoring the wake address of guild %s: not loopback udp nor our queue", record.guild_id)

    def _client(self) -> Any:
        if self._sqs is None:
            if self._sqs_factory is not None:
                self._sqs = self._sqs_factory()
            else:
                import boto3  # noqa: PLC0415 - only the AWS deployment sends SQS hints

                self._sqs = boto3.client("sqs", region_name=self._region, endpoint_url=self._endpoint)
        return self._sqs


def send_hints(store: Store, settings: Settings) -> Store:
    """Make ``store`` hint the guild's running task after each of its guild writes (unless the
    settings say ``wake_hints=none``); returns the store."""
    if settings.wake_hints != "none":
        store.on_guild_write = WakeSender(settings)
    return store
