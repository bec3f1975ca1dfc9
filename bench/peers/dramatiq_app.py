"""Dramatiq with its Redis broker: ``dramatiq peers.dramatiq_app --processes 1 --threads 8``."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from apps import completions, settings
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=settings.redis_url(), namespace=f"{settings.namespace()}:dramatiq")
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=settings.QUEUE, max_retries=0)
def noop() -> None:
    """Nothing but the tally."""
    completions.done()


@dramatiq.actor(queue_name=settings.QUEUE, max_retries=0)
def sleep_1ms() -> None:
    """A 1 ms wait."""
    time.sleep(0.001)
    completions.done()


@dramatiq.actor(queue_name=settings.QUEUE, max_retries=0)
def latency(sent_at: float) -> None:
    """Records how long after its submit it started."""
    completions.started(sent_at)
    completions.done()


ACTORS = {"noop": noop, "sleep_1ms": sleep_1ms, "latency": latency}


def submit(task_name: str, count: int) -> None:
    """Queue ``count`` messages for ``task_name``, as an application would (``send``)."""
    for _ in range(count):
        send(task_name)


def send(task_name: str, *args: Any) -> None:
    """Submit one message for ``task_name`` with ``actor.send``."""
    ACTORS[task_name].send(*args)
