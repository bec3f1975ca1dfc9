"""Tasks that run until the test lets them go, for the pool start/stop tests.

``hold(url, key)`` pushes to ``{key}:started``, then blocks on the Redis list ``key`` (of the
server at ``url``) until the test pushes to it, so a message runs for exactly as long as the
test wants, in whatever process the pool runs it.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from alsek import AsyncBroker, Broker, task
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from alsek.storage.result import AsyncResultStore, ResultStore

#: Longest a held message waits for the test (a test that forgets to release it fails).
HOLD_SECONDS = 60


def hold(url: str, key: str) -> str:
    """Say so on ``{key}:started``, then run until the test pushes to ``key``."""
    client = redis.Redis.from_url(url)
    try:
        client.lpush(f"{key}:started", 1)
        return "released" if client.blpop([key], HOLD_SECONDS) else "never released"
    finally:
        client.close()


async def hold_async(url: str, key: str) -> str:
    """``hold`` for the async pool."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.lpush(f"{key}:started", 1)
        return "released" if await client.blpop([key], HOLD_SECONDS) else "never released"
    finally:
        await client.aclose()


def sync_task(url: str, namespace: str, mechanism: str) -> tuple[Any, ResultStore]:
    """The ``hold`` task of a thread or process pool, and its result store."""
    backend = RedisBackend(url, namespace=namespace)
    results = ResultStore(backend)
    built = task(Broker(backend), queue="hold", mechanism=mechanism, result_store=results)(hold)
    return built, results


def async_task(url: str, namespace: str) -> tuple[Any, AsyncResultStore]:
    """The ``hold_async`` task of an async pool, and its result store (build it in the pool's
    event loop)."""
    backend = AsyncRedisBackend(url, namespace=namespace)
    results = AsyncResultStore(backend)
    return task(AsyncBroker(backend), queue="hold", result_store=results)(hold_async), results
