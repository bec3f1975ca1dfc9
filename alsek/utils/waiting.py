"""Wait for a condition, giving up on a timeout or as soon as the process is told to stop.

Waiting only reads the process-wide stop flag of ``utils.system``; it never builds a
``StopSignalListener`` or installs signal handlers, so it is safe from any thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from alsek.utils.system import async_wait_for_stop, stop_requested, wait_for_stop
from alsek.utils.temporal import time_ms


def _validate(sleep_interval: int, timeout: int | None) -> None:
    if sleep_interval < 0:
        raise ValueError(f"sleep_interval must be >= 0 ms, got {sleep_interval!r}")
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be >= 0 ms or None, got {timeout!r}")


def _next_sleep(sleep_interval: int, timeout: int | None, start: int) -> int | None:
    """Milliseconds to sleep before the next check, or ``None`` when the timeout has passed."""
    if timeout is None:
        return sleep_interval
    remaining = timeout - (time_ms() - start)
    if remaining < 0:
        return None
    return min(sleep_interval, remaining)


def waiter(
    condition: Callable[[], bool],
    sleep_interval: int = 1 * 1000,
    timeout: int | None = None,
    timeout_msg: str | None = None,
) -> bool:
    """Poll ``condition`` every ``sleep_interval`` ms until it is true.

    Returns:
        ``True`` once ``condition()`` is true; ``False`` if a stop signal arrives first (the
        sleep is cut short by the signal).

    Raises:
        TimeoutError: ``timeout`` ms passed first; the message is ``timeout_msg``.
        ValueError: a negative interval or timeout.
    """
    _validate(sleep_interval, timeout)
    start = time_ms()
    while not stop_requested():
        if condition():
            return True
        pause = _next_sleep(sleep_interval, timeout, start)
        if pause is None:
            raise TimeoutError(timeout_msg or "")
        wait_for_stop(pause)
    return False


async def async_waiter(
    condition: Callable[[], Awaitable[bool]],
    sleep_interval: int = 1 * 1000,
    timeout: int | None = None,
    timeout_msg: str | None = None,
) -> bool:
    """:func:`waiter` for an async ``condition``; the event loop stays free while waiting."""
    _validate(sleep_interval, timeout)
    start = time_ms()
    while not stop_requested():
        if await condition():
            return True
        pause = _next_sleep(sleep_interval, timeout, start)
        if pause is None:
            raise TimeoutError(timeout_msg or "")
        if pause == 0:
            await asyncio.sleep(0)
        else:
            await async_wait_for_stop(pause / 1000)
    return False
