"""Helpers shared by the test suites: waiting on a condition with a deadline, and calling a
sync or async twin alike."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a method and await it when it returns an awaitable (the async twin)."""
    result = method(*args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def eventually(
    check: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.01,
    not_yet: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds.

    An exception in ``not_yet`` raised by ``check`` counts as "not yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except not_yet:
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(interval)


async def until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """``eventually`` for async tests: the event loop keeps running between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = await call(check)
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        await asyncio.sleep(0.01)
