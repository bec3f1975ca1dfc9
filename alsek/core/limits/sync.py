"""The blocking limiters: ``ConcurrentRateLimiter``, ``WindowRateLimiter``,
``BucketRateLimiter`` and ``Barrier``, over a sync ``RedisBackend``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from alsek.core.limits.base import (
    BarrierSteps,
    BucketLimit,
    ConcurrencyLimit,
    LimitSteps,
    WindowLimit,
)
from alsek.core.steps.drivers import run
from alsek.exceptions import RateLimitExceeded

__all__ = ["Barrier", "BucketRateLimiter", "ConcurrentRateLimiter", "WindowRateLimiter"]


class _Limiter(LimitSteps):
    """``acquire()`` over a blocking client."""

    _is_async: ClassVar[bool] = False

    @contextmanager
    def acquire(self, raise_on_failure: bool = True) -> Iterator[bool]:
        """Take room for the ``with`` block, giving it back at the end (concurrency limits).

        Yields whether room was taken; with ``raise_on_failure`` (the default), no room
        raises ``RateLimitExceeded`` instead, which a task lets propagate to be retried
        after its backoff, without the attempt counting.
        """
        conn = self.backend.conn
        token = run(self._acquire_steps(), conn)
        if token is None:
            if raise_on_failure:
                raise RateLimitExceeded(self._exceeded_text())
            yield False
            return
        try:
            yield True
        finally:
            run(self._release_steps(token), conn)


class ConcurrentRateLimiter(_Limiter, ConcurrencyLimit):
    """At most ``limit`` holders of ``key`` at once, across every process.

    Args:
        key: the limiter's name (shared by everyone who limits the same thing).
        limit: holders at once.
        backend: a ``RedisBackend``.
        ttl: ms after which a holder's slot frees even if it never released it (it died);
            longer than your longest ``with`` block.

    Example::

        limiter = ConcurrentRateLimiter(key="legacy-api", limit=4, backend=backend)
        with limiter.acquire():
            call_the_legacy_api()
    """


class WindowRateLimiter(_Limiter, WindowLimit):
    """At most ``limit`` uses of ``key`` in any ``window_ms`` (a sliding window).

    Args:
        key: the limiter's name.
        limit: uses per window.
        window_ms: the window's length.
        backend: a ``RedisBackend``.
    """


class BucketRateLimiter(_Limiter, BucketLimit):
    """At most ``limit`` uses of ``key`` per ``bucket_ms`` (fixed windows: the count starts
    over at every multiple of ``bucket_ms`` of the server's clock).

    Args:
        key: the limiter's name.
        limit: uses per bucket.
        bucket_ms: the bucket's length.
        backend: a ``RedisBackend``.
    """


class Barrier(BarrierSteps):
    """Opens once ``parties`` parties called ``wait()``.

    Args:
        key: the barrier's name.
        parties: how many ``wait()`` calls open it.
        backend: a ``RedisBackend``.
        ttl: ms the barrier lives after the last arrival.
    """

    _is_async: ClassVar[bool] = False

    def wait(self, timeout_ms: int | None = None) -> bool:
        """Arrive, and block until ``parties`` arrived (``True``) or ``timeout_ms`` passed
        (``False``; this arrival still counts). Each call is one party.

        Raises:
            ValueError: ``timeout_ms`` is not an int >= 0 or ``None``.
        """
        return run(self._wait_steps(timeout_ms), self.backend.conn)
