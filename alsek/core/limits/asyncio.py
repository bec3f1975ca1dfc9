"""The asyncio limiters: the twins of ``sync``'s, over an ``AsyncRedisBackend``; waiting
awaits Redis, so other tasks keep running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

from alsek.core.limits.base import (
    BarrierSteps,
    BucketLimit,
    ConcurrencyLimit,
    LimitSteps,
    WindowLimit,
)
from alsek.core.steps.drivers import async_run
from alsek.exceptions import RateLimitExceeded

__all__ = [
    "AsyncBarrier",
    "AsyncBucketRateLimiter",
    "AsyncConcurrentRateLimiter",
    "AsyncWindowRateLimiter",
]


class _AsyncLimiter(LimitSteps):
    """``acquire()`` over an asyncio client."""

    _is_async: ClassVar[bool] = True

    @asynccontextmanager
    async def acquire(self, raise_on_failure: bool = True) -> AsyncIterator[bool]:
        """``async with limiter.acquire():``; see the sync limiters' ``acquire``."""
        conn = self.backend.conn
        token = await async_run(self._acquire_steps(), conn)
        if token is None:
            if raise_on_failure:
                raise RateLimitExceeded(self._exceeded_text())
            yield False
            return
        try:
            yield True
        finally:
            await async_run(self._release_steps(token), conn)


class AsyncConcurrentRateLimiter(_AsyncLimiter, ConcurrencyLimit):
    """The asyncio ``ConcurrentRateLimiter`` (same arguments, an ``AsyncRedisBackend``)."""


class AsyncWindowRateLimiter(_AsyncLimiter, WindowLimit):
    """The asyncio ``WindowRateLimiter`` (same arguments, an ``AsyncRedisBackend``)."""


class AsyncBucketRateLimiter(_AsyncLimiter, BucketLimit):
    """The asyncio ``BucketRateLimiter`` (same arguments, an ``AsyncRedisBackend``)."""


class AsyncBarrier(BarrierSteps):
    """The asyncio ``Barrier`` (same arguments, an ``AsyncRedisBackend``)."""

    _is_async: ClassVar[bool] = True

    async def wait(self, timeout_ms: int | None = None) -> bool:
        """See ``Barrier.wait``."""
        return await async_run(self._wait_steps(timeout_ms), self.backend.conn)
