"""``PoolCore``: what every worker pool decides without I/O, sync or asyncio alike.

It holds the pool's tasks and the messages it runs, decides what to do with a claimed message,
and keeps the schedule of lease renewals and revocation checks. ``BaseWorkerPool`` and
``AsyncBaseWorkerPool`` add the I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from typing import Any

from alsek._version import __version__
from alsek.core.future.outcome import exhausted_by_lost_workers
from alsek.core.message import Message
from alsek.core.worker.helpers import (
    _gather_task_names,
    derive_consumer_subset,
    extract_broker,
    merged_claim_status,
)
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)

#: How often running messages are checked for revocation, in case a pub/sub notice was missed.
REVOCATION_CHECK_MS = 5_000
#: Default time (ms) running messages get to finish after a stop signal.
DEFAULT_GRACE_PERIOD = 10_000


def monotonic_ms() -> int:
    """A clock for intervals, in ms."""
    return int(time.monotonic() * 1000)


class Admission(Enum):
    """What to do with a claimed message."""

    START = "start"
    UNKNOWN_TASK = "unknown task"
    EXHAUSTED = "retries used up by lost workers"


class PoolCore:
    """State and decisions shared by every pool.

    Args:
        tasks: the tasks the pool runs (already filtered for the pool's kind and mechanism).
        lease_ttl: lease length (ms) of claimed messages.
        slot_wait_interval: longest wait (ms) for a free slot before looking again.
        grace_period: ms running messages get to finish after a stop signal.
    """

    def _init_pool(
        self,
        consumer_init: Callable[..., None],
        tasks: list[Any],
        given: Sequence[Any],
        queues: list[str] | None,
        task_specific_mode: bool,
        slot_wait_interval: int,
        grace_period: int,
        foreign_tasks: Iterable[str] = (),
        **consumer_options: Any,
    ) -> None:
        """Set the pool up as a consumer of its tasks' queues (sync or async consumer).

        ``tasks`` are those it runs, out of the ``given`` ones. Messages of the given tasks it
        does not run (another mechanism) and of ``foreign_tasks`` (other pools' tasks, e.g. of
        the other kind) are left in their queues; only names nobody declared are unknown.
        """
        served = {task.name for task in tasks}
        foreign = ({task.name for task in given} | set(foreign_tasks)) - served
        consumer_init(
            self,
            broker=extract_broker(tasks),
            subset=derive_consumer_subset(tasks, queues, task_specific_mode),
            exclude_tasks=foreign,
            **consumer_options,
        )
        self.tasks = tasks
        self.queues = queues or sorted(self.subset or [])  # type: ignore[attr-defined]
        self.task_specific_mode = task_specific_mode
        self.slot_wait_interval = slot_wait_interval
        self.grace_period = grace_period
        self._lease_ttl = self.lease_ttl  # type: ignore[attr-defined]
        self._task_map = {task.name: task for task in tasks}
        self._can_run = True
        self.claim_status, self._running_at_claim = merged_claim_status(tasks)
        self._inflight: dict[str, Message] = {}
        self._inflight_lock = threading.RLock()
        self._next_renewal_ms = 0
        self._next_revocation_check_ms = 0
        self._backlogged = False
        self._gathering_since: int | None = None

    @property
    def _slot_wait_interval_seconds(self) -> float:
        return self.slot_wait_interval / 1000

    @property
    def _renew_interval_ms(self) -> int:
        return max(self._lease_ttl // 3, 1)

    def _writes_running(self, task: Any) -> bool:
        """Whether a future must record RUNNING itself (the claim did not)."""
        return task.status_tracker is not None and task.name not in self._running_at_claim

    def _boot_lines(self, queues: Sequence[str]) -> list[str]:
        tasks = list(self._task_map.values())
        lines = [f"Monitoring {len(tasks)} tasks over {len(queues)} queues"]
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

    # -- schedule of maintenance ------------------------------------------------------------

    def _next_deadline(self) -> int | None:
        """Wall-clock time (ms) by which a running future must be checked (its timeout)."""
        return None

    def _until_maintenance_ms(self) -> int:
        if not self._inflight:
            return self._renew_interval_ms
        due = min(self._next_renewal_ms, self._next_revocation_check_ms)
        return max(due - monotonic_ms(), 1)

    def _wake_by(self, next_due: int | None) -> int:
        """Wall-clock time (ms) an idle wait must end: work due, maintenance, or a timeout."""
        candidates = [utcnow_timestamp_ms() + self._until_maintenance_ms()]
        candidates += [d for d in (next_due, self._next_deadline()) if d is not None]
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

    def _revoked_running(self, messages: Sequence[Message], revoked: Sequence[bool]) -> list[str]:
        return [message.uuid for message, flag in zip(messages, revoked) if flag]

    def _grace_deadline(self) -> int:
        if self._inflight:
            log.info("Stopping: %d running get %d ms", len(self._inflight), self.grace_period)
        return monotonic_ms() + self.grace_period

    def _draining(self, deadline: int) -> bool:
        return bool(self._inflight) and monotonic_ms() < deadline

    def _notify_revoked(self, uuid: str, stop: Callable[[str], Any]) -> Any:
        if self._is_running(uuid):
            log.info("Stopping revoked message %s", uuid)
            return stop(uuid)
        return None
