"""taskiq with taskiq-redis's ``ListQueueBroker``: ``taskiq worker peers.taskiq_app:broker``.

``ListQueueBroker`` is taskiq-redis's plain Redis list (LPUSH / BRPOP, no acknowledgement): the
cheapest of its brokers. No result backend, like alsek's rows without the result store.
"""

from __future__ import annotations

import asyncio
from typing import Any

from apps import completions, settings
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker(settings.redis_url(), queue_name=f"{settings.namespace()}:taskiq")
#: Messages queued at once by ``submit`` (each ``kiq`` is one LPUSH).
SUBMIT_CONCURRENCY = 200


@broker.task
async def noop() -> None:
    """Nothing but the tally."""
    completions.done()


@broker.task
async def sleep_1ms() -> None:
    """A 1 ms wait."""
    await asyncio.sleep(0.001)
    completions.done()


@broker.task
async def latency(sent_at: float) -> None:
    """Records how long after its submit it started."""
    completions.started(sent_at)
    completions.done()


TASKS = {"noop": noop, "sleep_1ms": sleep_1ms, "latency": latency}


async def _submit(task_name: str, count: int) -> None:
    task = TASKS[task_name]
    await broker.startup()
    try:
        for start in range(0, count, SUBMIT_CONCURRENCY):
            size = min(SUBMIT_CONCURRENCY, count - start)
            await asyncio.gather(*(task.kiq() for _ in range(size)))
    finally:
        await broker.shutdown()


def submit(task_name: str, count: int) -> None:
    """Queue ``count`` messages for ``task_name`` with ``kiq``."""
    asyncio.run(_submit(task_name, count))


async def startup() -> None:
    """Connect the broker (``kiq`` needs it started)."""
    await broker.startup()


async def send(task_name: str, *args: Any) -> None:
    """Submit one message for ``task_name`` with ``kiq``, awaited."""
    await TASKS[task_name].kiq(*args)


async def shutdown() -> None:
    """Close the broker's connections."""
    await broker.shutdown()
