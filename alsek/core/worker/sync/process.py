"""``ProcessWorkerPool``: messages run in warm child processes, one message at a time each.

The pool forks ``n_processes`` children once (``children``) and hands each idle child one
message at a time over its pipe; the child runs the task and writes its outcome, then takes the
next. While work is backed up a child that finished claims its next message itself and tells
the pool which (``next_claim``). The pool's own process claims for idle children (never more
messages than it has), renews the leases, hears revocations, and watches the children, waiting
on their pipes and exit sentinels together so that a report or a death is seen at once.

A run past its timeout, or revoked, is stopped by killing its child; a child that dies by itself
(a segfault, the OOM killer) fails only its own message, as a lost attempt. Either way a new
child takes its place. ``max_tasks_per_child`` retires a child after that many messages (tasks
that leak memory); ``1`` gives every message a fresh process, forked before it is claimed.
"""

from __future__ import annotations

import logging
import time
from multiprocessing.connection import wait
from typing import Any

from alsek.core import Value
from alsek.core.future.warm import SharedInt, WarmTaskFuture
from alsek.core.message import Message
from alsek.core.worker.base import SlotWorkerPool
from alsek.core.worker.sync.children import WarmChild
from alsek.core.worker.sync.group import encode_tasks
from alsek.core.worker.sync.next_claim import ChildClaims
from alsek.exceptions import TerminationError
from alsek.utils.system import smart_cpu_count

log = logging.getLogger(__name__)

#: Pause before starting a child again after one died before it was ready (a broken import).
FAILED_START_PAUSE_SECONDS = 1.0
#: Time idle children get to exit at shutdown once their pipes are closed; then they are killed.
STOP_CHILDREN_SECONDS = 5.0


class ProcessWorkerPool(SlotWorkerPool):
    """Runs process-mechanism tasks in warm child processes.

    Args:
        n_processes: child processes, each running one message at a time (default: CPUs
            minus one).
        prune_interval: longest wait (ms) between checks for timeouts.
        max_tasks_per_child: messages a child runs before it is replaced by a fresh one
            (``None``: no limit; ``1``: a fresh process for every message).
        **kwargs: ``PoolCore`` options (``BaseWorkerPool``'s).
    """

    worker_kind = "process"

    def __init__(
        self,
        n_processes: int | None = None,
        prune_interval: int = 100,
        max_tasks_per_child: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mechanism="process", **kwargs)
        self.n_processes = n_processes or smart_cpu_count()
        if self.n_processes <= 0:
            raise ValueError(f"n_processes must be > 0, got {n_processes}")
        if max_tasks_per_child is not None and max_tasks_per_child < 1:
            raise ValueError(
                f"max_tasks_per_child must be 1 or more (or None for no limit), "
                f"got {max_tasks_per_child}"
            )
        self.prune_interval = prune_interval
        self.max_tasks_per_child = max_tasks_per_child
        self._children: list[WarmChild] = []
        self._futures: dict[str, WarmTaskFuture] = {}
        self._encoded_tasks: bytes | None = None
        self._write_running = frozenset(
            name for name, task in self._task_map.items() if self._writes_running(task)
        )
        self._no_start_before = 0.0
        #: Whether the last claim came back full: children claim their next message then.
        self._backed_up: SharedInt = Value("b", 0, lock=False)

    @property
    def capacity(self) -> int:
        """Messages running at once: one per child."""
        return self.n_processes

    def has_slot(self) -> bool:
        """Whether one more message can start."""
        return self.free_slots() > 0

    def free_slots(self) -> int:
        """Children ready and idle."""
        return sum(child.idle for child in self._children)

    # -- boot and shutdown -------------------------------------------------------------------

    def on_boot(self) -> None:
        """Start the children, then boot as every pool does."""
        log.info(
            "Capacity: %d warm processes (max_tasks_per_child=%s)",
            self.n_processes,
            self.max_tasks_per_child,
        )
        self._top_up()
        super().on_boot()

    def on_shutdown(self) -> None:
        """Drain within the grace period, stop and release what is left, then end every
        child. A second stop signal cuts the drain short: what still runs is released now."""
        self._backed_up.value = 0  # the children claim no more
        try:
            self._drain_and_release()
        finally:
            self.stop_all(TerminationError)
            self._end_children()
            log.info("Worker pool stopped")

    def _end_children(self) -> None:
        """Close every child's pipe (an idle child then exits); kill those that do not."""
        for child in self._children:
            child.close_pipe()
        deadline = time.monotonic() + STOP_CHILDREN_SECONDS
        for child in list(self._children):
            child.process.join(max(deadline - time.monotonic(), 0))
            if child.process.is_alive() and not child.kill():
                log.error("%r cannot be killed (stuck in the kernel); leaving it", child)
                continue
            self._reap(child)

    # -- children ----------------------------------------------------------------------------

    def _top_up(self) -> None:
        """Start children until ``n_processes`` serve (not while stopping, nor right after one
        failed to start)."""
        if not self._can_run or self.stop_signal.received:
            return
        if time.monotonic() < self._no_start_before:
            return
        if self._encoded_tasks is None:
            self._encoded_tasks = encode_tasks(self.tasks)
        while sum(not child.retiring for child in self._children) < self.n_processes:
            siblings = [child.conn for child in self._children if child.pipe_open]
            child = WarmChild(
                self._encoded_tasks,
                self._write_running,
                siblings,
                self._child_claims(),
            )
            self._children.append(child)
            log.debug("Started %r", child)

    def _child_claims(self) -> ChildClaims | None:
        """How a new child claims its next message itself; ``None`` where it does not: the
        all-queues mode (the queues are learnt from the registry as the pool goes)."""
        if self.all_queues:
            return None
        return ChildClaims(
            sources=tuple(self._sources()),
            owner_id=self.owner_id,
            lease_ttl=self.lease_ttl,
            status=self.claim_status,
            max_runs=self.max_tasks_per_child,
            backed_up=self._backed_up,
        )

    def _note_claim(self, requested: int, claimed: int) -> None:
        """After the pool's own claim: the children claim for themselves while it was full."""
        super()._note_claim(requested, claimed)
        self._backed_up.value = int(self._backlogged and self._can_run)

    def _watch(self, timeout_seconds: float) -> None:
        """Wait up to ``timeout_seconds`` for children to report or exit, and take what they
        said, then who exited."""
        handles: dict[Any, WarmChild] = {}
        for child in self._children:
            handles[child.process.sentinel] = child
            if child.awaits_report:
                handles[child.conn] = child
        if not handles:
            self.stop_signal.wait(int(timeout_seconds * 1000))
            return
        ready = wait(list(handles), timeout_seconds)
        exited = []
        for handle in ready:
            child = handles[handle]
            if handle is child.conn:
                claimed = child.read_report()
                if claimed is not None:
                    self._adopt_run(child, claimed)
                self._after_report(child)
            else:
                exited.append(child)
        for child in exited:
            self._reap(child)

    def _after_report(self, child: WarmChild) -> None:
        limit = self.max_tasks_per_child
        if limit is not None and child.runs >= limit and child.future is None:
            child.retire()

    def _reap(self, child: WarmChild) -> None:
        """Forget an exited child, finishing its message if it had one."""
        self._children.remove(child)
        child.settle_after_exit()
        code = child.process.exitcode
        if child.retiring or child.killed or not self._can_run:
            log.debug("%r ended (exit code %s)", child, code)
            return
        log.error("%r died (exit code %s)", child, code)
        if not child.ready:
            self._no_start_before = time.monotonic() + FAILED_START_PAUSE_SECONDS

    # -- the loop's I/O ----------------------------------------------------------------------

    def submit_message(self, message: Message) -> bool:
        """Hand the message to an idle child."""
        child = next((child for child in self._children if child.idle), None)
        if child is None:
            return False
        future = self._new_run(child, message)
        child.assign(future)
        child.send(future)
        return True

    def _adopt_run(self, child: WarmChild, message: Message) -> None:
        """Take on the run of a message ``child`` claimed and started itself, as if the pool
        had sent it: its lease renewed, its revocation heard, its timeout enforced."""
        self._adopt(message)
        child.adopt(self._new_run(child, message))

    def _new_run(self, child: WarmChild, message: Message) -> WarmTaskFuture:
        """The future of ``child``'s next message, watched from now on."""
        task = self._task_map[message.task_name]
        future = WarmTaskFuture(task, message, child, self.lease_ttl, child.next_serial())
        with self._inflight_lock:
            self._futures[message.uuid] = future
        self._watch_timeout(future)
        return future

    def prune(self) -> None:
        """Take the children's reports and exits, stop runs past their timeout, forget
        finished futures, and start children where some are missing."""
        self._watch(0)
        with self._inflight_lock:
            futures = list(self._futures.values())
        for future in self._overdue(futures):
            log.warning("%s timed out", future.message.summary)
            future.stop(TimeoutError)
        self._forget_complete()
        self._top_up()

    def _forget_complete(self) -> None:
        with self._inflight_lock:
            done = [uuid for uuid, future in self._futures.items() if future.complete]
            for uuid in done:
                del self._futures[uuid]
        for uuid in done:
            self._finished(uuid)

    def wait_for_slot(self, timeout_ms: int) -> None:
        """Block until a child reports or exits, or ``timeout_ms`` (at most
        ``prune_interval``)."""
        self._watch(min(timeout_ms, self.prune_interval) / 1000)

    def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        """Stop the run of ``uuid`` (from any thread): its child is killed."""
        with self._inflight_lock:
            future = self._futures.get(uuid)
        if future is not None:
            future.stop(exception)

    def stop_all(self, exception: type[BaseException]) -> None:
        """Stop every run with ``exception``."""
        with self._inflight_lock:
            futures = list(self._futures.values())
        for future in futures:
            if not future.complete:
                future.stop(exception)
