"""Where the voice task listens for wake hints (see ``timmybot.wake``): a loopback UDP socket on one
machine, an SQS queue of its own on Fargate. Each calls ``on_wake`` on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

from timmybot.config import Settings

_log = logging.getLogger(__name__)

SQS_WAIT_S = 20  # long polling: about 180 requests an hour while idle


class WakeListener(Protocol):
    address: str | None

    async def start(self, on_wake: Callable[[], None]) -> None: ...

    async def stop(self) -> None: ...


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_wake: Callable[[], None]) -> None:
        self.on_wake = on_wake

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.on_wake()


class UdpWakeListener:
    """``udp://127.0.0.1:<port>``: bound to loopback only."""

    def __init__(self) -> None:
        self.address: str | None = None
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self, on_wake: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(on_wake), local_addr=("127.0.0.1", 0))
        self._transport = transport
        port = int(self._transport.get_extra_info("sockname")[1])
        self.address = f"udp://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()


class SqsWakeListener:
    """A queue of the task's own (created at start, deleted at exit), long-polled on a thread."""

    def __init__(self, settings: Settings, guild_id: str, generation: int, *, client: Any = None) -> None:
        self._settings = settings
        self._name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{settings.wake_queue_prefix}{guild_id}-{generation}")[:80]
        self._client = client
        self.address: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sqs(self) -> Any:
        if self._client is None:
            import boto3  # noqa: PLC0415

            self._client = boto3.client("sqs", region_name=self._settings.aws_region,
                                        endpoint_url=self._settings.aws_endpoint_url or None)  # fmt: skip
        return self._client

    async def start(self, on_wake: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        created = await asyncio.to_thread(self._sqs().create_queue, QueueName=self._name,
                                          Attributes={"MessageRetentionPeriod": "60"})  # fmt: skip
        self.address = str(created["QueueUrl"])

        def poll() -> None:
            while not self._stop.is_set():
                try:
                    answer = self._sqs().receive_message(QueueUrl=self.address, WaitTimeSeconds=SQS_WAIT_S,
                                                         MaxNumberOfMessages=10)  # fmt: skip
                except Exception as exc:
                    _log.warning("wake queue poll failed: %s", type(exc).__name__)
                    self._stop.wait(5)
                    continue
                messages = answer.get("Messages") or []
                if messages:
                    loop.call_soon_threadsafe(on_wake)
                    entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
                    with contextlib.suppress(Exception):
                        self._sqs().delete_message_batch(QueueUrl=self.address, Entries=entries)

        self._thread = threading.Thread(target=poll, name="wake-queue", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self.address is not None:
            try:
                await asyncio.to_thread(self._sqs().delete_queue, QueueUrl=self.address)
            except Exception as exc:  # an orphan queue costs nothing while empty; log it for the operator
                _log.warning("could not delete the wake queue %s: %s", self._name, type(exc).__name__)


def build_listener(settings: Settings, guild_id: str, generation: int) -> WakeListener | None:
    if settings.wake_hints == "udp":
        return UdpWakeListener()
    if settings.wake_hints == "sqs":
        return SqsWakeListener(settings, guild_id, generation)
    return None
