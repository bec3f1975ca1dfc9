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
from abc import ABC, abstractmethod
from typing import Any

import redis

from alsek.core.consumer import Consumer
from alsek.core.future.outcome import lost_plan, release_plan, run_plan, unknown_task_plan
from alsek.core.message import Message
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.worker.core import DEFAULT_GRACE_PERIOD, Admission, PoolCore
from alsek.core.worker.helpers import filter_tasks
from alsek.exceptions import RevokedError, TerminationError
from alsek.types import SupportedMechanismType

log = logging.getLogger(__name__)


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


class BaseWorkerPool(PoolCore, Consumer, ABC):
    """A pool of futures fed by a consumer; see the subclasses for how futures run.

    Args:
        mechanism: which tasks it serves (``"thread"`` or ``"process"``).
        tasks: the tasks it can run; they must share one broker.
        queues: the queues to consume, in priority order (default: those of ``tasks``).
        task_specific_mode: consume queue/task pairs rather than whole queues.
        slot_wait_interval: longest wait (ms) for a free slot before looking again.
        grace_period: ms running messages get to finish after a stop signal.
        **kwargs: ``foreign_tasks`` (names of tasks other pools serve on the same queues:
            their messages are left alone), and consumer options (``backoff``,
            ``lease_ttl``, ``owner_id``).
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
        self._init_pool(
            Consumer.__init__,
            filter_tasks(tasks, mechanism),
            tasks,
            queues,
            task_specific_mode,
            slot_wait_interval,
            grace_period,
            **kwargs,
        )
        self._revocations: RevocationListener | None = None

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

    # -- the loop -------------------------------------------------------------------------

    def on_boot(self) -> None:
        """Log what the pool serves and start listening for revocations."""
        for line in self._boot_lines(self.queues):
            log.info(line)
        self._listen_for_revocations()
        log.info("Worker pool online")

    def _listen_for_revocations(self) -> None:
        self._revocations = RevocationListener(
            self.broker.backend.conn, self.broker.revocations_channel, self._on_revoked
        ).start()

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
        gather_ms = self._gather_wait_ms(free)
        if gather_ms:
            self.wait_for_slot(gather_ms)
            return
        claim = self.claim(free)
        self._note_claim(free, len(claim.messages))
        for message in claim.messages:
            self._start(message)
        if not claim.messages:
            self.wait_for_work(self._wake_by(claim.next_due))

    def _start(self, message: Message) -> None:
        admission = self._admit(message)
        if admission is Admission.UNKNOWN_TASK:
            run_plan(unknown_task_plan(self.broker, message, self.tasks))
        elif admission is Admission.EXHAUSTED:
            run_plan(lost_plan(self._task_map[message.task_name], message))
        elif not self.submit_message(message):
            self._finished(message.uuid)
            run_plan(release_plan(self.broker, message))

    def _maintain(self) -> None:
        messages, renew, check = self._maintenance_due()
        if renew:
            self._report_renewals(messages, self.broker.renew(messages, self.lease_ttl))
        if check:
            for uuid in self._revoked_running(messages, self.broker.revoked(messages)):
                self._on_revoked(uuid)

    def _on_revoked(self, uuid: str) -> None:
        self._notify_revoked(uuid, lambda u: self.stop_running(u, RevokedError))

    # -- shutdown --------------------------------------------------------------------------

    def on_shutdown(self) -> None:
        """Drain within the grace period, then stop and release what is left."""
        self._drain_and_release()
        log.info("Worker pool stopped")

    def _drain_and_release(self) -> None:
        self._can_run = False
        try:
            deadline = self._grace_deadline()
            while self._draining(deadline):
                self.prune()
                try:
                    self._maintain()
                except REDIS_OUTAGE_ERRORS as error:
                    log.warning("Could not renew leases while stopping: %s", error)
                self.wait_for_slot(self.slot_wait_interval)
        finally:
            self.stop_all(TerminationError)
            self.prune()
            for message in self._inflight_messages():
                run_plan(release_plan(self.broker, message), give_up_after_ms=2_000)
                self._finished(message.uuid)
            if self._revocations is not None:
                self._revocations.close()
