"""``StatusTracker``: the blocking shell over the operations of ``BaseStatusTracker``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alsek.core.status.base import BaseStatusTracker, StatusTarget
from alsek.core.status.types import StatusSubject, StatusUpdate, TaskStatus
from alsek.core.steps.drivers import run, stream
from alsek.core.steps.ops import Steps, T


class StatusTracker(BaseStatusTracker):
    """Track message statuses on a sync backend; see ``BaseStatusTracker``.

    Takes a sync backend (the constructor is ``BaseStatusTracker``'s). Every method works from
    any thread. Listeners and waiters of one process share one
    subscriber connection per Redis client.
    """

    def _run(self, steps: Steps[T]) -> T:
        return run(steps, self.backend.conn)

    def exists(self, message: StatusSubject) -> bool:
        """Whether the message has a status."""
        return self._run(self._exists_steps(message))

    def publish_update(self, message: StatusSubject, update: StatusUpdate) -> None:
        """Publish ``update`` on the message's channel without storing it."""
        self._run(self._publish_steps(message, update))

    def listen_to_updates(
        self, message: StatusSubject, auto_exit: bool = True
    ) -> Iterator[StatusUpdate]:
        """The current status (if any), then every later one, in order and once each.

        A listener that starts after the task finished still gets the final status. With
        ``auto_exit`` it stops after a terminal status. Closing the iterator unsubscribes.

        Raises:
            ValueError: pub/sub is not enabled (raised by this call, not on iteration).
        """
        self._require_pubsub()
        return stream(self._follow_steps(message, auto_exit, None), self.backend.conn)

    def set(self, message: StatusSubject, status: TaskStatus, details: Any | None = None) -> None:
        """Write ``status`` with ``PX ttl``, publish it and update the live index, atomically."""
        self._run(self._set_steps(message, status, details))

    def get(self, message: StatusSubject) -> StatusUpdate:
        """The current status.

        Raises:
            KeyError: the message has no status.
        """
        return self._run(self._get_steps(message))

    def wait_for(
        self,
        message: StatusSubject,
        status: StatusTarget,
        timeout: float | None = 5.0,
        poll_interval: float = 0.05,
        raise_on_timeout: bool = True,
    ) -> TaskStatus:
        """Wait until the status is one of ``status`` and return it (``timeout`` in seconds).

        With pub/sub it wakes on each change, so ``poll_interval`` (seconds) only matters
        without it. Works from any thread.

        Raises:
            ValueError: ``status`` is not a TaskStatus, or a tuple or list of them.
            TimeoutError: the timeout passed first and ``raise_on_timeout`` (otherwise the last
                status seen is returned, or ``UNKNOWN``).
        """
        return self._run(
            self._wait_for_steps(message, status, timeout, poll_interval, raise_on_timeout)
        )

    def history(self, message: StatusSubject) -> list[StatusUpdate]:
        """Every status the message had, oldest first, each with the time (``at``, ms) it was
        written: the last ``HISTORY_LENGTH`` of them, kept as long as the status."""
        return self._run(self._history_steps(message))

    def delete(self, message: StatusSubject, check: bool = True) -> None:
        """Delete the status (and its live-index entry).

        Raises:
            ValidationError: ``check`` and the status is not terminal.
            KeyError: there is no status.
        """
        self._run(self._delete_steps(message, check))
