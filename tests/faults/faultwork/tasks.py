"""The sync tasks ``alsek thread-pool faultwork.tasks`` (and the launcher) serve.

Producers in the tests build the same tasks with ``build(broker, tracker, store)``, so both
sides agree on names, queue and options.
"""

from __future__ import annotations

import os
import time
from typing import Any

from alsek.core.broker import Broker
from alsek.core.message import Message
from alsek.core.status import StatusTracker
from alsek.core.task import Task
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import ResultStore
from faultwork import probe, settings
from faultwork.clock import apply_skew

KIND = "sync"


def count(i: int, message: Message) -> int:
    """Record one execution and return ``i``."""
    field = probe.started(message, KIND)
    probe.ended(field)
    return i


def work(seconds: float, message: Message) -> float:
    """Run for ``seconds`` (so that attempts are in flight when something breaks)."""
    field = probe.started(message, KIND)
    time.sleep(seconds)
    probe.ended(field)
    return seconds


def crash(message: Message) -> None:
    """Kill the process running it on every attempt, like a segfault."""
    probe.started(message, KIND)
    os._exit(3)


def unstorable(message: Message) -> object:
    """Return a value JSON cannot store."""
    probe.ended(probe.started(message, KIND))
    return object()


def noop() -> None:
    """Count a run on one key, and nothing else (the memory scenario)."""
    probe.counted()


def added(seconds: float, message: Message) -> float:
    """``work`` under the name of a task that release 2 introduces (the rolling deploy)."""
    return work(seconds, message)


def flaky(message: Message) -> int:
    """Fail the first attempt, succeed the next (the skewed-clock scenario's retries)."""
    probe.ended(probe.started(message, KIND))
    if message.retries == 0:
        raise RuntimeError("first attempts fail")
    return message.retries


def components(url: str, namespace: str) -> tuple[Broker, StatusTracker, ResultStore]:
    """Broker, status tracker and result store on one backend."""
    backend = RedisBackend(url, namespace=namespace)
    return (
        Broker(backend),
        StatusTracker(backend, ttl=settings.STATUS_TTL_MS),
        ResultStore(backend),
    )


def build(
    broker: Broker,
    tracker: StatusTracker,
    store: ResultStore,
    mechanism: Any = "thread",
    version: int = 2,
) -> dict[str, Task]:
    """Every task of release ``version``, by name, with ``mechanism`` (producers know them
    all; a pool serves those of its release)."""

    def tracked(function: Any, max_retries: int) -> Task:
        options = settings.tracked_options(max_retries)
        return Task(
            function,
            broker,
            status_tracker=tracker,
            result_store=store,
            mechanism=mechanism,
            **options,
        )

    served = {
        "count": tracked(count, settings.COUNT_MAX_RETRIES),
        "work": tracked(work, settings.COUNT_MAX_RETRIES),
        "crash": tracked(crash, settings.CRASH_MAX_RETRIES),
        "unstorable": tracked(unstorable, 0),
        "noop": Task(
            noop, broker, queue=settings.QUEUE, max_retries=0, backoff=None, mechanism=mechanism
        ),
        "flaky": Task(
            flaky,
            broker,
            status_tracker=tracker,
            result_store=store,
            mechanism=mechanism,
            **settings.backed_off_options(),
        ),
    }
    if version >= 2:
        served["added"] = tracked(added, settings.COUNT_MAX_RETRIES)
    return served


if settings.URL_VAR in os.environ:  # a pool process: serve the tasks (module attributes)
    apply_skew()
    TASKS = build(
        *components(*settings.location()),
        mechanism=settings.mechanism(),
        version=settings.version(),
    )
    globals().update(TASKS)
