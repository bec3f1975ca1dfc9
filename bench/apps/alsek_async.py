"""alsek async tasks for ``alsek async-pool apps.alsek_async``: a no-op, a 1 ms
``asyncio.sleep`` and the latency probe, with status and result on when asked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alsek.core.broker import AsyncBroker
from alsek.core.status import AsyncStatusTracker
from alsek.core.task import task
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.result import AsyncResultStore
from apps import completions, settings

backend = AsyncRedisBackend(settings.redis_url(), namespace=settings.namespace())
broker = AsyncBroker(backend)
QUEUE = "async"


def tracking_options() -> dict[str, Any]:
    """Status tracker and result store when ``settings.tracking()``, else nothing."""
    if not settings.tracking():
        return {}
    return {
        "status_tracker": AsyncStatusTracker(backend),
        "result_store": AsyncResultStore(backend),
        "default_result_ttl": settings.RESULT_TTL_MS,
    }


@task(broker, queue=QUEUE, **tracking_options())
async def noop() -> None:
    """Nothing but the tally: the pool's own cost per message."""
    completions.done()


@task(broker, queue=QUEUE, **tracking_options())
async def sleep_1ms() -> None:
    """A 1 ms wait: what concurrency buys."""
    await asyncio.sleep(0.001)
    completions.done()


@task(broker, queue=QUEUE, **tracking_options())
async def latency(sent_at: float) -> None:
    """Records how long after its submit it started (``sent_at`` is ``time.time()``)."""
    completions.started(sent_at)
    completions.done()


#: Messages per ``generate_many`` call.
SUBMIT_BATCH = 5_000


async def _submit(task_name: str, count: int) -> None:
    target = globals()[task_name]
    for start in range(0, count, SUBMIT_BATCH):
        await target.generate_many(args_list=[()] * min(SUBMIT_BATCH, count - start))
    await backend.conn.aclose()


def submit(task_name: str, count: int) -> None:
    """Queue ``count`` messages for ``task_name`` with ``generate_many``."""
    asyncio.run(_submit(task_name, count))


async def send(task_name: str, *args: Any) -> None:
    """Submit one message for ``task_name`` with ``AsyncTask.generate``."""
    await globals()[task_name].generate(args=args)


async def shutdown() -> None:
    """Close the connection pool (before the event loop closes)."""
    await backend.conn.aclose()
