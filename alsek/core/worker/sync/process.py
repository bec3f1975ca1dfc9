"""``ProcessWorkerPool``: one process per message.

Each claimed message runs in a fresh child process (``ProcessTaskFuture``), so a task can use a
CPU fully, crash, or be killed without touching the pool. The pool waits on the children's exit
sentinels, so a finished child frees its slot at once.
"""

from __future__ import annotations

import logging
from multiprocessing.connection import wait
from typing import Any

from alsek.core.future.sync import ProcessTaskFuture
from alsek.core.message import Message
from alsek.core.worker.base import SlotWorkerPool
from alsek.utils.system import smart_cpu_count

log = logging.getLogger(__name__)


class ProcessWorkerPool(SlotWorkerPool):
    """Runs process-mechanism tasks, each message in its own process.

    Args:
        n_processes: messages running at once (default: CPUs minus one).
        prune_interval: longest wait (ms) between checks for timeouts.
        **kwargs: ``PoolCore`` options (``BaseWorkerPool``'s).
    """

    worker_kind = "process"

    def __init__(
        self, n_processes: int | None = None, prune_interval: int = 100, **kwargs: Any
    ) -> None:
        super().__init__(mechanism="process", **kwargs)
        self.n_processes = n_processes or smart_cpu_count()
        if self.n_processes <= 0:
            raise ValueError(f"n_processes must be > 0, got {n_processes}")
        self.prune_interval = prune_interval
        self._futures: dict[str, ProcessTaskFuture] = {}

    def has_slot(self) -> bool:
        """Whether one more message can start."""
        return self.free_slots() > 0

    @property
    def capacity(self) -> int:
        """Processes running at once."""
        return self.n_processes

    def free_slots(self) -> int:
        """Processes that may still start."""
        with self._inflight_lock:
            return self.n_processes - len(self._futures)

    def submit_message(self, message: Message) -> bool:
        """Start a process for the message."""
        if not self.has_slot():
            return False
        task = self._task_map[message.task_name]
        future = ProcessTaskFuture(task, message, write_running=self._writes_running(task))
        with self._inflight_lock:
            self._futures[message.uuid] = future
        self._watch_timeout(future)
        return True

    def prune(self) -> None:
        """Reap exited children (finishing those that died) and stop timed-out ones."""
        with self._inflight_lock:
            futures = list(self._futures.items())
        for future in self._overdue(future for _, future in futures):
            log.warning("%s timed out", future.message.summary)
            future.stop(TimeoutError)
        for uuid, future in futures:
            if future.complete:
                future.settle()
                with self._inflight_lock:
                    self._futures.pop(uuid, None)
                self._finished(uuid)

    def wait_for_slot(self, timeout_ms: int) -> None:
        """Block until a child exits, or ``timeout_ms`` (at most ``prune_interval``)."""
        with self._inflight_lock:
            sentinels = [future.process.sentinel for future in self._futures.values()]
        timeout = min(timeout_ms, self.prune_interval) / 1000
        if sentinels:
            wait(sentinels, timeout=timeout)
        else:
            self.stop_signal.wait(int(timeout * 1000))

    def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        """Stop the process running ``uuid``."""
        with self._inflight_lock:
            future = self._futures.get(uuid)
        if future is not None:
            future.stop(exception)

    def stop_all(self, exception: type[BaseException]) -> None:
        """Stop every running process with ``exception``."""
        with self._inflight_lock:
            futures = list(self._futures.values())
        for future in futures:
            if not future.complete:
                future.stop(exception)
