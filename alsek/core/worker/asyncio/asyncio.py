"""``AsyncSingleProcessWorkerPool``: async tasks as asyncio tasks in one process."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from alsek.core.future.asyncio import AsyncTaskFuture
from alsek.core.message import Message
from alsek.core.worker.asyncio.base import AsyncBaseWorkerPool
from alsek.utils.loops import LoopName, check_loop_name
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)


class AsyncSingleProcessWorkerPool(AsyncBaseWorkerPool):
    """Runs up to ``n_tasks`` async (thread-mechanism) tasks at once on one event loop.

    Args:
        n_tasks: messages running at once.
        prune_interval_seconds: longest wait between checks for timed-out tasks.
        loop: the event loop the pool runs on: ``"uvloop"``, ``"asyncio"``, or ``"auto"``
            (uvloop when installed). ``run()`` awaited on another loop raises; start the pool
            with ``alsek.utils.loops.run_on_loop(main(), loop)`` or ``alsek async-pool --loop``.
        **kwargs: ``AsyncBaseWorkerPool`` options.
    """

    def __init__(
        self,
        n_tasks: int = 100,
        prune_interval_seconds: float = 0.1,
        loop: LoopName = "auto",
        **kwargs: Any,
    ) -> None:
        if n_tasks <= 0:
            raise ValueError(f"n_tasks must be > 0, got {n_tasks}")
        self.loop = check_loop_name(loop)
        super().__init__(mechanism="thread", **kwargs)
        self.n_tasks = n_tasks
        self.prune_interval_seconds = prune_interval_seconds
        self._futures: dict[str, AsyncTaskFuture] = {}

    def has_slot(self) -> bool:
        """Whether one more message can start."""
        return len(self._futures) < self.n_tasks

    @property
    def capacity(self) -> int:
        """Tasks running at once."""
        return self.n_tasks

    def free_slots(self) -> int:
        """How many more messages can start."""
        return self.n_tasks - len(self._futures)

    async def submit_message(self, message: Message) -> bool:
        """Start an asyncio task for the message."""
        if not self.has_slot():
            return False
        task = self._task_map[message.task_name]
        future = AsyncTaskFuture(task, message, write_running=self._writes_running(task))
        self._futures[message.uuid] = future
        self._watch_timeout(future)
        return True

    async def prune(self) -> None:
        """Stop timed-out tasks and reap finished ones."""
        for future in self._overdue(self._futures.values()):
            log.warning("%s timed out", future.message.summary)
            await future.stop(TimeoutError)
        for uuid, future in list(self._futures.items()):
            if future.complete:
                del self._futures[uuid]
                self._finished(uuid)

    async def wait_for_slot(self, timeout_ms: int) -> None:
        """Wait until a task finishes, ``timeout_ms``, or the next timeout check."""
        timeout = min(timeout_ms / 1000, self.prune_interval_seconds)
        deadline = self._timeouts_due
        if deadline is not None:
            timeout = min(timeout, max(deadline - utcnow_timestamp_ms(), 0) / 1000)
        running = [future.asyncio_task for future in self._futures.values()]
        if running:
            await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        else:
            await self.stop_signal.async_wait(timeout)

    async def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        """Stop the running message ``uuid``."""
        future = self._futures.get(uuid)
        if future is not None:
            await future.stop(exception)

    async def stop_all(self, exception: type[BaseException]) -> None:
        """Stop every running task."""
        futures = [f for f in self._futures.values() if not f.complete]
        await asyncio.gather(*(future.stop(exception) for future in futures))
