"""``Admin``: the blocking shell over the operations of ``BaseAdmin``."""

from __future__ import annotations

from collections.abc import Sequence

from alsek.admin.base import BaseAdmin
from alsek.admin.types import MessageInfo, QueueStats, ThroughputPoint, WorkerInfo
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

    def queues(self) -> list[QueueStats]:
        """Every queue's counts (registered, or served by a live worker), and its tasks',
        sorted by name; one round trip per queue at most, whatever the backlog."""
        return self._run(self._queues_steps())

    def workers(self) -> list[WorkerInfo]:
        """The worker pools whose heartbeat has not expired, by host and start time."""
        return self._run(self._workers_steps())

    def message(self, uuid: str) -> MessageInfo | None:
        """Message ``uuid`` wherever it is (queued, running, dead, done), with its status
        history, result or error; ``None`` when nothing is known of it (or it expired)."""
        return self._run(self._message_steps(uuid))

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

    def pause(self, queue: str) -> None:
        """Stop every pool claiming from ``queue`` (it still accepts messages) until resumed;
        pools notice at their next claim, within a second when idle."""
        self._run(self._pause_steps(queue))

    def resume(self, queue: str) -> bool:
        """Let pools claim from ``queue`` again, waking an idle one at once; whether it was
        paused."""
        return self._run(self._resume_steps(queue))

    def purge(self, queue: str, state: str = "ready") -> int:
        """Delete ``queue``'s waiting messages: ``ready``, ``delayed`` or ``all`` (both);
        running ones finish. How many were deleted."""
        return self._run(self._purge_steps(queue, state))

    def revoke(self, uuid: str) -> bool:
        """Revoke message ``uuid``: out of its queue (dead letter kept), stopped if it runs,
        FAILED if it has a status; ``False`` when it is not queued or running."""
        return self._run(self._revoke_steps(uuid))

    def run_now(self, uuid: str) -> bool:
        """Make delayed message ``uuid`` (waiting for its delay or a retry's backoff) ready at
        once, in its place by priority; ``False`` when it is not delayed (any more)."""
        return self._run(self._run_now_steps(uuid))

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

    def throughput(
        self,
        queue: str | None = None,
        task: str | None = None,
        since_ms: int | None = None,
        step: str = "minute",
    ) -> list[ThroughputPoint]:
        """How many attempts ended per ``step`` (``minute``, kept 48 h, or ``hour``, kept 14
        days), oldest first, one point per step (zeros where nothing ran) from the one holding
        ``since_ms`` (default: the last hour, or the last day) to the current one: of ``queue``
        (default: every queue) and ``task`` (default: every task). One round trip of
        O(points x queues) reads, whatever the traffic.
        """
        return self._run(self._throughput_steps(queue, task, since_ms, step))
