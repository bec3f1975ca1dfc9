"""Fixtures for the engine tests: one body per test, run against Broker and AsyncBroker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis

from alsek.core.broker import AsyncBroker, BaseBroker, Broker
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend


@pytest.fixture(params=["sync", "async"])
async def broker(
    request: pytest.FixtureRequest, redis_url: str, namespace: str
) -> AsyncIterator[BaseBroker]:
    """A Broker or an AsyncBroker in this test's namespace."""
    if request.param == "sync":
        backend = RedisBackend(redis_url, namespace=namespace)
        yield Broker(backend)
        backend.conn.close()
    else:
        async_backend = AsyncRedisBackend(redis_url, namespace=namespace)
        yield AsyncBroker(async_backend)
        await async_backend.conn.aclose()


def namespace_keys(client: redis.Redis, namespace: str) -> dict[str, int]:
    """Every key of the namespace (lease locks included) with its PTTL."""
    found = set(client.scan_iter(match=f"{namespace}:*")) | set(
        client.scan_iter(match=f"lock:{namespace}:*")
    )
    return {key: client.pttl(key) for key in sorted(found)}
