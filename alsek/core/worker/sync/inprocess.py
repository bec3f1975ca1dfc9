"""``InProcessThreadPool``: thread-mechanism tasks in threads of this very process.

It claims as many messages as it has free threads, runs them, renews their leases, hears their
revocations and writes their outcomes, with no child process. Each process group of
``ThreadWorkerPool`` runs one (``group.ThreadsInProcessGroup`` adds what a group shares with
its supervisor); on its own it serves where child processes cannot go, such as the in-process
worker of ``alsek.testing``, whose Redis may be a fakeredis only this process can see.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alsek.core.future.sync import MainThreadTaskFuture, TaskFuture, ThreadTaskFuture
from alsek.core.message import Message
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.worker.base import SlotWorkerPool

log = logging.getLogger(__name__)


class InProcessThreadPool(SlotWorkerPool):
    """Runs up to ``n_threads`` thread-mechanism tasks at once, in threads of this process.

    Args:
        n_threads: messages it runs at once.
        complete_only_on_thread_exit: see ``ThreadTaskFuture``.
        **kwargs: ``PoolCore`` options (``tasks``, ``queues``, ``grace_period``...).
    """

    def __init__(
        self, n_threads: int = 8, complete_only_on_thread_exit: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(mechanism="thread", **kwargs)
        if n_threads <= 0:
            raise ValueError(f"n_threads must be > 0, got {n_threads}")
        self.n_threads = n_threads
        self.complete_only_on_thread_exit = complete_only_on_thread_exit
        self._futures: dict[str, TaskFuture] = {}
        #: Futures whose run ended and whose outcome is being written (an ack is a round
        #: trip): their slot is free, so the next message starts on another worker thread
        #: meanwhile. At most one per slot, so the pool never has more than twice
        #: ``n_threads`` threads at work.
        self._writing: set[TaskFuture] = set()
        #: Futures that completed or whose run ended, for the engine to note.
        self._done: queue.SimpleQueue[TaskFuture] = queue.SimpleQueue()

    @property
    def capacity(self) -> int:
        """Threads of the pool."""
        return self.n_threads

    def free_slots(self) -> int:
        """Slots without a running message."""
        return self.n_threads - self._occupied()

    def _occupied(self) -> int:
        """Slots taken: messages that run, and those writing their outcome beyond one per
        slot."""
        return self._slots_taken(len(self._futures), len(self._writing))

    def submit_message(self, message: Message) -> bool:
        """Start the message in a worker thread (or, ``run_in_main_thread``, run it here)."""
        task = self._task_map[message.task_name]
        write_running = self._writes_running(task)
        future: TaskFuture
        if message.run_in_main_thread:
            with self._maintained_meanwhile():
                future = MainThreadTaskFuture(task, message, write_running=write_running)
            self._on_complete(future)
        else:
            future = ThreadTaskFuture(
                task,
                message,
                complete_only_on_thread_exit=self.complete_only_on_thread_exit,
                write_running=write_running,
                on_complete=self._on_complete,
                # The option counts a slot busy until its thread is done with the message.
                on_run_end=None if self.complete_only_on_thread_exit else self._on_run_end,
            )
        self._futures[message.uuid] = future
        self._watch_timeout(future)
        return True

    @contextmanager
    def _maintained_meanwhile(self) -> Iterator[None]:
        """Renew leases and check revocations from another thread while this one is busy
        running a message itself."""
        done = threading.Event()

        def maintain() -> None:
            while not done.wait(self._until_maintenance_ms() / 1000):
                try:
                    self._maintain()
                except REDIS_OUTAGE_ERRORS as error:
                    log.warning("Could not renew leases: %s", error)

        thread = threading.Thread(target=maintain, name="alsek-maintenance", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    # -- finished and stopped futures ------------------------------------------------------------

    def _on_complete(self, future: TaskFuture) -> None:
        """Called once per future, from any thread, when it is done (the engine reaps it)."""
        self._done.put(future)

    def _on_run_end(self, future: TaskFuture) -> None:
        """Called from the worker thread when a future's run ended and its outcome is about to
        be written: its slot is free (the engine notes it; it is not done yet)."""
        self._done.put(future)

    def _reap_done(self, block_seconds: float | None = None) -> None:
        try:
            future = self._done.get(block_seconds is not None, block_seconds)
            while True:
                if future.complete:
                    self._reap(future)
                elif self._futures.get(future.message.uuid) is future:
                    self._writing.add(future)
                future = self._done.get_nowait()
        except queue.Empty:
            pass

    def _reap(self, future: TaskFuture) -> bool:
        """Forget a done future; ``False`` for an earlier attempt of a message that runs again."""
        self._writing.discard(future)
        uuid = future.message.uuid
        if self._futures.get(uuid) is not future:
            return False
        del self._futures[uuid]
        self._finished(uuid)
        return True

    def prune(self) -> None:
        """Reap finished futures, and stop those past their timeout."""
        self._reap_done()
        for future in self._overdue(list(self._futures.values())):
            log.warning("%s timed out", future.message.summary)
            future.stop(TimeoutError)

    def wait_for_slot(self, timeout_ms: int) -> None:
        """Block until a future finishes, or ``timeout_ms``."""
        self._reap_done(block_seconds=max(timeout_ms, 1) / 1000)

    def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        """Stop the future running ``uuid`` (from any thread)."""
        future = self._futures.get(uuid)
        if future is not None:
            future.stop(exception)

    def stop_all(self, exception: type[BaseException]) -> None:
        """Stop every running future with ``exception``."""
        for future in list(self._futures.values()):
            if not future.complete:
                future.stop(exception)
