"""Standalone limiters over Redis (Dramatiq's, sync and asyncio): concurrency, sliding-window
and fixed-window (bucket) rate limiters, and a barrier.

``with limiter.acquire():`` (``async with`` for the asyncio twins) raises ``RateLimitExceeded``
when there is no room; raised in a task, the message is retried after its backoff without the
attempt counting against ``max_retries``. Each operation is one atomic Lua script judged by
the server's clock, and every key has a TTL.

``RateLimit`` is the value of a task's ``rate_limit`` option (enforced where messages are
claimed; see ``alsek.core.task_limits``), exported here beside the standalone limiters.
"""

from alsek.core.limits.asyncio import (
    AsyncBarrier,
    AsyncBucketRateLimiter,
    AsyncConcurrentRateLimiter,
    AsyncWindowRateLimiter,
)
from alsek.core.limits.base import DEFAULT_LIMIT_TTL
from alsek.core.limits.sync import (
    Barrier,
    BucketRateLimiter,
    ConcurrentRateLimiter,
    WindowRateLimiter,
)
from alsek.core.task_limits import RateLimit
from alsek.exceptions import RateLimitExceeded

__all__ = [
    "DEFAULT_LIMIT_TTL",
    "AsyncBarrier",
    "AsyncBucketRateLimiter",
    "AsyncConcurrentRateLimiter",
    "AsyncWindowRateLimiter",
    "Barrier",
    "BucketRateLimiter",
    "ConcurrentRateLimiter",
    "RateLimit",
    "RateLimitExceeded",
    "WindowRateLimiter",
]
