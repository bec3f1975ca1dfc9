"""``Admin``: the blocking shell over the operations of ``BaseAdmin``."""

from __future__ import annotations

from collections.abc import Sequence

from alsek.admin.base import BaseAdmin
from alsek.admin.types import MessageInfo, WorkerInfo
from alsek.core.broker import Broker
from alsek.core.steps.drivers import run
from alsek.core.steps.ops import Steps, T


class Admin(BaseAdmin):
    """Inspect and manage a ``Broker``'s queues, workers, messages and dead letters.

    Args:
        broker: the sync broker to operate on (its Redis, namespace and serializer).
    """

    broker: Broker

    def __init__(self, broker: Broker) -> None:
        super().__init__(broker)

    def _run(self, steps: Steps[T]) -> T:
        return run(steps, self.broker.backend.conn)

    def workers(self) -> list[WorkerInfo]:
        """The worker pools whose heartbeat has not expired, by host and start time."""
        return self._run(self._workers_steps())

    def messages(
        self,
        queue: str,
        state: str = "ready",
        task: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[MessageInfo]:
        """A page of ``queue``'s messages in ``state`` (``ready``: in claim order;
        ``delayed``: by ready time; ``running``: by lease expiry; ``dead``: by failure time)."""
        return self._run(self._messages_steps(queue, state, task, offset, limit))

    def dead(
        self, queue: str | None = None, task: str | None = None, limit: int | None = 100
    ) -> list[MessageInfo]:
        """Dead-lettered messages, oldest failure first (default: of every queue)."""
        return self._run(self._dead_list_steps(queue, task, limit))

    def requeue_dead(
        self,
        queue: str | None = None,
        task: str | None = None,
        uuids: Sequence[str] | None = None,
    ) -> int:
        """Put dead letters back in their queues (retries reset); how many were requeued."""
        return self._run(self._requeue_dead_steps(queue, task, uuids))

    def purge_dead(
        self,
        queue: str | None = None,
        task: str | None = None,
        uuids: Sequence[str] | None = None,
    ) -> int:
        """Delete dead letters; how many were deleted."""
        return self._run(self._purge_dead_steps(queue, task, uuids))
