"""``InProcessWorker``: run tasks in this process, and wait until their queues are empty.

For tests (the ``alsek_worker`` fixture) and notebooks: no child process, no CLI, so a fakeredis
that only this process can see works as well as a real Redis, and a task's exception reaches the
test as itself::

    with InProcessWorker(add, mul) as worker:
        add.generate(args=(1, 2))
        worker.join()   # returns once every queue of add and mul is empty and nothing runs

``join()`` waits on what the pools report (a message started or finished, a pass of their
loop) and then reads the queues from Redis once; it never sleeps on a timer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from alsek.core.message import Message
from alsek.testing.backlog import QueueBacklog
from alsek.testing.progress import Failure, Progress
from alsek.testing.runners import LoopRunner, PoolRunner, ThreadRunner

__all__ = ["Failure", "InProcessWorker", "JoinTimeoutError"]

#: Default of ``join(timeout=...)`` (ms).
DEFAULT_JOIN_TIMEOUT = 10_000
#: Default grace period (ms) of the worker's pools: short, so a test that ends with messages
#: still running does not wait long for them (they are then stopped and released).
DEFAULT_GRACE_PERIOD = 2_000


class JoinTimeoutError(AssertionError):
    """``join()`` ran out of time; the message names what was still queued or running."""


class InProcessWorker:
    """Runs ``tasks`` in this process until stopped: sync tasks in threads (whatever their
    mechanism), async tasks on an event loop in a thread of their own.

    Args:
        *tasks: the tasks to serve, sync or async or both; the sync ones share one broker,
            and so do the async ones.
        concurrency: messages of each kind that run at once.
        **pool_options: more options of the pools (``grace_period``, ``lease_ttl``,
            ``queues``, ``backoff``...). ``grace_period`` defaults to 2 s here: messages still
            running when the worker stops get that long to finish, then are stopped and
            released.

    Raises:
        ValueError: no task.
        TypeError: something that is not an alsek task.
    """

    def __init__(self, *tasks: Any, concurrency: int = 8, **pool_options: Any) -> None:
        if not tasks:
            raise ValueError("InProcessWorker needs at least one task, e.g. InProcessWorker(add)")
        if concurrency <= 0:
            raise ValueError(f"concurrency must be > 0, got {concurrency}")
        tasks = tuple(dict.fromkeys(tasks))  # a task given twice is served once
        kinds = {task: getattr(type(task), "_alsek_task_kind", None) for task in tasks}
        strangers = [task for task, kind in kinds.items() if kind is None]
        if strangers:
            raise TypeError(
                f"Not alsek tasks: {', '.join(map(repr, strangers))}; "
                "pass the functions decorated with @task"
            )
        options = {"grace_period": DEFAULT_GRACE_PERIOD, **pool_options}
        sync = [task for task in tasks if kinds[task] == "sync"]
        async_ = [task for task in tasks if kinds[task] == "async"]
        self.tasks = list(tasks)
        self._progress = Progress()
        self._raised = 0
        self._nudged_for: tuple[Any, ...] = ()
        self._nudges = 0
        self._started = False
        self._runners: list[PoolRunner] = []
        for runner_class, own in ((ThreadRunner, sync), (LoopRunner, async_)):
            if own:
                self._runners.append(runner_class(own, self._progress, concurrency, options))

    def __repr__(self) -> str:
        names = ", ".join(task.name for task in self.tasks)
        return f"<InProcessWorker of {names}>"

    # -- starting and stopping -----------------------------------------------------------------

    def start(self) -> InProcessWorker:
        """Start serving; returns once the pools are built (raising what prevented it)."""
        if self._started:
            raise RuntimeError(f"{self!r} has started already: a worker starts once")
        self._started = True
        try:
            for runner in self._runners:
                runner.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: int | None = None) -> None:
        """Stop gracefully (within ``grace_period``) and wait; ``timeout`` in ms per pool."""
        for runner in self._runners:
            runner.stop(timeout)

    def __enter__(self) -> InProcessWorker:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- waiting -------------------------------------------------------------------------------

    @property
    def failures(self) -> list[Failure]:
        """Every message that failed for good so far, with its exception, first first."""
        return self._progress.failures()

    def join(self, timeout: int | None = DEFAULT_JOIN_TIMEOUT, fail_fast: bool = True) -> None:
        """Return once every queue of the worker's tasks is empty and nothing runs.

        Delayed messages and retries waiting out their backoff count as not done. Messages
        of tasks the worker does not serve, in its queues, count too.

        Args:
            timeout: ms to wait (``None``: no limit).
            fail_fast: raise the first failure (a message failed for good) not raised yet,
                as soon as its message is done (in the dead-letter queue): the task's own
                exception.

        Raises:
            JoinTimeoutError: ``timeout`` passed; names what is still queued or running.
            RuntimeError: a pool of the worker stopped by itself.
        """
        deadline = None if timeout is None else time.monotonic() + timeout / 1000
        while True:
            version = self._progress.version
            self._check_pools()
            if fail_fast:
                self._raise_new_failure()
            running = self._progress.running()
            backlogs = [] if running else self._backlogs()
            if not running and all(backlog.empty for _, backlog in backlogs):
                if fail_fast:  # a failure is reported before its message stops running
                    self._raise_new_failure()
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise JoinTimeoutError(self._still_left(timeout, running, backlogs))
            self._nudge(backlogs)
            self._progress.wait_for_change(version, left)

    def _backlogs(self) -> list[tuple[PoolRunner, QueueBacklog]]:
        return [(runner, backlog) for runner in self._runners for backlog in runner.backlog()]

    def _nudge(self, backlogs: list[tuple[PoolRunner, QueueBacklog]]) -> None:
        """Wake the pools of queues where messages they serve wait while nothing runs.

        A submit wakes one consumer of its queue. When that is the worker's other pool (sync
        and async tasks sharing a queue), which does not serve the message, the pool that does
        would sleep on until its idle wait ends (its backoff: up to 30 s). Each pass of a pool
        reports back, and Redis hands a token to the consumer waiting longest, so a few wakes
        for one backlog are enough; beyond that, ``join()`` only waits.
        """
        snapshot = tuple(
            sorted((b.namespace, b.queue, tuple(sorted(b.ready.items()))) for _, b in backlogs)
        )
        if snapshot != self._nudged_for:
            self._nudged_for, self._nudges = snapshot, 0
        if self._nudges > len(self._runners):
            return
        self._nudges += 1
        for runner in self._runners:
            queues = {b.queue for r, b in backlogs if r is runner and b.ready_tasks & runner.served}
            if queues:
                runner.wake(sorted(queues))

    def _check_pools(self) -> None:
        for runner in self._runners:
            if runner.error is not None:
                raise RuntimeError(
                    f"The in-process worker's {runner.kind} pool stopped: {runner.error!r}"
                ) from runner.error

    def _raise_new_failure(self) -> None:
        """Raise the first failure not raised yet, once its message is done (the failure is
        reported before the message reaches the dead-letter queue)."""
        failures = self._progress.failures()
        if len(failures) <= self._raised:
            return
        failure = failures[self._raised]
        if any(m.uuid == failure.message.uuid for m in self._progress.running()):
            return
        self._raised += 1
        note = f"{failure.message.summary} failed for good in alsek's in-process worker"
        if hasattr(failure.exception, "add_note") and note not in getattr(
            failure.exception, "__notes__", ()
        ):
            failure.exception.add_note(note)
        raise failure.exception

    def _still_left(
        self,
        timeout: int | None,
        running: Sequence[Message],
        backlogs: list[tuple[PoolRunner, QueueBacklog]],
    ) -> str:
        served = [task.name for task in self.tasks]
        described = [b.describe(served) for _, b in backlogs or self._backlogs() if not b.empty]
        left = list(dict.fromkeys(described))  # once per queue, which two pools may both read
        left += [f"running: {message.summary}" for message in running]
        return f"join() timed out after {timeout} ms; still left: " + "; ".join(
            left or ["nothing (the last message finished just now)"]
        )
