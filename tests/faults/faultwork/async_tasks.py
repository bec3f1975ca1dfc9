"""The async twins of ``tasks.count`` and ``tasks.work``, for ``alsek async-pool``.

Same names and queue as the sync tasks, so a message submitted by a sync producer runs in
whichever pool, thread or async, claims it first.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alsek.core.broker import AsyncBroker
from alsek.core.message import Message
from alsek.core.status import AsyncStatusTracker
from alsek.core.task import AsyncTask
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.result import AsyncResultStore
from faultwork import probe, settings
from faultwork.clock import apply_skew

KIND = "async"


async def count(i: int, message: Message) -> int:
    """Record one execution and return ``i``."""
    field = await probe.started_async(message, KIND)
    await probe.ended_async(field)
    return i


async def work(seconds: float, message: Message) -> float:
    """Run for ``seconds``."""
    field = await probe.started_async(message, KIND)
    await asyncio.sleep(seconds)
    await probe.ended_async(field)
    return seconds


async def added(seconds: float, message: Message) -> float:
    """``work`` under the name of a task that release 2 introduces."""
    return await work(seconds, message)


def build(url: str, namespace: str, version: int = 2) -> dict[str, AsyncTask]:
    """The served async tasks, by name (their clients connect lazily, in the pool's loop)."""
    backend = AsyncRedisBackend(url, namespace=namespace)
    broker = AsyncBroker(backend)
    tracker = AsyncStatusTracker(backend, ttl=settings.STATUS_TTL_MS)
    store = AsyncResultStore(backend)

    def tracked(function: Any) -> AsyncTask:
        options = settings.tracked_options(settings.COUNT_MAX_RETRIES)
        return AsyncTask(function, broker, status_tracker=tracker, result_store=store, **options)

    served = {"count": tracked(count), "work": tracked(work)}
    if version >= 2:
        served["added"] = tracked(added)
    return served


if settings.URL_VAR in os.environ:
    apply_skew()
    TASKS = build(*settings.location(), version=settings.version())
    globals().update(TASKS)
