"""``AsyncSingleProcessWorkerPool``: async tasks as asyncio tasks in one process."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from alsek.core.broker import Claim
from alsek.core.future.asyncio import AsyncTaskFuture
from alsek.core.message import Message
from alsek.core.steps.batching import async_unbatched
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
        #: Futures whose run ended and whose outcome is being written (an ack is a round
        #: trip): their slot is free, so the next message starts meanwhile (``_slots_taken``).
        self._writing: set[AsyncTaskFuture] = set()
        #: Futures whose asyncio task ended, for ``prune`` to reap: a full pool of a hundred
        #: tasks then costs the loop the same per message as a pool of one.
        self._ended: list[AsyncTaskFuture] = []
        #: Woken when a slot frees up (``wait_for_slot``).
        self._slot_waiter: asyncio.Future[None] | None = None

    def has_slot(self) -> bool:
        """Whether one more message can start."""
        return self.free_slots() > 0

    @property
    def capacity(self) -> int:
        """Tasks running at once."""
        return self.n_tasks

    def free_slots(self) -> int:
        """How many more messages can start."""
        return self.n_tasks - self._slots_taken(len(self._futures), len(self._writing))

    async def claim(self, n: int = 1) -> Claim:
        """Claim as the consumer does, without queueing behind the tasks' acks: free slots
        wait for this round trip."""
        with async_unbatched():
            claim: Claim = await super().claim(n)
        return claim

    async def submit_message(self, message: Message) -> bool:
        """Start an asyncio task for the message."""
        if not self.has_slot():
            return False
        task = self._task_map[message.task_name]
        future = AsyncTaskFuture(
            task, message, write_running=self._writes_running(task), on_run_end=self._run_ended
        )
        self._futures[message.uuid] = future
        future.asyncio_task.add_done_callback(lambda _: self._task_ended(future))
        self._watch_timeout(future)
        return True

    def _run_ended(self, future: AsyncTaskFuture) -> None:
        """A future's run ended and its outcome is about to be written: its slot is free."""
        if self._futures.get(future.message.uuid) is future:
            self._writing.add(future)
            self._wake_waiter()

    def _task_ended(self, future: AsyncTaskFuture) -> None:
        """A future's asyncio task ended: note it for ``prune``, and wake ``wait_for_slot``."""
        self._ended.append(future)
        self._wake_waiter()

    def _wake_waiter(self) -> None:
        if self._slot_waiter is not None:
            _wake(self._slot_waiter)

    async def prune(self) -> None:
        """Stop timed-out tasks and reap finished ones."""
        for future in self._overdue(self._futures.values()):
            log.warning("%s timed out", future.message.summary)
            await future.stop(TimeoutError)
        ended, self._ended = self._ended, []
        for future in ended:
            self._writing.discard(future)
            uuid = future.message.uuid
            if self._futures.get(uuid) is future:
                del self._futures[uuid]
                self._finished(uuid)

    async def wait_for_slot(self, timeout_ms: int) -> None:
        """Wait until a task finishes, ``timeout_ms``, or the next timeout check."""
        timeout = min(timeout_ms / 1000, self.prune_interval_seconds)
        deadline = self._timeouts_due
        if deadline is not None:
            timeout = min(timeout, max(deadline - utcnow_timestamp_ms(), 0) / 1000)
        if not self._futures:
            await self.stop_signal.async_wait(timeout)
            return
        if self._ended:
            return  # to be reaped first
        loop = asyncio.get_running_loop()
        waiter = self._slot_waiter = loop.create_future()
        timer = loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._slot_waiter = None

    async def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        """Stop the running message ``uuid``."""
        future = self._futures.get(uuid)
        if future is not None:
            await future.stop(exception)

    async def stop_all(self, exception: type[BaseException]) -> None:
        """Stop every running task."""
        futures = [f for f in self._futures.values() if not f.complete]
        await asyncio.gather(*(future.stop(exception) for future in futures))


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
