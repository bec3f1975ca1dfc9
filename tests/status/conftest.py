"""Fixtures for status, result and iteration tests: one body per test, run sync and async."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from alsek.core.broker import AsyncBroker, Broker
from alsek.core.message import Message
from alsek.core.status import AsyncStatusTracker, StatusTracker
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import AsyncResultStore, ResultStore


async def collect(iterable: Any, limit: int | None = None) -> list[Any]:
    """Items of a sync or async iterator (at most ``limit``); the iterator is closed after."""
    items: list[Any] = []
    if hasattr(iterable, "__anext__"):
        try:
            async for item in iterable:
                items.append(item)
                if limit is not None and len(items) >= limit:
                    break
        finally:
            await iterable.aclose()
        return items
    try:
        for item in iterable:
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
    finally:
        iterable.close()
    return items


async def first(iterator: Any) -> Any:
    """The next item of a sync or async iterator."""
    if hasattr(iterator, "__anext__"):
        return await iterator.__anext__()
    return next(iterator)


async def close(iterator: Any) -> None:
    """Close a sync or async generator."""
    if hasattr(iterator, "aclose"):
        await iterator.aclose()
    else:
        iterator.close()


def make(task: str = "work", queue: str = "q", **kwargs: Any) -> Message:
    """A message for tests."""
    return Message(task, queue=queue, **kwargs)


class Kit:
    """A backend of one kind, with a tracker, a result store and a broker on it."""

    def __init__(self, kind: str, url: str, namespace: str) -> None:
        self.kind = kind
        if kind == "sync":
            self.backend: Any = RedisBackend(url, namespace=namespace)
            self.tracker: Any = StatusTracker(self.backend)
            self.store: Any = ResultStore(self.backend)
            self.broker: Any = Broker(self.backend)
        else:
            self.backend = AsyncRedisBackend(url, namespace=namespace)
            self.tracker = AsyncStatusTracker(self.backend)
            self.store = AsyncResultStore(self.backend)
            self.broker = AsyncBroker(self.backend)

    async def close(self) -> None:
        if self.kind == "sync":
            self.backend.conn.close()
        else:
            await self.backend.conn.aclose()


@pytest.fixture(params=["sync", "async"])
async def kit(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> AsyncIterator[Kit]:
    """Tracker, store and broker, sync or async, in this test's namespace."""
    built = Kit(request.param, redis_url, namespace)
    yield built
    await built.close()


@pytest.fixture
def sync_kit(redis_url: str, namespace: str) -> Any:
    """The sync kit only (for threads, the scanner and ResultPool)."""
    built = Kit("sync", redis_url, namespace)
    yield built
    built.backend.conn.close()


def key_pttl(client: redis.Redis, key: str) -> int:
    """PTTL of a key (-2 missing, -1 no expiry)."""
    return int(client.pttl(key))
