"""What is left in a set of queues: ready messages per task, delayed ones, and leased ones.

Read as steps (one round trip, then one per queue), so the in-process worker reads it with the
blocking driver for sync tasks and on its event loop for async ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alsek.core.broker import keys
from alsek.core.steps.ops import Steps, batched, call
from alsek.storage.backends.base import BaseBackend


@dataclass(frozen=True)
class QueueBacklog:
    """One queue's messages that are not done: ``ready`` (per task name), ``delayed`` (a
    delay or a retry's backoff not over yet) and ``leased`` (claimed, running)."""

    namespace: str
    queue: str
    ready: dict[str, int]
    delayed: int
    leased: int

    @property
    def ready_tasks(self) -> set[str]:
        """The tasks with ready messages."""
        return {name for name, count in self.ready.items() if count}

    @property
    def empty(self) -> bool:
        """Whether nothing is left in the queue."""
        return not (sum(self.ready.values()) or self.delayed or self.leased)

    def describe(self, served: Sequence[str]) -> str:
        """One line naming what is left; tasks outside ``served`` are marked as such."""
        parts = []
        for name, count in sorted(self.ready.items()):
            if count:
                unserved = "" if name in served else ", a task this worker does not serve"
                parts.append(f"{count} ready of {name!r}{unserved}")
        if self.delayed:
            parts.append(f"{self.delayed} delayed (a delay or a retry's backoff)")
        if self.leased:
            parts.append(f"{self.leased} claimed and running")
        return f"queue {self.queue!r}: {', '.join(parts)}"


def backlog_steps(
    backend: BaseBackend, queues: Sequence[str], tasks: Sequence[str]
) -> Steps[list[QueueBacklog]]:
    """The backlog of each of ``queues`` (in ``backend``'s namespace), counting the ready
    messages of ``tasks`` and of every other task that has had messages there.

    Each queue's counts are read at one instant (MULTI/EXEC: a message being claimed meanwhile
    is either ready or leased, never neither); its keys share one Cluster slot.
    """
    prefix = f"{backend.namespace}:"
    known = yield batched(*(("SMEMBERS", prefix + keys.tasks_key(queue)) for queue in queues))
    backlogs = []
    for queue, seen in zip(queues, known):
        names = sorted({*tasks, *seen})
        # a parked message (its concurrency key full) is as ready as any: waiting for a slot
        waiting = [f(queue, name) for name in names for f in (keys.ready_key, keys.task_parked_key)]
        counts = yield call(
            ("ZCARD", prefix + keys.delayed_key(queue)),
            ("ZCARD", prefix + keys.leases_key(queue)),
            *(("ZCARD", prefix + key) for key in waiting),
            atomic=True,
        )
        delayed, leased, *sizes = (int(count) for count in counts)
        ready = [sizes[i] + sizes[i + 1] for i in range(0, len(sizes), 2)]
        backlogs.append(
            QueueBacklog(backend.namespace, queue, dict(zip(names, ready)), delayed, leased)
        )
    return backlogs
