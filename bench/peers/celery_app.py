"""Celery with its Redis broker, prefork pool:
``celery -A peers.celery_app worker --pool prefork --concurrency CPUS``.

Configured as the reliable setup that alsek's process pool is compared with: a message is
acknowledged after it ran (``task_acks_late``) and each child reserves one message at a time
(``worker_prefetch_multiplier=1``). No result backend, like alsek's rows without the result
store. Every key goes under the run's namespace (kombu's ``global_keyprefix``).
"""

from __future__ import annotations

import time
from typing import Any

from apps import completions, settings
from celery import Celery

app = Celery("alsek_bench", broker=settings.redis_url())
app.conf.update(
    broker_transport_options={"global_keyprefix": f"{settings.namespace()}:celery:"},
    broker_connection_retry_on_startup=True,
    task_default_queue=settings.QUEUE,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
)


@app.task(name="noop")
def noop() -> None:
    """Nothing but the tally."""
    completions.done()


@app.task(name="sleep_1ms")
def sleep_1ms() -> None:
    """A 1 ms wait."""
    time.sleep(0.001)
    completions.done()


@app.task(name="latency")
def latency(sent_at: float) -> None:
    """Records how long after its submit it started."""
    completions.started(sent_at)
    completions.done()


TASKS = {"noop": noop, "sleep_1ms": sleep_1ms, "latency": latency}


def submit(task_name: str, count: int) -> None:
    """Queue ``count`` messages for ``task_name``, as an application would (``apply_async``)."""
    for _ in range(count):
        send(task_name)


def send(task_name: str, *args: Any) -> None:
    """Submit one message for ``task_name`` with ``apply_async``."""
    TASKS[task_name].apply_async(args)
