"""Process-level plumbing: stop signals, CPU count and raising inside another thread.

Stop signals are handled in one place. The first :class:`StopSignalListener` built in the main
thread installs a single dispatcher for SIGTERM/SIGINT; every signal then reaches *every*
listener alive in the process (a later listener does not silence an earlier one), and also sets a
process-wide stop flag. Waiting code (``utils.waiting``, result stores) only reads that flag with
:func:`stop_requested` / :func:`wait_for_stop`, so it works from any thread and never touches the
signal handlers.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import threading
import weakref
from types import FrameType

from alsek.defaults import DEFAULT_STOP_SIGNALS

log = logging.getLogger(__name__)

#: Longest stretch an async wait sleeps before looking at its event again.
_ASYNC_POLL_SECONDS = 0.02

_STOP_EVENT = threading.Event()
_LISTENERS: dict[int, weakref.ReferenceType[StopSignalListener]] = {}


def stop_requested() -> bool:
    """Tell whether this process has received a stop signal (through any listener)."""
    return _STOP_EVENT.is_set()


def wait_for_stop(timeout: int | None) -> bool:
    """Block up to ``timeout`` ms (``None``: forever) for a stop signal; return whether one came."""
    return _STOP_EVENT.wait(None if timeout is None else max(timeout, 0) / 1000)


async def async_wait_for_stop(timeout_seconds: float | None) -> bool:
    """Like :func:`wait_for_stop`, without blocking the event loop (the timeout is in seconds)."""
    return await _async_wait_event(_STOP_EVENT, timeout_seconds)


def clear_stop_request() -> None:
    """Forget a received stop signal: for tests, or a process that handled it and carries on."""
    _STOP_EVENT.clear()


async def _async_wait_event(event: threading.Event, timeout_seconds: float | None) -> bool:
    """Wait for a ``threading.Event`` from a coroutine, checking it every few milliseconds.

    A signal handler cannot wake an asyncio loop safely by itself, so the event is polled in short
    ``asyncio.sleep`` slices; the loop stays free meanwhile.
    """
    loop = asyncio.get_running_loop()
    deadline = None if timeout_seconds is None else loop.time() + max(timeout_seconds, 0)
    while not event.is_set():
        if deadline is None:
            await asyncio.sleep(_ASYNC_POLL_SECONDS)
            continue
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(remaining, _ASYNC_POLL_SECONDS))
    return True


def _dispatch(signum: int, frame: FrameType | None) -> None:
    """The one installed handler: notify every live listener, then maybe force the exit."""
    force_exit = False
    for reference in list(_LISTENERS.values()):
        listener = reference()
        if listener is not None and signum in listener.stop_signals:
            force_exit = listener._handle(signum) or force_exit
    _STOP_EVENT.set()
    if force_exit:
        sys.exit(1)


class StopSignalListener:
    """Turns SIGTERM/SIGINT into an event that loops can check and wait on.

    Args:
        stop_signals: the signals that mean "stop".
        exit_override: when a second stop signal arrives, exit at once with ``sys.exit(1)``.

    Built outside the main thread it installs nothing (Python allows handlers only there) but
    still works: it is notified if the main thread installed the dispatcher, and its
    ``exit_event`` can be set directly.
    """

    def __init__(
        self,
        stop_signals: tuple[int, ...] = DEFAULT_STOP_SIGNALS,
        exit_override: bool = True,
    ) -> None:
        self.stop_signals = stop_signals
        self.exit_override = exit_override
        self.exit_event = threading.Event()
        key = id(self)
        _LISTENERS[key] = weakref.ref(self, lambda _: _LISTENERS.pop(key, None))
        self._install()

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.debug("Not in the main thread: stop signal handlers were not installed.")
            return
        for signum in self.stop_signals:
            signal.signal(signum, _dispatch)

    def close(self) -> None:
        """Stop hearing signals (a pool that has stopped): a later one is not a second one."""
        _LISTENERS.pop(id(self), None)

    def _handle(self, signum: int) -> bool:
        """Record a signal; return whether the process must exit now (a repeated signal)."""
        log.debug("Received stop signal %s.", signal.Signals(signum).name)
        repeated = self.exit_override and self.received
        self.exit_event.set()
        return repeated

    def wait(self, timeout: int | None) -> None:
        """Block until a stop signal arrives or ``timeout`` ms pass (``None``: no limit)."""
        self.exit_event.wait(None if timeout is None else max(timeout, 0) / 1000)

    async def async_wait(self, timeout_seconds: float | None) -> None:
        """Like :meth:`wait` for coroutines: return as soon as a stop signal arrives."""
        await _async_wait_event(self.exit_event, timeout_seconds)

    @property
    def received(self) -> bool:
        """Whether a stop signal has arrived."""
        return self.exit_event.is_set()


def smart_cpu_count() -> int:
    """CPUs minus one, leaving a core for the pool's own loop; never less than 1."""
    return max(1, (os.cpu_count() or 1) - 1)


def thread_raise(ident: int, exception: type[BaseException]) -> None:
    """Raise ``exception`` asynchronously inside the thread ``ident`` (CPython only).

    The exception lands at the thread's next bytecode boundary; a thread blocked in C code sees it
    only when it returns to Python. When the call reaches no thread, a warning is logged.

    Raises:
        TypeError: ``exception`` is not an exception class.
    """
    if not (isinstance(exception, type) and issubclass(exception, BaseException)):
        raise TypeError(f"thread_raise() expects an exception class, got {exception!r}")
    set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    changed = set_async_exc(ctypes.c_ulong(ident), ctypes.py_object(exception))
    if changed > 1:
        # Documented escape hatch: more than one thread state was hit, so undo it.
        set_async_exc(ctypes.c_ulong(ident), None)
    if changed != 1:
        log.warning("Raising %s in thread %s affected %s threads.", exception, ident, changed)
