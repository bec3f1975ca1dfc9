"""``PoolCore``: what every worker pool decides without I/O, sync or asyncio alike.

It holds the pool's settings, its tasks and the messages it runs, and decides: how many
messages to claim and when, what to do with a claimed message, when running futures pass their
timeout, when leases are renewed and revocations checked, and how long a shutdown lets running
messages finish. ``PoolLoop`` (``loop``) strings these decisions into the pool's loop;
``BaseWorkerPool`` and ``AsyncBaseWorkerPool`` add the I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from alsek._version import __version__
from alsek.core.consumer.base import SubsetType
from alsek.core.future.outcome import exhausted_by_lost_workers
from alsek.core.message import Message
from alsek.core.worker.helpers import (
    _gather_task_names,
    derive_consumer_subset,
    extract_broker,
    filter_tasks_of_kind,
    merged_claim_status,
)
from alsek.core.worker.lifecycle import RunState
from alsek.types import SupportedMechanismType
from alsek.utils.system import StopSignalListener
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)


#: How often running messages are checked for revocation, in case a pub/sub notice was missed.
REVOCATION_CHECK_MS = 5_000
#: Default time (ms) running messages get to finish after a stop signal.
DEFAULT_GRACE_PERIOD = 10_000
#: Default longest wait (ms) for a free slot before looking again.
DEFAULT_SLOT_WAIT_INTERVAL = 50
#: Leases are renewed this many times per lease length: two renewals in a row can fail (a
#: Redis hiccup) before a lease expires under a message that still runs.
RENEWALS_PER_LEASE = 3


def monotonic_ms() -> int:
    """A clock for intervals, in ms."""
    return int(time.monotonic() * 1000)


class RunningFuture(Protocol):
    """What the timeout decisions read of a future (``TaskFuture`` has it)."""

    message: Message
    created_at: int

    @property
    def complete(self) -> bool:
        """Whether it is done."""

    @property
    def time_limit_exceeded(self) -> bool:
        """Whether it has run longer than its message's timeout."""


F = TypeVar("F", bound=RunningFuture)


class Admission(Enum):
    """What to do with a claimed message."""

    START = "start"
    #: The body names a task the pool does not serve (it claims only its own: a body rewritten
    #: to name another task).
    UNKNOWN_TASK = "unknown task"
    EXHAUSTED = "retries used up by lost workers"


class PoolCore:
    """State and decisions shared by every pool.

    Args:
        mechanism: which tasks it serves (``"thread"`` or ``"process"``).
        tasks: the tasks it can run; they must share one broker.
        queues: the queues to consume, in priority order (default: those of ``tasks``).
        task_specific_mode: consume queue/task pairs rather than whole queues.
        slot_wait_interval: longest wait (ms) for a free slot before looking again.
        grace_period: ms running messages get to finish after a stop signal.
        **consumer_options: the consumer's (``backoff``, ``lease_ttl``, ``owner_id``).
    """

    #: The kind of tasks the pool runs: ``"sync"`` or ``"async"``.
    task_kind: ClassVar[Literal["sync", "async"]]

    # Set by the consumer the pool also is (``Consumer`` or ``AsyncConsumer``).
    broker: Any
    subset: SubsetType
    lease_ttl: int
    stop_signal: StopSignalListener

    def __init__(
        self,
        *,
        mechanism: SupportedMechanismType,
        tasks: list[Any] | tuple[Any, ...],
        queues: list[str] | None = None,
        task_specific_mode: bool = False,
        slot_wait_interval: int = DEFAULT_SLOT_WAIT_INTERVAL,
        grace_period: int = DEFAULT_GRACE_PERIOD,
        **consumer_options: Any,
    ) -> None:
        served = filter_tasks_of_kind(tasks, mechanism, self.task_kind)
        # The pool claims the messages of the tasks it runs, and no others: those of tasks it
        # does not know (served by other pools, or by nobody yet) stay queued.
        self._init_consumer(
            broker=extract_broker(served),
            subset=derive_consumer_subset(served, queues, task_specific_mode),
            task_names=[task.name for task in served],
            **consumer_options,
        )
        self.tasks = served
        self.queues = queues or sorted(self.subset or [])
        self.task_specific_mode = task_specific_mode
        self.slot_wait_interval = slot_wait_interval
        self.grace_period = grace_period
        self._task_map = {task.name: task for task in served}
        self._can_run = True
        self.claim_status, self._running_at_claim = merged_claim_status(served)
        self._inflight: dict[str, Message] = {}
        self._inflight_lock = threading.RLock()
        self._next_renewal_ms = 0
        self._next_revocation_check_ms = 0
        self._backlogged = False
        self._gathering_since: int | None = None
        self._timeouts_due: int | None = None
        self._run_state = RunState()

    def _init_consumer(self, **options: Any) -> None:
        """Set the pool up as the consumer it also is (sync or async)."""
        raise NotImplementedError

    def _writes_running(self, task: Any) -> bool:
        """Whether a future must record RUNNING itself (the claim did not)."""
        return task.status_tracker is not None and task.name not in self._running_at_claim

    def _boot_lines(self) -> list[str]:
        """What the pool logs when it starts: what it serves, and the version."""
        tasks = list(self._task_map.values())
        lines = [f"Monitoring {len(tasks)} tasks over {len(self.queues)} queues"]
        lines += [f"Queue {q!r}: {', '.join(n)}" for q, n in _gather_task_names(tasks).items()]
        return [*lines, f"Running Alsek v{__version__}"]

    # -- claiming ------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many messages the pool runs at once."""
        raise NotImplementedError

    def _gather_wait_ms(self, free: int) -> int:
        """How long to let more slots free up before claiming; 0: claim now.

        Only while work is backed up (the last claim came back full): then claiming for half
        the pool at a time, after at most ``slot_wait_interval``, makes fewer and fuller
        claims. An idle pool claims at once.
        """
        if not self._backlogged or free >= max(1, self.capacity // 2):
            self._gathering_since = None
            return 0
        now = monotonic_ms()
        if self._gathering_since is None:
            self._gathering_since = now
        left = self._gathering_since + self.slot_wait_interval - now
        if left <= 0:
            self._gathering_since = None
            return 0
        return left

    def _note_claim(self, requested: int, claimed: int) -> None:
        self._backlogged = claimed >= requested

    def _full_wait_ms(self) -> int:
        """How long a full pool waits for a slot: no longer than until maintenance is due."""
        return min(self.slot_wait_interval, self._until_maintenance_ms())

    # -- messages ------------------------------------------------------------------------

    def _admit(self, message: Message) -> Admission:
        """Decide whether a claimed message starts; if it does, it is counted as running."""
        task = self._task_map.get(message.task_name)
        if task is None:
            return Admission.UNKNOWN_TASK
        if exhausted_by_lost_workers(task, message):
            return Admission.EXHAUSTED
        with self._inflight_lock:
            self._inflight[message.uuid] = message
        return Admission.START

    def _finished(self, uuid: str) -> None:
        with self._inflight_lock:
            self._inflight.pop(uuid, None)

    def _inflight_messages(self) -> list[Message]:
        with self._inflight_lock:
            return list(self._inflight.values())

    def _is_running(self, uuid: str) -> bool:
        with self._inflight_lock:
            return uuid in self._inflight

    # -- timeouts ----------------------------------------------------------------------------

    def _watch_timeout(self, future: RunningFuture) -> None:
        """Note when a started future's timeout falls due, so that ``_overdue`` looks then."""
        due = future.created_at + future.message.timeout + 1
        self._timeouts_due = due if self._timeouts_due is None else min(self._timeouts_due, due)

    def _overdue(self, futures: Iterable[F]) -> list[F]:
        """The futures past their timeout, looked for only once a timeout is due.

        The next due time is that of the earliest future still running; one already past its
        timeout (stopped, but not done yet) is not watched again.
        """
        if self._timeouts_due is None or utcnow_timestamp_ms() < self._timeouts_due:
            return []
        overdue: list[F] = []
        due: int | None = None
        for future in futures:
            if future.time_limit_exceeded:
                overdue.append(future)
            elif not future.complete:
                limit = future.created_at + future.message.timeout + 1
                due = limit if due is None else min(due, limit)
        self._timeouts_due = due
        return overdue

    # -- schedule of maintenance ------------------------------------------------------------

    @property
    def _renew_interval_ms(self) -> int:
        return max(self.lease_ttl // RENEWALS_PER_LEASE, 1)

    def _until_maintenance_ms(self) -> int:
        if not self._inflight:
            return self._renew_interval_ms
        due = min(self._next_renewal_ms, self._next_revocation_check_ms)
        return max(due - monotonic_ms(), 1)

    def _wake_by(self, next_due: int | None) -> int:
        """Wall-clock time (ms) an idle wait must end: work due, maintenance, or a timeout."""
        candidates = [utcnow_timestamp_ms() + self._until_maintenance_ms()]
        candidates += [d for d in (next_due, self._timeouts_due) if d is not None]
        return min(candidates)

    def _maintenance_due(self) -> tuple[list[Message], bool, bool]:
        """The running messages, and whether their leases / revocations are due for a check."""
        messages = self._inflight_messages()
        now = monotonic_ms()
        renew = bool(messages) and now >= self._next_renewal_ms
        check = bool(messages) and now >= self._next_revocation_check_ms
        if renew:
            self._next_renewal_ms = now + self._renew_interval_ms
        if check:
            self._next_revocation_check_ms = now + REVOCATION_CHECK_MS
        return messages, renew, check

    @staticmethod
    def _report_renewals(messages: Sequence[Message], renewed: Sequence[bool | None]) -> None:
        for message, held in zip(messages, renewed):
            if held is False:
                log.warning("Lost the lease on %s; it may run elsewhere", message.summary)

    @staticmethod
    def _revoked_running(messages: Sequence[Message], revoked: Sequence[bool]) -> list[str]:
        return [message.uuid for message, flag in zip(messages, revoked) if flag]

    # -- shutdown ------------------------------------------------------------------------------

    def _grace_deadline(self) -> int:
        if self._inflight:
            log.info("Stopping: %d running get %d ms", len(self._inflight), self.grace_period)
        return monotonic_ms() + self.grace_period

    def _draining(self, deadline: int) -> bool:
        return bool(self._inflight) and monotonic_ms() < deadline

    def _drain_wait_ms(self, deadline: int) -> int:
        """How long a draining pool waits for a future to finish before looking again: no
        later than the deadline or the next lease renewal."""
        left = deadline - monotonic_ms()
        return max(min(self.slot_wait_interval, left, self._until_maintenance_ms()), 1)
