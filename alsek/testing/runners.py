"""The pools of an in-process worker: one per kind of task, each built and run in a thread of
its own (so it installs no signal handler and the test's thread stays free), reporting what it
does to the worker's ``Progress``.

Sync tasks run in threads (``InProcessThreadPool``), whatever their mechanism, so a fakeredis
that only this process can see works too. Async tasks run on an event loop of the runner's
thread, as copies rebuilt from their settings: an asyncio client belongs to one event loop, and
the test's own loop keeps the originals.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from alsek.core.future.sync import TaskFuture
from alsek.core.message import Message
from alsek.core.steps.drivers import async_run, run
from alsek.core.task.base import BaseTask
from alsek.core.worker.asyncio import AsyncSingleProcessWorkerPool
from alsek.core.worker.sync.inprocess import InProcessThreadPool
from alsek.testing.backlog import QueueBacklog, backlog_steps
from alsek.testing.progress import Progress, reporting_failures
from alsek.utils.loops import run_on_loop

log = logging.getLogger(__name__)

#: How long starting a pool may take (building it, and for async tasks their clients).
START_SECONDS = 30.0


class WatchedThreadPool(InProcessThreadPool):
    """An in-process thread pool that reports what it starts and finishes, and each pass."""

    def __init__(self, progress: Progress, **kwargs: Any) -> None:
        self._progress = progress
        super().__init__(**kwargs)

    def submit_message(self, message: Message) -> bool:
        """Report the message as running, then start it."""
        self._progress.started(message)
        return super().submit_message(message)

    def _on_complete(self, future: TaskFuture) -> None:
        super()._on_complete(future)
        self._progress.finished(future.message)

    def prune(self) -> None:
        """Reap and stop as usual, then report the pass."""
        super().prune()
        self._progress.changed()


class WatchedAsyncPool(AsyncSingleProcessWorkerPool):
    """An asyncio pool that reports what it starts and finishes, and each pass."""

    def __init__(self, progress: Progress, **kwargs: Any) -> None:
        self._progress = progress
        super().__init__(**kwargs)

    async def submit_message(self, message: Message) -> bool:
        """Report the message as running, then start it."""
        self._progress.started(message)
        if not await super().submit_message(message):
            self._progress.finished(message)
            return False
        future = self._futures[message.uuid]
        future.asyncio_task.add_done_callback(lambda _: self._progress.finished(message))
        return True

    async def prune(self) -> None:
        """Reap and stop as usual, then report the pass."""
        await super().prune()
        self._progress.changed()


def served_copy(task: Any, progress: Progress) -> Any:
    """The task as the worker runs it: in a thread (or on the loop), its failures reported."""
    served = copy.copy(task)
    served.mechanism = "thread"
    served.on_failure = reporting_failures(served.on_failure, progress)
    return served


def rebuilt_for_this_loop(task: Any) -> Any:
    """An async task with Redis clients of its own, for the running event loop, on the same
    databases as the original's."""
    try:
        rebuilt = BaseTask.deserialize(task.serialize())
    except (TypeError, pickle.PicklingError, AttributeError) as error:
        raise TypeError(_cannot_rebuild(task, f"its settings cannot be copied: {error}")) from error
    for label in ("broker", "status_tracker", "result_store"):
        original, copied = getattr(task, label), getattr(rebuilt, label)
        if original is not None and not _same_place(original.backend.conn, copied.backend.conn):
            raise TypeError(
                _cannot_rebuild(task, f"a copy of its {label}'s client has data of its own")
            )
    return rebuilt


def _same_place(a: Any, b: Any) -> bool:
    """Whether two clients reach the same data: one fakeredis server, or one Redis database."""
    ka, kb = a.connection_pool.connection_kwargs, b.connection_pool.connection_kwargs
    if "server" in ka or "server" in kb:
        return ka.get("server") is kb.get("server")
    return all(ka.get(name) == kb.get(name) for name in ("host", "port", "path", "db"))


def _cannot_rebuild(task: Any, why: str) -> str:
    return (
        f"The in-process worker runs async task {task.name!r} on an event loop of its own, with "
        f"Redis clients rebuilt from the task's settings, and {why}. With fakeredis, let "
        "clients share a server by host name (fakeredis.FakeAsyncRedis(host=...)), not "
        "through a FakeServer object."
    )


class PoolRunner(ABC):
    """One pool of the worker, in a thread of its own.

    Args:
        tasks: the tasks of this runner's kind (the pool claims their messages only).
        progress: where the pool reports.
        concurrency: messages it runs at once.
        options: more pool options.
    """

    kind: str

    def __init__(
        self,
        tasks: Sequence[Any],
        progress: Progress,
        concurrency: int,
        options: dict[str, Any],
    ) -> None:
        self.tasks = list(tasks)
        self.served = {task.name for task in tasks}
        self.progress = progress
        self.options = options
        self.concurrency = concurrency
        self.pool: Any = None
        self.error: BaseException | None = None
        self._built: Future[None] = Future()
        self._thread = threading.Thread(target=self._serve, name=f"alsek-{self.kind}", daemon=True)

    def start(self) -> None:
        """Start the thread; returns once the pool is built, raising what prevented it."""
        self._thread.start()
        self._built.result(START_SECONDS)

    def _serve(self) -> None:
        try:
            self._build_and_run()
        except BaseException as error:
            if self._built.done():
                log.error("The in-process worker's %s pool stopped: %r", self.kind, error)
                self.error = error
            else:
                self._built.set_exception(error)

    @property
    def alive(self) -> bool:
        """Whether the pool still runs."""
        return self._thread.is_alive()

    @abstractmethod
    def _build_and_run(self) -> None:
        """Build the pool, say so (``_built``), run it until stopped."""

    @abstractmethod
    def backlog(self) -> list[QueueBacklog]:
        """What is left in the pool's queues."""

    @abstractmethod
    def wake(self, queues: Sequence[str]) -> None:
        """Wake a consumer waiting for work on each of ``queues``."""

    @abstractmethod
    def _stop_pool(self, timeout: int | None) -> None:
        """Stop the pool gracefully (``timeout``: ms)."""

    def stop(self, timeout: int | None) -> None:
        """Stop the pool gracefully and wait for its thread."""
        if self._thread.ident is None:
            return  # never started
        if self.pool is not None and self.alive:
            self._stop_pool(timeout)
        self._thread.join(None if timeout is None else timeout / 1000)


class ThreadRunner(PoolRunner):
    """The sync tasks, in threads of this process."""

    kind = "thread"

    def _build_and_run(self) -> None:
        tasks = [served_copy(task, self.progress) for task in self.tasks]
        self.pool = WatchedThreadPool(
            self.progress, tasks=tasks, n_threads=self.concurrency, **self.options
        )
        self._built.set_result(None)
        self.pool.run()

    def backlog(self) -> list[QueueBacklog]:
        backend = self.pool.broker.backend
        return run(backlog_steps(backend, self.pool.queues, sorted(self.served)), backend.conn)

    def wake(self, queues: Sequence[str]) -> None:
        self.pool.broker.wake(queues)

    def _stop_pool(self, timeout: int | None) -> None:
        self.pool.stop(timeout)


class LoopRunner(PoolRunner):
    """The async tasks, on an event loop of this runner's thread."""

    kind = "async"
    _loop: asyncio.AbstractEventLoop | None = None

    def _build_and_run(self) -> None:
        # asyncio's own loop unless the options ask for another (as pytest-asyncio's tests run).
        run_on_loop(self._serve_on_loop(), self.options.get("loop", "asyncio"))

    async def _serve_on_loop(self) -> None:
        tasks = [served_copy(rebuilt_for_this_loop(task), self.progress) for task in self.tasks]
        try:
            self.pool = WatchedAsyncPool(
                self.progress, tasks=tasks, n_tasks=self.concurrency, **self.options
            )
            self._loop = asyncio.get_running_loop()
            self._built.set_result(None)
            await self.pool.run()
        finally:
            await _close_clients(tasks)

    def _on_loop(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def backlog(self) -> list[QueueBacklog]:
        backend = self.pool.broker.backend
        steps = backlog_steps(backend, self.pool.queues, sorted(self.served))
        backlog: list[QueueBacklog] = self._on_loop(async_run(steps, backend.conn))
        return backlog

    def wake(self, queues: Sequence[str]) -> None:
        self._on_loop(self.pool.broker.wake(queues))

    def _stop_pool(self, timeout: int | None) -> None:
        self._on_loop(self.pool.stop(timeout))


async def _close_clients(tasks: Sequence[Any]) -> None:
    """Close the Redis clients the rebuilt tasks opened (each once)."""
    clients = {}
    for task in tasks:
        for component in (task.broker, task.status_tracker, task.result_store):
            if component is not None:
                client = component.backend.conn
                clients[id(client)] = client
    for client in clients.values():
        await client.aclose()
