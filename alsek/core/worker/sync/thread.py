"""``ThreadWorkerPool``: threads inside elastic worker processes.

The pool's own process runs no message: it supervises *process groups* (``group``), child
processes that each claim and run messages in threads of their own. It starts another group
while every group's claims come back full (up to ``n_processes``), retires its newest group
when a group's worth of threads has been idle for ``IDLE_GROUP_SECONDS`` (down to
``n_process_floor``), and replaces groups that die, finishing the messages a dead group still
held as lost attempts at once. Its graceful shutdown stops every group, which stop claiming, let
running messages finish within the grace period, then stop and release the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from multiprocessing.connection import wait
from typing import Any

from alsek.core.broker import keys
from alsek.core.future.outcome import ended_plan, release_plan, run_plan
from alsek.core.message import Message
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.worker.base import BaseWorkerPool
from alsek.core.worker.sync.group import ProcessGroup, ThreadsInProcessGroup, encode_tasks
from alsek.exceptions import WorkerLostError
from alsek.utils.system import smart_cpu_count

__all__ = ["ProcessGroup", "ThreadWorkerPool", "ThreadsInProcessGroup"]

log = logging.getLogger(__name__)

#: When a whole group's worth of threads has been idle this long, the newest group above the
#: floor is retired.
IDLE_GROUP_SECONDS = 10.0
#: Time groups get to exit beyond the grace period, or after being told to stop at once (their
#: leases are released meanwhile); then they are killed.
STOP_MARGIN_SECONDS = 5.0
#: Pause before starting a group again after one died before it was ready.
FAILED_START_PAUSE_SECONDS = 1.0


class ThreadWorkerPool(BaseWorkerPool):
    """Runs thread-mechanism tasks in threads of elastic child processes.

    Args:
        n_threads: threads per process group.
        n_processes: most process groups (default: CPUs minus one).
        n_process_floor: groups kept even when idle.
        complete_only_on_thread_exit: see ``ThreadTaskFuture``.
        package_name: package each group imports first.
        **kwargs: ``PoolCore`` options (each group is built with them).
    """

    def __init__(
        self,
        n_threads: int = 8,
        n_processes: int | None = None,
        n_process_floor: int = 1,
        complete_only_on_thread_exit: bool = False,
        package_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mechanism="thread", **kwargs)
        self.n_threads = n_threads
        self.n_processes = n_processes or smart_cpu_count()
        self.n_process_floor = n_process_floor
        self.complete_only_on_thread_exit = complete_only_on_thread_exit
        self.package_name = package_name
        if self.n_threads <= 0:
            raise ValueError(f"n_threads must be > 0, got {n_threads}")
        if self.n_processes <= 0:
            raise ValueError(f"n_processes must be > 0, got {n_processes}")
        if not 0 <= self.n_process_floor <= self.n_processes:
            raise ValueError(
                f"n_process_floor ({n_process_floor}) must be between 0 and "
                f"n_processes ({self.n_processes})"
            )
        self._progress_groups: list[ProcessGroup] = []
        self._retiring: list[ProcessGroup] = []
        self._group_options: dict[str, Any] = {
            "queues": kwargs.get("queues"),
            "task_specific_mode": self.task_specific_mode,
            "slot_wait_interval": self.slot_wait_interval,
            "grace_period": self.grace_period,
            "backoff": self.backoff,
            "lease_ttl": self.lease_ttl,
        }
        self._group_tasks: bytes | None = None
        self._spare_since: float | None = None
        self._no_start_before = 0.0

    @property
    def groups(self) -> list[ProcessGroup]:
        """The process groups serving (those being retired excluded)."""
        return self._progress_groups

    @property
    def capacity(self) -> int:
        """Threads across all the process groups the pool may start."""
        return self.n_threads * self.n_processes

    def _make_new_process_group(self, seed: Sequence[Message] = ()) -> ProcessGroup | None:
        if not self._can_run or self.stop_signal.received:
            return None
        if len(self._progress_groups) >= self.n_processes:
            return None
        if self._group_tasks is None:
            self._group_tasks = encode_tasks(self.tasks)
        group = ProcessGroup(
            self.n_threads,
            self.complete_only_on_thread_exit,
            self.package_name,
            tasks=self._group_tasks,
            options=self._group_options,
            owner_id=self.owner_id,
            seed=seed,
        )
        self._progress_groups.append(group)
        log.debug("Started process group %d (pid %s)", group.group_id, group.process.pid)
        return group

    def busy_slots(self) -> int:
        """Messages the process groups run right now."""
        return sum(group.state.running for group in self._all_groups())

    def _all_groups(self) -> list[ProcessGroup]:
        return [*self._progress_groups, *self._retiring]

    # -- boot, supervision, shutdown ----------------------------------------------------------

    def on_boot(self) -> None:
        """Log the capacity and start the floor of process groups."""
        log.info(
            "Capacity: %d processes x %d threads (floor %d)",
            self.n_processes,
            self.n_threads,
            self.n_process_floor,
        )
        for _ in range(self.n_process_floor):
            self._make_new_process_group()
        log.info("Worker pool online")

    def engine(self) -> None:
        """Supervise the groups (they claim and run the messages) until told to stop."""
        while self._can_run and not self.stop_signal.received:
            try:
                self.prune()
                self._beat_if_due()
                if self._progress_groups or time.monotonic() < self._no_start_before:
                    self._wait_for_a_group_to_exit(self.slot_wait_interval)
                else:
                    self._claim_for_a_new_group()
            except REDIS_OUTAGE_ERRORS as error:
                self.pause_for_outage(error)

    def _claim_for_a_new_group(self) -> None:
        """With no group (a floor of 0), wait for work here and start a group with it."""
        claim = self.claim(self.n_threads)
        if not claim.messages:
            self.wait_for_work(self._wake_by(claim.next_due))
        elif self._make_new_process_group(seed=claim.messages) is None:
            for message in claim.messages:
                run_plan(release_plan(self.broker, message), give_up_after_ms=2_000)

    def prune(self) -> None:
        """Finish the messages of groups that died, then grow, shrink or top up to the floor."""
        self._reap_exited()
        if not self._can_run or self.stop_signal.received:
            return
        self._grow()
        self._retire_spare()
        while len(self._progress_groups) < self.n_process_floor:
            if time.monotonic() < self._no_start_before or not self._make_new_process_group():
                break

    def _reap_exited(self) -> None:
        for group in self._all_groups():
            if group.process.is_alive():
                continue
            if group in self._progress_groups:
                self._progress_groups.remove(group)
            else:
                self._retiring.remove(group)
            code = group.process.exitcode
            if group.stopping and code == 0:
                log.debug("Process group %d stopped", group.group_id)
            else:
                log.error("Process group %d died (exit code %s)", group.group_id, code)
                if not group.state.ready:
                    self._no_start_before = time.monotonic() + FAILED_START_PAUSE_SECONDS
            self._finish_lost(group)

    def _finish_lost(self, group: ProcessGroup) -> None:
        """Fail, as lost attempts, the messages a dead group still holds the leases of."""
        error = WorkerLostError(f"The process running it exited with code {group.process.exitcode}")
        try:
            for queue_name, uuid, retries, owner in group.state.ledger.entries():
                message = self._still_leased(queue_name, uuid, retries, owner)
                if message is not None:
                    task = self._task_map[message.task_name]
                    run_plan(ended_plan(task, message, None, error))
        except REDIS_OUTAGE_ERRORS as outage:
            log.warning(
                "Could not finish the messages of process group %d (%s); they run again "
                "when their leases expire",
                group.group_id,
                outage,
            )

    def _still_leased(self, queue_name: str, uuid: str, retries: int, owner: str) -> Message | None:
        """The message as stored, if the lease ``owner`` (a dead group's) still holds it."""
        try:
            message = self.broker.sync_from_backend(Message("lost", queue=queue_name, uuid=uuid))
        except KeyError:
            return None
        message.update(retries=retries)
        message.linked_lock = {"name": keys.lease_name(queue_name, uuid), "owner_id": owner}
        if message.task_name not in self._task_map:
            return None
        held = self.broker.renew([message], self.lease_ttl)[0]
        return message if held else None

    def _grow(self) -> None:
        """Start another group while every group is up and its claims come back full."""
        groups = self._progress_groups
        if groups and all(group.state.ready and group.state.backlogged for group in groups):
            self._make_new_process_group()

    def _retire_spare(self) -> None:
        """Retire the newest group above the floor once a group's worth of threads has been
        idle for ``IDLE_GROUP_SECONDS``."""
        groups = self._progress_groups
        running = sum(group.state.running for group in groups)
        spare = (
            len(groups) > self.n_process_floor
            and running <= (len(groups) - 1) * self.n_threads
            and not any(group.state.backlogged for group in groups)
        )
        now = time.monotonic()
        if not spare:
            self._spare_since = None
        elif self._spare_since is None:
            self._spare_since = now
        elif now - self._spare_since >= IDLE_GROUP_SECONDS:
            group = groups.pop()
            group.stop()
            self._retiring.append(group)
            self._spare_since = now
            log.debug("Retiring process group %d", group.group_id)

    def on_shutdown(self) -> None:
        """Stop every group gracefully, within the grace period; then stop what is left now."""
        self._can_run = False
        try:
            groups = self._all_groups()
            for group in groups:
                group.stop()
            self._say_stopping()
            deadline = time.monotonic() + self.grace_period / 1000 + STOP_MARGIN_SECONDS
            for group in groups:
                group.process.join(max(deadline - time.monotonic(), 0))
        finally:
            self._stop_groups_now()
            self._leave_registry()
            log.info("Worker pool stopped")

    def _say_stopping(self) -> None:
        """Beat once more, as ``stopping``, before waiting for the groups to drain."""
        self._stopping, self._next_beat_ms = True, 0
        try:
            self._beat_if_due()
        except REDIS_OUTAGE_ERRORS as error:
            log.warning("Could not beat while stopping: %s", error)

    def _wait_for_a_group_to_exit(self, timeout_ms: int) -> None:
        """Block until a group exits, or ``timeout_ms``."""
        sentinels = [group.process.sentinel for group in self._all_groups()]
        if sentinels:
            wait(sentinels, timeout=timeout_ms / 1000)
        else:
            self.stop_signal.wait(timeout_ms)

    def _stop_groups_now(self) -> None:
        """Stop every group at once (they stop and release their messages), killing those
        that do not exit in time; the messages of killed groups are finished as lost."""
        groups = self._all_groups()
        for group in groups:
            group.stop(now=True)
        deadline = time.monotonic() + STOP_MARGIN_SECONDS
        for group in groups:
            group.process.join(max(deadline - time.monotonic(), 0))
            if group.process.is_alive():
                log.error("Process group %d did not stop; killing it", group.group_id)
                group.process.kill()
                group.process.join()
        self._reap_exited()
