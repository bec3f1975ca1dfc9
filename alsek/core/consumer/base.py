"""What ``Consumer`` and ``AsyncConsumer`` share: every decision, written once as steps.

A consumer claims the best ready messages of its subset under leases. When there is nothing to
claim it blocks on Redis (the wake list that submits push to) for no longer than the time until
the next delayed message or lease expiry is due, and never longer than its ``backoff`` allows.
While Redis is unreachable it pauses between attempts (never longer than a quarter of its
lease, so that a claim whose reply was lost is re-sent while Redis keeps that reply), and says
so once.

Claiming, waiting for work and streaming are steps (``alsek.core.steps``) that invoke the
broker; ``Consumer`` runs them with the blocking driver, ``AsyncConsumer`` with the asyncio one
(which awaits the async broker's coroutines). The shells differ only by that, and by how they
pause (``pause_for_outage``).
"""

from __future__ import annotations

import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from alsek.core.backoff import Backoff, ConstantBackoff, LinearBackoff
from alsek.core.broker import AsyncBroker, Broker, Claim, ClaimSource
from alsek.core.broker.effects import ClaimStatus
from alsek.core.lock.base import get_process_lock_owner_id
from alsek.core.message import Message
from alsek.core.steps.ops import Emit, Invoke, Steps
from alsek.core.steps.outage import CLAIM_OUTAGE_PAUSES_MS, REDIS_OUTAGE_ERRORS, outage_pause_ms
from alsek.defaults import DEFAULT_LEASE_TTL
from alsek.utils.namespacing import get_subnamespace, validate_name
from alsek.utils.system import StopSignalListener
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)

SubsetType = list[str] | dict[str, list[str]] | None

#: Longest single block on Redis, so that a stop signal is noticed within this many ms.
MAX_BLOCK_MS = 1000
#: Idle wait cap when the consumer has no backoff (``backoff=None``).
NO_BACKOFF_IDLE_MS = 1000
#: How often the "all queues" mode re-reads the queue registry.
REGISTRY_REFRESH_MS = 5000


def dedup_messages(messages: list[Message]) -> list[Message]:
    """Keep the first occurrence of each uuid, in order."""
    seen: set[str] = set()
    output = []
    for message in messages:
        if message.uuid not in seen:
            seen.add(message.uuid)
            output.append(message)
    return output


def _validate_subset(subset: Any) -> SubsetType:
    """Check the subset's shape and names; clear errors at construction."""
    if subset is None:
        return None
    if isinstance(subset, (list, tuple)):
        queues = [validate_name("queue", queue) for queue in subset]
        if len(set(queues)) != len(queues):
            raise ValueError(f"subset lists a queue more than once: {queues}")
        return queues
    if isinstance(subset, dict):
        output: dict[str, list[str]] = {}
        for queue, tasks in subset.items():
            validate_name("queue", queue)
            if not isinstance(tasks, (list, tuple)) or not tasks:
                raise ValueError(
                    f"subset[{queue!r}] must be a non-empty list of task names, got {tasks!r}"
                )
            output[queue] = [validate_name("task", task) for task in tasks]
        return output
    raise TypeError(
        "subset must be None (all queues), a list of queue names, or a dict of queue name to "
        f"task names; got {type(subset).__name__}"
    )


def _validate_task_names(task_names: Iterable[str] | None) -> tuple[str, ...] | None:
    """The task names a consumer claims, sorted and checked; ``None``: every task."""
    if task_names is None:
        return None
    names = sorted({validate_name("task", name) for name in task_names})
    if not names:
        raise ValueError("task_names is empty: give the tasks to claim, or None for every task")
    return tuple(names)


#: The longest pause between a consumer's attempts during an outage, in parts of its lease
#: (a quarter). Redis keeps a claim's reply for one lease from the claim: a claim whose reply
#: was lost (Redis ran it, then the connection or the master died) must be re-sent within that
#: lease, or its messages stay leased to nobody until the lease expires, and a lost attempt is
#: counted against them though they never started (issue 13). A pool's renewals ride the same
#: pauses and must also land before its leases run out.
OUTAGE_PAUSE_LEASE_PARTS = 4


def outage_pause_cap_ms(lease_ttl: int) -> int:
    """The longest pause (ms) between attempts of a consumer whose lease is ``lease_ttl`` ms."""
    first, cap = CLAIM_OUTAGE_PAUSES_MS
    return max(min(cap, lease_ttl // OUTAGE_PAUSE_LEASE_PARTS), first)


class _OutageLog:
    """Logs a Redis outage once when it starts and once when it ends; paces the retries."""

    def __init__(self) -> None:
        self.failures = 0

    def failed(self, error: Exception, lease_ttl: int) -> int:
        """Record a failed attempt; return how long (ms) to wait before the next one: doubling,
        but never past a quarter of the lease (``outage_pause_cap_ms``)."""
        if self.failures == 0:
            log.warning("Redis is unreachable (%s); retrying until it is back", error)
        self.failures += 1
        pauses = (CLAIM_OUTAGE_PAUSES_MS[0], outage_pause_cap_ms(lease_ttl))
        return outage_pause_ms(self.failures - 1, pauses)

    def succeeded(self) -> None:
        """Record a successful call, logging the recovery if there was an outage."""
        if self.failures:
            log.warning("Redis is reachable again after %d failed attempts", self.failures)
            self.failures = 0


class BaseConsumer(ABC):
    """Claims messages of a subset of queues, in order, under leases.

    Args:
        subset: ``None`` for every queue; a list of queues (earlier ones drained first); or a
            dict of queue to task names (task-specific mode: tasks drained in list order).
        backoff: bounds how long an idle consumer blocks, growing with empty passes.
        lease_ttl: lease length (ms) on each claimed message; renew it while running.
        owner_id: base of the lease owner ids (default: this process plus a random token).
        task_names: claim only the messages of these tasks (best priority first across
            them), leaving those of other tasks queued for whoever serves them; ``None``:
            every task. Task-specific mode names its tasks in ``subset`` instead.
    """

    broker: Broker | AsyncBroker

    def __init__(
        self,
        subset: SubsetType = None,
        backoff: Backoff | None = LinearBackoff(
            1 * 1000, floor=1000, ceiling=30_000, zero_override=False
        ),
        *,
        lease_ttl: int = DEFAULT_LEASE_TTL,
        owner_id: str | None = None,
        task_names: Iterable[str] | None = None,
    ) -> None:
        self.subset = _validate_subset(subset)
        self.task_names = _validate_task_names(task_names)
        self.backoff = backoff or ConstantBackoff(0, floor=0, ceiling=0)
        self.lease_ttl = lease_ttl
        self.owner_id = owner_id or f"{get_process_lock_owner_id()}:lease:{uuid.uuid4().hex[:8]}"
        self.claim_status: ClaimStatus | None = None
        self.stop_signal = StopSignalListener()
        self._empty_passes = 0
        self._registry: list[str] = []
        self._registry_read_at: float | None = None
        self._request_id: str | None = None
        self._outage = _OutageLog()

    def _get_subnamespaces(self) -> list[str]:
        """The subset as key subnamespaces, in priority order (spec compatibility)."""
        if not self.subset:
            return [get_subnamespace(None)]
        if isinstance(self.subset, list):
            return [get_subnamespace(queue) for queue in self.subset]
        return [
            get_subnamespace(queue, task) for queue, tasks in self.subset.items() for task in tasks
        ]

    # -- sources ---------------------------------------------------------------------------

    @property
    def all_queues(self) -> bool:
        """Whether this consumer serves every queue of the namespace."""
        return self.subset is None

    def _registry_stale(self) -> bool:
        if not self.all_queues:
            return False
        read_at = self._registry_read_at
        return read_at is None or (time.monotonic() - read_at) * 1000 >= REGISTRY_REFRESH_MS

    def _set_registry(self, queues: list[str]) -> None:
        self._registry = queues
        self._registry_read_at = time.monotonic()

    def _woken(self) -> None:
        # A wake-up may announce a queue created since the registry was read: read it again.
        if self.all_queues:
            self._registry_read_at = None

    def _sources(self) -> list[ClaimSource]:
        if isinstance(self.subset, dict):
            return [ClaimSource(queue, tuple(tasks)) for queue, tasks in self.subset.items()]
        queues = self._registry if self.subset is None else self.subset
        return [ClaimSource(queue, self.task_names, ordered=False) for queue in queues]

    def _queue_names(self) -> list[str]:
        return [source.queue for source in self._sources()]

    # -- claiming --------------------------------------------------------------------------

    def _next_request_id(self) -> str:
        """Request id of the next claim; kept after a failure so a retried claim is idempotent."""
        if self._request_id is None:
            self._request_id = uuid.uuid4().hex
        return self._request_id

    def _claimed(self, messages: list[Message]) -> list[Message]:
        self._request_id = None
        self._empty_passes = 0 if messages else self._empty_passes + 1
        self._outage.succeeded()
        return messages

    def _idle_timeout_ms(self, next_due: int | None) -> int:
        """How long an idle consumer may block: until the next due time, within its backoff."""
        cap = self.backoff.get(self._empty_passes) or NO_BACKOFF_IDLE_MS
        if next_due is not None:
            cap = min(cap, max(next_due - utcnow_timestamp_ms(), 0))
        return max(int(cap), 1)

    # -- operations, as steps (run by the sync and async shells) ---------------------------

    def _claim_steps(self, n: int) -> Steps[Claim]:
        """Lease up to ``n`` messages (a retry after an outage is idempotent: same request id)."""
        if self._registry_stale():
            self._set_registry((yield Invoke(self.broker.queues)))
        sources = self._sources()
        if not sources:
            return Claim([], None, 0)
        options = {
            "owner_id": self.owner_id,
            "lease_ttl": self.lease_ttl,
            "status": self.claim_status,
            "request_id": self._next_request_id(),
        }
        claim: Claim = yield Invoke(self.broker.claim, (sources, n), options)
        self._claimed(claim.messages)
        return claim

    def _wait_for_work_steps(self, next_due: int | None) -> Steps[None]:
        """Block until a submit wakes us, something is due, the backoff elapses, or a stop."""
        deadline = utcnow_timestamp_ms() + self._idle_timeout_ms(next_due)
        while not self.stop_signal.received:
            remaining = deadline - utcnow_timestamp_ms()
            if remaining <= 0:
                return
            woken = yield Invoke(
                self.broker.wait_for_work,
                (self._queue_names(), min(remaining, MAX_BLOCK_MS)),
                {"all_queues": self.all_queues},
            )
            if woken:
                self._woken()
                return

    def _stream_steps(self) -> Steps[None]:
        """Emit claimed messages one at a time until a stop signal; survive Redis outages."""
        while not self.stop_signal.received:
            try:
                claim = yield from self._claim_steps(1)
                if claim.messages:
                    for message in claim.messages:
                        yield Emit(message)
                    continue
                yield from self._wait_for_work_steps(claim.next_due)
            except REDIS_OUTAGE_ERRORS as error:
                yield Invoke(self.pause_for_outage, (error,))

    # -- the shells ------------------------------------------------------------------------

    @abstractmethod
    def pause_for_outage(self, error: Exception) -> Any:
        """Wait before retrying after a Redis connection error (logged once per outage)."""

    @abstractmethod
    def _poll(self) -> list[Message] | Any:
        """One claim pass (of one message, since claims take only what can start)."""

    @abstractmethod
    def stream(self) -> Iterable[Message] | Any:
        """Yield messages as they become available, until a stop signal."""
