"""A pool's run, seen from outside: whether ``run()`` has begun and ended, so that ``stop()``
can wait for the end from any thread (sync pools) or any event loop (asyncio pools).

The end is a ``concurrent.futures.Future``: a thread waits on it with a timeout, a coroutine
awaits it through ``asyncio.wrap_future``; nothing polls.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout


class RunState:
    """Whether a pool's ``run()`` began and ended; a pool runs once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._began = False
        self._thread: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # an asyncio pool's, while it runs
        self.ended: Future[None] = Future()

    def begin(self, pool: object) -> None:
        """Note that ``run()`` starts; a second run of the same pool is refused."""
        with self._lock:
            if self._began:
                raise RuntimeError(
                    f"This {type(pool).__name__} has run already: build a new pool to run again"
                )
            self._began = True
            self._thread = threading.get_ident()

    def end(self) -> None:
        """Note that ``run()`` returned (or raised)."""
        if not self.ended.done():
            self.ended.set_result(None)

    @property
    def running(self) -> bool:
        """Whether ``run()`` began and has not ended."""
        return self._began and not self.ended.done()

    def in_run_thread(self) -> bool:
        """Whether the caller is the thread running ``run()`` (it cannot wait for itself)."""
        return self._thread == threading.get_ident()

    def wait(self, pool: object, timeout: int | None) -> None:
        """Block until ``run()`` ended; ``TimeoutError`` after ``timeout`` ms (``None``: none)."""
        try:
            self.ended.result(None if timeout is None else max(timeout, 0) / 1000)
        except FutureTimeout:
            raise _not_stopped(pool, timeout) from None

    async def async_wait(self, pool: object, timeout: int | None) -> None:
        """Like ``wait``, awaited (from any event loop)."""
        ended = asyncio.shield(asyncio.wrap_future(self.ended))
        try:
            await asyncio.wait_for(ended, None if timeout is None else max(timeout, 0) / 1000)
        except asyncio.TimeoutError:
            raise _not_stopped(pool, timeout) from None


def _not_stopped(pool: object, timeout: int | None) -> TimeoutError:
    grace = getattr(pool, "grace_period", None)
    return TimeoutError(
        f"{type(pool).__name__} did not stop within {timeout} ms (its grace period is {grace} "
        "ms); it goes on shutting down: call stop() again to wait longer"
    )
