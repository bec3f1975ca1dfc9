"""``AsyncStatusTracker``: the asyncio shell over the operations of ``BaseStatusTracker``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from alsek.core.status.base import BaseStatusTracker, StatusTarget
from alsek.core.status.types import StatusSubject, StatusUpdate, TaskStatus
from alsek.core.steps.drivers import async_run, async_stream
from alsek.core.steps.ops import Steps, T
from alsek.storage.backends.base import AsyncBackend


class AsyncStatusTracker(BaseStatusTracker):
    """The asyncio twin of ``StatusTracker``: same methods, awaitable.

    Listeners and waiters on one event loop share one subscriber connection per Redis client.

    Raises:
        AssertionError: ``Backend is not async``.
    """

    _IS_ASYNC = True

    def __init__(self, backend: AsyncBackend, **kwargs: Any) -> None:
        super().__init__(backend=backend, **kwargs)

    async def _run(self, steps: Steps[T]) -> T:
        return await async_run(steps, self.backend.conn)

    async def exists(self, message: StatusSubject) -> bool:
        """Whether the message has a status."""
        return await self._run(self._exists_steps(message))

    async def publish_update(self, message: StatusSubject, update: StatusUpdate) -> None:
        """Publish ``update`` on the message's channel without storing it."""
        await self._run(self._publish_steps(message, update))

    def listen_to_updates(
        self, message: StatusSubject, auto_exit: bool = True
    ) -> AsyncIterator[StatusUpdate]:
        """An async generator of the current status, then every later one; see the sync twin.

        Raises:
            ValueError: pub/sub is not enabled (raised by this call, not on iteration).
        """
        self._require_pubsub()
        return async_stream(self._follow_steps(message, auto_exit, None), self.backend.conn)

    async def set(
        self, message: StatusSubject, status: TaskStatus, details: Any | None = None
    ) -> None:
        """Write ``status`` with ``PX ttl``, publish it and update the live index, atomically."""
        await self._run(self._set_steps(message, status, details))

    async def get(self, message: StatusSubject) -> StatusUpdate:
        """The current status; ``KeyError`` if there is none."""
        return await self._run(self._get_steps(message))

    async def wait_for(
        self,
        message: StatusSubject,
        status: StatusTarget,
        timeout: float | None = 5.0,
        poll_interval: float = 0.05,
        raise_on_timeout: bool = True,
    ) -> TaskStatus:
        """Wait until the status is one of ``status``; see ``StatusTracker.wait_for``."""
        return await self._run(
            self._wait_for_steps(message, status, timeout, poll_interval, raise_on_timeout)
        )

    async def history(self, message: StatusSubject) -> list[StatusUpdate]:
        """Every status the message had, oldest first; see ``StatusTracker.history``."""
        return await self._run(self._history_steps(message))

    async def delete(self, message: StatusSubject, check: bool = True) -> None:
        """Delete the status; ``ValidationError`` if ``check`` and it is not terminal."""
        await self._run(self._delete_steps(message, check))
