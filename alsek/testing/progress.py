"""What an in-process worker's pools did, as ``join()`` needs to know it.

The pools report each message they start and finish, each pass of their loop, and each
failure for good (through the tasks' ``on_failure`` hook); every report moves a version number
and wakes whoever waits for a change. ``join()`` waits on that, never on a timer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alsek.core.message import Message


@dataclass(frozen=True)
class Failure:
    """A message that failed for good, and the exception of its last attempt."""

    message: Message
    exception: BaseException


class Progress:
    """Messages running, failures, and a version that moves at every report."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._version = 0
        self._running: dict[str, Message] = {}
        self._failures: list[Failure] = []

    def _report(self, change: Callable[[], object]) -> None:
        with self._changed:
            change()
            self._version += 1
            self._changed.notify_all()

    def started(self, message: Message) -> None:
        """A message starts running."""
        self._report(lambda: self._running.__setitem__(message.uuid, message))

    def finished(self, message: Message) -> None:
        """A run of ``message`` is done (its outcome is written).

        Only that run: a retry with no backoff can start the next attempt (the same uuid, another
        ``Message``) before the pool hears that the first one ended.
        """

        def forget() -> None:
            if self._running.get(message.uuid) is message:
                del self._running[message.uuid]

        self._report(forget)

    def failed(self, message: Message, exception: BaseException) -> None:
        """A message failed for good with ``exception``."""
        self._report(lambda: self._failures.append(Failure(message, exception)))

    def changed(self) -> None:
        """Something else happened (a pass of a pool's loop): worth looking at Redis again."""
        self._report(lambda: None)

    @property
    def version(self) -> int:
        """Moves at every report."""
        with self._changed:
            return self._version

    def running(self) -> list[Message]:
        """The messages running now."""
        with self._changed:
            return list(self._running.values())

    def failures(self) -> list[Failure]:
        """Every failure so far, first first."""
        with self._changed:
            return list(self._failures)

    def wait_for_change(self, version: int, timeout_seconds: float | None) -> None:
        """Block until the version moves past ``version``, or ``timeout_seconds``."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout_seconds)


def reporting_failures(hook: Callable[..., Any], progress: Progress) -> Callable[..., Any]:
    """``on_failure`` that reports the failure to ``progress``, then runs the task's own."""

    def on_failure(message: Message, exception: BaseException) -> Any:
        progress.failed(message, exception)
        return hook(message, exception=exception)

    return on_failure
