"""The voice task's SQS wake listener, on moto (issue 13, instant controls).

GIVEN a voice task's ``SqsWakeListener`` started on moto's SQS
THEN  it created a queue of its own (named by the prefix, the guild and the lease generation)
AND   it long-polls it (``WaitTimeSeconds``), and a hint the api's ``WakeSender`` sends to the
      address in the task's lease wakes the task (the callback runs on its event loop) and is
      deleted from the queue once read
AND   at exit the queue is deleted.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from timmybot.config import Settings
from timmybot.models import LeaseState
from timmybot.store import SQLiteStore
from timmybot.wake import WakeSender
from voice_task import wake
from voice_task.wake import SqsWakeListener

GUILD = "111111111111111111"
REGION = "us-east-1"


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # A short long poll, so that the poll thread notices the stop before moto's mock ends.
    monkeypatch.setattr(wake, "SQS_WAIT_S", 1)
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def test_a_hint_on_the_task_s_own_queue_wakes_it_and_the_queue_is_deleted_at_exit(sqs: Any, tmp_path: Path) -> None:
    settings = Settings(wake_hints="sqs", aws_region=REGION)
    waits: list[int] = []

    def seen(params: dict[str, Any], **kwargs: Any) -> None:
        waits.append(int(params.get("WaitTimeSeconds", 0)))

    sqs.meta.events.register("provide-client-params.sqs.ReceiveMessage", seen)
    listener = SqsWakeListener(settings, GUILD, 7, client=sqs)

    async def scenario() -> float:
        woken = asyncio.Event()
        loop_thread = threading.get_ident()
        on_loop: list[bool] = []

        def on_wake() -> None:
            on_loop.append(threading.get_ident() == loop_thread)
            woken.set()

        await listener.start(on_wake)
        assert listener.address is not None
        assert sqs.list_queues()["QueueUrls"] == [listener.address]
        assert listener.address.endswith(f"/{settings.wake_queue_prefix}{GUILD}-7")

        # WHEN a control writes the guild and the api sends the hint to the lease's address
        store = SQLiteStore(tmp_path / "store.db")
        lease = store.acquire_lease(GUILD, holder="task", state=LeaseState.RUNNING, ttl_s=60, wake=listener.address)
        assert lease is not None
        record = store.get_guild(GUILD)
        assert record.lease.wake == listener.address
        sender = WakeSender(settings, sqs_client=sqs)
        sent = time.monotonic()
        sender(record)
        assert sender.sent == 1

        # THEN the task is woken, on its own event loop, well inside one long poll
        await asyncio.wait_for(woken.wait(), timeout=5)
        took = time.monotonic() - sent
        assert on_loop == [True]
        # AND the hint was deleted once read (a hint is news once, never again)
        attributes = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        for _ in range(50):
            counts = sqs.get_queue_attributes(QueueUrl=listener.address, AttributeNames=attributes)["Attributes"]
            if all(counts[name] == "0" for name in attributes):
                break
            await asyncio.sleep(0.05)
        assert all(counts[name] == "0" for name in attributes), counts
        await listener.stop()
        return took

    took = asyncio.run(scenario())
    assert took < 3.0
    assert waits and all(w == wake.SQS_WAIT_S for w in waits), waits  # long polls, every one
    # AND at exit the queue is gone (and the poll thread ends)
    assert not sqs.list_queues().get("QueueUrls")
    assert listener._thread is not None
    listener._thread.join(timeout=10)
    assert not listener._thread.is_alive()
