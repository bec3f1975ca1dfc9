"""alsek tasks for ``alsek thread-pool apps.alsek_threads`` (and ``process-pool`` with
``apps.alsek_processes``): a no-op, a 1 ms sleep and the latency probe, with status and result
on when asked.
"""

from __future__ import annotations

import time
from typing import Any

from alsek.core.broker import Broker
from alsek.core.status import StatusTracker
from alsek.core.task import task
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import ResultStore
from apps import completions, settings

backend = RedisBackend(settings.redis_url(), namespace=settings.namespace())
broker = Broker(backend)
QUEUE = "threads"


def tracking_options() -> dict[str, Any]:
    """Status tracker and result store when ``settings.tracking()``, else nothing."""
    if not settings.tracking():
        return {}
    return {
        "status_tracker": StatusTracker(backend),
        "result_store": ResultStore(backend),
        "default_result_ttl": settings.RESULT_TTL_MS,
    }


@task(broker, queue=QUEUE, **tracking_options())
def noop() -> None:
    """Nothing but the tally: the pool's own cost per message."""
    completions.done()


@task(broker, queue=QUEUE, **tracking_options())
def sleep_1ms() -> None:
    """A 1 ms wait (I/O-like): what concurrency buys."""
    time.sleep(0.001)
    completions.done()


@task(broker, queue=QUEUE, **tracking_options())
def latency(sent_at: float) -> None:
    """Records how long after its submit it started (``sent_at`` is ``time.time()``)."""
    completions.started(sent_at)
    completions.done()


#: Messages per ``generate_many`` call.
SUBMIT_BATCH = 5_000


def submit(task_name: str, count: int) -> None:
    """Queue ``count`` messages for ``task_name`` with ``generate_many``."""
    target = globals()[task_name]
    for start in range(0, count, SUBMIT_BATCH):
        target.generate_many(args_list=[()] * min(SUBMIT_BATCH, count - start))


def send(task_name: str, *args: Any) -> None:
    """Submit one message for ``task_name`` with ``generate``."""
    globals()[task_name].generate(args=args)
