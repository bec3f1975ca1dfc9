"""The namespace's queue registry, as steps: recording queues, reading them, forgetting them.

Producers record each queue they submit to (at most every ``REGISTRY_REFRESH_SECONDS`` per
broker, in the submit's round trip); consumers of "all queues" and the DLQ operations over every
queue read the registry instead of scanning Redis. A registry that only grew would make those
reads, and every "all queues" claim, slower with each queue name ever used; so a read also
forgets queues that hold nothing (no message, no dead letter) and that no producer registered
for longer than a producer keeps its registration (one that submits again registers again).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from alsek.core.broker import keys
from alsek.core.broker.calls import BrokerCalls
from alsek.core.broker.scripts import get_script
from alsek.core.message import Message
from alsek.core.steps.ops import ScriptCall, Steps, batched
from alsek.utils.temporal import utcnow_timestamp_ms

#: How often a broker re-registers a queue it submits to (which refreshes the registry's TTL).
REGISTRY_REFRESH_SECONDS = 600.0
#: A queue no producer registered for this long (ms) may be forgotten once it is empty: every
#: producer then registers it again before its next submit. The margin covers slow replies.
REGISTRY_IDLE_MS = int(REGISTRY_REFRESH_SECONDS * 1000) + 60_000
#: Queues a registry read looks at for forgetting, at most (the oldest registrations first).
FORGET_PER_READ = 100


class RegistrySteps(BrokerCalls):
    """The queue registry of a broker's namespace."""

    _registered: dict[str, float]

    def _unregistered(self, messages: Iterable[Message]) -> list[str]:
        """The queues of ``messages`` this broker has not registered lately."""
        now = time.monotonic()
        stale = REGISTRY_REFRESH_SECONDS
        return [
            queue
            for queue in dict.fromkeys(message.queue for message in messages)
            if now - self._registered.get(queue, -stale) >= stale
        ]

    def _register_call(self, queue: str, ttl: int) -> ScriptCall:
        """Record ``queue`` in the registry for at least ``ttl`` ms; see ``register.lua``."""
        return self._registry_script("register", queue, ttl)

    def _mark_registered(self, queues: Iterable[str]) -> None:
        now = time.monotonic()
        for queue in queues:
            self._registered[queue] = now

    def _registry_script(self, name: str, *args: str | int | float) -> ScriptCall:
        """A script call routed to the registry's slot; ARGV = prefix, now, *args."""
        names = (keys.QUEUE_REGISTRY, keys.QUEUE_REGISTRY_SEEN, keys.QUEUE_REGISTRY_WAKE)
        declared = tuple(self._full(name) for name in names)
        return ScriptCall(get_script(name), declared, (self._prefix, utcnow_timestamp_ms(), *args))

    def _queues_steps(self) -> Steps[list[str]]:
        """The registered queues, sorted, after forgetting those left empty (see above)."""
        [(queues, candidates)] = yield batched(
            self._registry_script("queues", REGISTRY_IDLE_MS, FORGET_PER_READ)
        )
        if candidates:
            dropped = yield from self._forget_steps(candidates)
            queues = set(queues) - set(dropped)
        return sorted(queues)

    def _forget_steps(self, candidates: Sequence[str]) -> Steps[list[str]]:
        """Forget those of ``candidates`` that hold nothing; returns them."""
        # Its task set is read first, so that the script declares each task's ready and parked
        # sets; a task it does not name (new since the read) keeps the queue (forget_queue.lua).
        task_sets = yield batched(
            *(("SMEMBERS", self._full(keys.tasks_key(q))) for q in candidates)
        )
        calls = []
        for queue, tasks in zip(candidates, task_sets):
            names = sorted(tasks)
            waiting = [
                self._full(name)
                for task in names
                for name in (keys.ready_key(queue, task), keys.task_parked_key(queue, task))
            ]
            calls.append(self._queue_script("forget_queue", queue, *names, declared=waiting))
        empty = yield batched(*calls)
        args: list[str | int | float] = [REGISTRY_IDLE_MS, len(candidates)]
        for queue, flag in zip(candidates, empty):
            args += [queue, int(flag)]
        [dropped] = yield batched(self._registry_script("unregister", *args))
        return [str(queue) for queue in dropped]

    def _queue_list_steps(self, queue: str | None) -> Steps[list[str]]:
        """``[queue]``, or every registered queue when ``queue`` is ``None``."""
        if queue is not None:
            return [queue]
        return (yield from self._queues_steps())
