"""An asyncio pool's slot is free once its run ended: the next message starts while the first
still writes its outcome (``after_process``, the ack's round trip). At most one message per
slot writes its outcome that way, so the pool never runs more messages at once than it has
slots. Its claims skip the queue of the tasks' acks (``async_unbatched``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from alsek.core.broker import AsyncBroker, Broker
from alsek.core.message import Message
from alsek.core.middleware import Middleware
from alsek.core.steps.batching import async_batcher_for, async_unbatched
from alsek.core.task import task
from alsek.core.worker.asyncio import AsyncSingleProcessWorkerPool
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend

pytestmark = pytest.mark.servers("redis", "valkey")

#: Generous: how long a test waits for something that happens at once on a healthy machine.
PATIENCE_SECONDS = 30


@contextmanager
def serving(pool: AsyncSingleProcessWorkerPool, release: threading.Event) -> Iterator[None]:
    """Run ``pool`` on an event loop in a thread of its own within the block; then set
    ``release`` (a held outcome must not block the stop) and stop it."""
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        try:
            await pool.run()
        finally:
            await pool.broker.backend.conn.aclose()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        release.set()
        assert poll(lambda: bool(loops))
        stopping = asyncio.run_coroutine_threadsafe(pool.stop(PATIENCE_SECONDS * 1000), loops[0])
        stopping.result(PATIENCE_SECONDS)
        thread.join(PATIENCE_SECONDS)
    assert not thread.is_alive()


class HoldOutcomes(Middleware):
    """Holds the outcome of every message (in ``after_process``) until ``release``; ``held``
    names those that got there."""

    def __init__(self) -> None:
        self.held: list[str] = []
        self.release = threading.Event()

    async def after_process(self, message: Message, result: Any, exception: Any) -> None:
        self.held.append(message.uuid)
        while not self.release.is_set():
            await asyncio.sleep(0.01)


def poll(condition: Any) -> bool:
    """Whether ``condition()`` holds within the patience (polled every 10 ms)."""
    pause = threading.Event()  # never set: a poll's pause
    for _ in range(PATIENCE_SECONDS * 100):
        if condition():
            return True
        pause.wait(0.01)
    return False


def test_the_next_message_starts_while_the_first_writes_its_outcome(
    redis_url: str, namespace: str
) -> None:
    broker = AsyncBroker(AsyncRedisBackend(redis_url, namespace=namespace))
    producer = Broker(RedisBackend(redis_url, namespace=namespace))
    hold = HoldOutcomes()
    broker.add_middleware(hold)

    @task(broker, queue="slots")
    async def count(n: int) -> int:
        return n

    messages = [Message("count", queue="slots", args=(n,)) for n in range(4)]
    for message in messages:
        producer.submit(message)
    pool = AsyncSingleProcessWorkerPool(tasks=[count], n_tasks=1, backoff=None)
    with serving(pool, hold.release):
        # Before, the only slot stayed taken until the first outcome was written: nothing
        # else started while it was held.
        assert poll(lambda: len(hold.held) >= 2)
        assert hold.held[:2] == [messages[0].uuid, messages[1].uuid]
        assert pool.free_slots() == 0  # two outcomes held: one slot, one extra at most
        assert len(hold.held) == 2
        hold.release.set()
        assert poll(lambda: not any(producer.exists(m) for m in messages))


def test_a_claim_skips_the_queue_of_acks(redis_url: str, namespace: str) -> None:
    """Within ``async_unbatched``, a request goes out at once, though another caller leads a
    batch in flight; outside, it queues."""

    async def scenario() -> tuple[bool, bool]:
        backend = AsyncRedisBackend(redis_url, namespace=namespace)
        client = backend.conn
        batcher = async_batcher_for(client)
        batcher._leading = True  # as while another caller's batch is in flight
        with async_unbatched():
            unbatched = await asyncio.wait_for(
                batcher.execute(client, [("PING",)]), PATIENCE_SECONDS
            )
        queued = asyncio.ensure_future(batcher.execute(client, [("PING",)]))
        await asyncio.sleep(0.05)
        waited = not queued.done()
        queued.cancel()
        return unbatched == [True], waited

    went_at_once, queued_otherwise = asyncio.run(scenario())
    assert went_at_once
    assert queued_otherwise
