"""Shared fixtures: one throwaway real Redis per test session, one namespace per test.

Set ``ALSEK_TEST_REDIS_URL`` to run against an existing server instead; every test still works
inside its own namespace and deletes its keys afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from alsek.testing import RedisServer

pytest_plugins = ["harness.fixtures"]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the Redis server the suite runs against."""
    configured = os.environ.get("ALSEK_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A namespace unique to this test; every key containing it is deleted afterwards."""
    name = f"alsek-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"*{name}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A sync client with ``decode_responses=True``, as alsek expects."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def async_redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client with ``decode_responses=True``."""
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()
