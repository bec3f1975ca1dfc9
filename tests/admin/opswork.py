"""The tasks of the operator tests: submitted by the tests, served by pools in subprocesses.

The Redis URL and namespace come from the environment (``opsenv``), which
pool subprocesses inherit; importing this module needs them set. The queue ``ops`` holds the
sync tasks (``add``, ``sleepy``, ``boom`` run in threads, ``crunch`` in processes), ``side``
the thread task ``side``, ``pings`` the async task ``ping``.
"""

from __future__ import annotations

import os
import time

from opsenv import NAMESPACE_VAR, URL_VAR

from alsek import task
from alsek.core.broker import AsyncBroker, Broker
from alsek.core.status import AsyncStatusTracker, StatusTracker
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import AsyncResultStore, ResultStore

QUEUE = "ops"
ASYNC_QUEUE = "pings"
SIDE_QUEUE = "side"

_url, _namespace = os.environ[URL_VAR], os.environ[NAMESPACE_VAR]
broker = Broker(RedisBackend(_url, namespace=_namespace))
tracker = StatusTracker(broker.backend)
store = ResultStore(broker.backend)
async_broker = AsyncBroker(AsyncRedisBackend(_url, namespace=_namespace))

_sync = {"queue": QUEUE, "status_tracker": tracker, "result_store": store, "max_retries": 0}


@task(broker, **_sync)
def add(a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b


@task(broker, **_sync)
def sleepy(seconds: float) -> None:
    """Sleep ``seconds``, in short slices (a thread can be stopped between them)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


@task(broker, **_sync)
def boom() -> None:
    """Always fail."""
    raise ValueError("boom on purpose")


@task(broker, **{**_sync, "queue": SIDE_QUEUE})
def side(x: int) -> int:
    """Return ``x`` (a task of a second queue)."""
    return x


@task(broker, mechanism="process", **_sync)
def crunch(n: int) -> int:
    """Return ``n * 2`` in a process of its own."""
    return n * 2


@task(
    async_broker,
    queue=ASYNC_QUEUE,
    status_tracker=AsyncStatusTracker(async_broker.backend),
    result_store=AsyncResultStore(async_broker.backend),
    max_retries=0,
)
async def ping() -> str:
    """Answer ``"pong"``."""
    return "pong"
