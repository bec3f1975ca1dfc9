"""``BaseWorkerPool``: the loop every sync pool runs.

One pass: reap finished futures, renew leases when due, claim at most as many messages as there
are free slots, start them; when full, wait for a slot; when idle, block on Redis until work
arrives. Revocations reach running messages through pub/sub at once (a periodic check backs that
up). On shutdown the pool stops claiming, lets running messages finish within a grace period,
then stops the rest and releases their leases so they run again elsewhere at once.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

import redis

from alsek._version import __version__
from alsek.core.consumer import Consumer
from alsek.core.consumer.sync import REDIS_OUTAGE_ERRORS
from alsek.core.future.outcome import (
    exhausted_by_lost_workers,
    lost_plan,
    release_plan,
    run_plan,
    unknown_task_plan,
)
from alsek.core.message import Message
from alsek.core.worker.helpers import (
    _gather_task_names,
    derive_consumer_subset,
    extract_broker,
    filter_tasks,
    merged_claim_status,
)
from alsek.exceptions import RevokedError, TerminationError
from alsek.types import SupportedMechanismType
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)

#: How often running messages are checked for revocation, in case a pub/sub notice was missed.
REVOCATION_CHECK_MS = 5_000
#: Default time (ms) running messages get to finish after a stop signal.
DEFAULT_GRACE_PERIOD = 10_000


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


class RevocationListener:
    """Hears revocations of running messages through pub/sub and calls ``on_revoked(uuid)``.

    One thread and one connection per pool; it resubscribes after a dropped connection.
    """

    def __init__(self, conn: redis.Redis, channel: str, on_revoked: Any) -> None:
        self.conn = conn
        self.channel = channel
        self.on_revoked = on_revoked
        self._closed = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alsek-revocations", daemon=True)

    def start(self) -> RevocationListener:
        """Start listening; returns once subscribed (or after 5 s)."""
        self._thread.start()
        self._ready.wait(5)
        return self

    def _run(self) -> None:
        while not self._closed.is_set():
            pubsub = self.conn.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                self._ready.set()
                while not self._closed.is_set():
                    notice = pubsub.get_message(timeout=0.5)
                    if notice is not None:
                        self.on_revoked(str(notice["data"]))
            except REDIS_OUTAGE_ERRORS:
                self._closed.wait(0.5)
            finally:
                pubsub.close()

    def close(self) -> None:
        """Stop listening."""
        self._closed.set()
        self._thread.join(timeout=2)


class BaseWorkerPool(Consumer, ABC):
    """A pool of futures fed by a consumer; see the subclasses for how futures run.

    Args:
        mechanism: which tasks it serves (``"thread"`` or ``"process"``).
        tasks: the tasks it can run; they must share one broker.
        queues: the queues to consume, in priority order (default: those of ``tasks``).
        task_specific_mode: consume queue/task pairs rather than whole queues.
        slot_wait_interval: longest wait (ms) for a free slot before looking again.
        grace_period: ms running messages get to finish after a stop signal.
        **kwargs: consumer options (``backoff``, ``lease_ttl``, ``owner_id``).
    """

    def __init__(
        self,
        *,
        mechanism: SupportedMechanismType,
        tasks: list[Any] | tuple[Any, ...],
        queues: list[str] | None = None,
        task_specific_mode: bool = False,
        slot_wait_interval: int = 50,
        grace_period: int = DEFAULT_GRACE_PERIOD,
        **kwargs: Any,
    ) -> None:
        self.tasks = filter_tasks(tasks, mechanism)
        super().__init__(
            broker=extract_broker(self.tasks),
            subset=derive_consumer_subset(self.tasks, queues, task_specific_mode),
            **kwargs,
        )
        self.queues = queues or sorted(self.subset or [])
        self.task_specific_mode = task_specific_mode
        self.slot_wait_interval = slot_wait_interval
        self.grace_period = grace_period
        self._task_map = {task.name: task for task in self.tasks}
        self._can_run = True
        self.claim_status, self._running_at_claim = merged_claim_status(self.tasks)
        self._inflight: dict[str, Message] = {}
        self._lock = threading.RLock()
        self._next_renewal_ms = 0
        self._next_revocation_check_ms = 0
        self._revocations: RevocationListener | None = None

    @property
    def _slot_wait_interval_seconds(self) -> float:
        return self.slot_wait_interval / 1000

    @property
    def _renew_interval_ms(self) -> int:
        return max(self.lease_ttl // 3, 1)

    def _writes_running(self, task: Any) -> bool:
        """Whether a future must record RUNNING itself (the claim did not)."""
        return task.status_tracker is not None and task.name not in self._running_at_claim

    # -- what subclasses provide ----------------------------------------------------------

    @abstractmethod
    def free_slots(self) -> int:
        """How many more messages the pool can start right now."""

    @abstractmethod
    def submit_message(self, message: Message) -> bool:
        """Start a future for ``message``; ``False`` if it cannot start after all."""

    @abstractmethod
    def prune(self) -> None:
        """Reap finished futures (calling ``_finished``) and stop those past their timeout."""

    @abstractmethod
    def wait_for_slot(self, timeout_ms: int) -> None:
        """Block until a future finishes, or ``timeout_ms``."""

    @abstractmethod
    def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        """Stop the running message ``uuid`` with ``exception`` (from any thread)."""

    @abstractmethod
    def stop_all(self, exception: type[BaseException]) -> None:
        """Stop every running future with ``exception``."""

    def on_shutdown(self) -> None:
        """Drain within the grace period, then stop and release what is left."""
        self._can_run = False
        try:
            self._drain()
        finally:
            self.stop_all(TerminationError)
            self.prune()
            self._release_leftovers()
            if self._revocations is not None:
                self._revocations.close()
            log.info("Worker pool stopped")

    # -- bookkeeping shared by subclasses --------------------------------------------------

    def _finished(self, uuid: str) -> None:
        with self._lock:
            self._inflight.pop(uuid, None)

    def _inflight_messages(self) -> list[Message]:
        with self._lock:
            return list(self._inflight.values())

    # -- the loop -------------------------------------------------------------------------

    def on_boot(self) -> None:
        """Log what the pool serves and start listening for revocations."""
        log.info("Monitoring %d tasks over %d queues", len(self.tasks), len(self.queues))
        for queue, names in _gather_task_names(self.tasks).items():
            log.info("Queue %r: %s", queue, ", ".join(names))
        log.info("Running Alsek v%s", __version__)
        self._revocations = RevocationListener(
            self.broker.backend.conn, self.broker.revocations_channel, self._on_revoked
        ).start()
        log.info("Worker pool online")

    def run(self) -> None:
        """Boot, run until a stop signal, shut down gracefully."""
        self.on_boot()
        try:
            self.engine()
        except KeyboardInterrupt:
            log.info("Keyboard interrupt")
        finally:
            self.on_shutdown()

    def engine(self) -> None:
        """Claim and run messages until told to stop; Redis outages are waited out."""
        while self._can_run and not self.stop_signal.received:
            try:
                self._pass()
            except REDIS_OUTAGE_ERRORS as error:
                self.pause_for_outage(error)

    def _pass(self) -> None:
        self.prune()
        self._maintain()
        free = self.free_slots()
        if free <= 0:
            self.wait_for_slot(min(self.slot_wait_interval, self._until_maintenance_ms()))
            return
        claim = self.claim(free)
        for message in claim.messages:
            self._start(message)
        if not claim.messages:
            due = self._maintenance_due()
            next_due = due if claim.next_due is None else min(due, claim.next_due)
            self.wait_for_work(next_due)

    def _start(self, message: Message) -> None:
        task = self._task_map.get(message.task_name)
        if task is None:
            run_plan(unknown_task_plan(self.broker, message, list(self._task_map)))
            return
        if exhausted_by_lost_workers(task, message):
            run_plan(lost_plan(task, message))
            return
        with self._lock:
            self._inflight[message.uuid] = message
        if not self.submit_message(message):
            self._finished(message.uuid)
            run_plan(release_plan(self.broker, message))

    # -- leases and revocations -------------------------------------------------------------

    def _maintenance_due(self) -> int:
        """Wall-clock time (ms) of the next lease renewal or revocation check."""
        return utcnow_timestamp_ms() + self._until_maintenance_ms()

    def _until_maintenance_ms(self) -> int:
        if not self._inflight:
            return self._renew_interval_ms
        due = min(self._next_renewal_ms, self._next_revocation_check_ms)
        return max(due - _now_ms(), 1)

    def _maintain(self) -> None:
        now = _now_ms()
        messages = self._inflight_messages()
        if not messages:
            return
        if now >= self._next_renewal_ms:
            self._next_renewal_ms = now + self._renew_interval_ms
            for message, renewed in zip(messages, self.broker.renew(messages, self.lease_ttl)):
                if not renewed:
                    log.warning("Lost the lease on %s; it may run elsewhere", message.summary)
        if now >= self._next_revocation_check_ms:
            self._next_revocation_check_ms = now + REVOCATION_CHECK_MS
            for message, revoked in zip(messages, self.broker.revoked(messages)):
                if revoked:
                    self._on_revoked(message.uuid)

    def _on_revoked(self, uuid: str) -> None:
        with self._lock:
            running = uuid in self._inflight
        if running:
            log.info("Stopping revoked message %s", uuid)
            self.stop_running(uuid, RevokedError)

    # -- shutdown --------------------------------------------------------------------------

    def _drain(self) -> None:
        deadline = _now_ms() + self.grace_period
        if self._inflight:
            log.info(
                "Stopping: %d running messages get %d ms", len(self._inflight), self.grace_period
            )
        while self._inflight and _now_ms() < deadline:
            self.prune()
            try:
                self._maintain()
            except REDIS_OUTAGE_ERRORS as error:
                log.warning("Could not renew leases while stopping: %s", error)
            self.wait_for_slot(min(self.slot_wait_interval, max(deadline - _now_ms(), 1)))

    def _release_leftovers(self) -> None:
        """Give back leases of messages whose future could not release them (e.g. a dead child)."""
        for message in self._inflight_messages():
            run_plan(release_plan(self.broker, message), give_up_after_ms=2_000)
            self._finished(message.uuid)
