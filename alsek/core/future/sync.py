"""Futures: one execution of one message, in a thread, a process, or inline.

A future runs the task (``pre_op``, ``op``, ``post_op``) and then the outcome plan (see
``outcome``). Stopping it (timeout, revocation, shutdown) is decided exactly once: whichever of
the run and the stop gets there first finishes the message, so a message is never both acked by
the run and retried by the stop. Leases are renewed, and revocations delivered, by the pool for
all its futures at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import platform
import queue
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import dill

from alsek.core import Process, Value
from alsek.core.current import start_running, stop_running
from alsek.core.future.outcome import (
    Plan,
    ended_plan,
    error_plan,
    run_plan,
    stop_plan,
    success_plan,
)
from alsek.core.message import Message
from alsek.core.middleware import call_before_process, hooks_of
from alsek.core.run_timing import mark_run_ended, mark_run_started
from alsek.core.status.types import TaskStatus
from alsek.core.task.base import BaseTask
from alsek.exceptions import WorkerLostError
from alsek.utils.environment import set_alsek_worker_pool_env_var
from alsek.utils.logging import LogSetup, current_log_setup
from alsek.utils.system import thread_raise
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)

#: An idle worker thread ends after this long without a message.
IDLE_WORKER_SECONDS = 60.0

#: States of a future, shared with a process future's child through a ``multiprocessing.Value``.
RUNNING, FINISHING, FINISHED, STOPPED = 0, 1, 2, 3


class _TimeLimitExceeded(Exception):
    """Raised inside a thread stopped for its timeout (the outcome still records ``TimeoutError``).

    Not the builtin ``TimeoutError``: that is ``socket.timeout``, which network libraries
    (redis-py among them) catch and retry, so the thread would carry on running.
    """


def _run_task(task: Any, message: Message) -> tuple[Any, BaseException | None]:
    """Run the task's steps, with ``message`` as the current message: the middleware's
    ``before_process`` (which may skip or retry the message), then ``pre_op``, ``execute``
    and ``post_op``; any exception, from ``post_op`` too, is the run's exception. The run's
    start and end are stamped on the message (``run_timing``)."""
    mark_run_started(message)
    token = start_running(message)
    try:
        hooks = hooks_of(task.broker, "before_process")
        if hooks:
            control = call_before_process(hooks, message)  # a sync broker's are all plain
            if control is not None:
                return None, control
        task.pre_op(message)
        result = task.execute(message)
        task.post_op(message, result)
        return result, None
    except BaseException as error:
        return None, error
    finally:
        stop_running(token)
        mark_run_ended(message)


def _write_running(task: Any, message: Message, write_running: bool) -> None:
    if write_running:
        try:
            task.update_status(message, TaskStatus.RUNNING)
        except Exception as error:  # a status write must not stop the run
            log.warning("Could not record RUNNING for %s: %s", message.summary, error)


# -- the handlers of a finished run: the sync futures' way into the outcome plans ------------------


def _finish_run(task: Any, message: Message, result: Any, error: BaseException | None) -> None:
    """Finish a run that was not stopped: ``after_process``, then its outcome."""
    run_plan(ended_plan(task, message, result, error))


def _complete_future_handler(task: Any, message: Message, result: Any) -> None:
    """Finish a successful run (result, callback, ack and SUCCEEDED in one round trip)."""
    run_plan(_success(task, message, result))


def _error_encountered_future_handler(
    task: Any, message: Message, exception: BaseException, update_exception_on_message: bool = True
) -> None:
    """Finish a failed run: ``on_revocation`` if revoked, else retry or fail for good.

    ``update_exception_on_message`` is kept for the reference's signature only: the plan always
    records ``exception`` on the message, as its retry or dead letter must carry it.
    """
    run_plan(error_plan(task, message, exception))


def _success(task: Any, message: Message, result: Any) -> Plan:
    """The plan of a successful run; the error of an earlier attempt is no longer the message's."""
    message.update(exception_details=None)
    return success_plan(task, message, result)


def _process_future_encoder(task: Any, message: Message) -> bytes:
    """What a process future's child receives: the task's settings and the message."""
    return bytes(dill.dumps((task.serialize(), message)))


def _process_future_decoder(encoded: bytes) -> tuple[Any, Message]:
    task_settings, message = dill.loads(encoded)
    return BaseTask.deserialize(task_settings), message


def forks_processes() -> bool:
    """Whether new processes are forked: their arguments then reach them as they are, with no
    encoding (a spawned process gets them pickled)."""
    return multiprocessing.get_start_method() == "fork"


class TaskFuture(ABC):
    """One execution of ``message`` by ``task``; its timeout counts from creation."""

    def __init__(self, task: Any, message: Message) -> None:
        self.task = task
        self.message = message
        self.created_at = utcnow_timestamp_ms()
        # Where it runs, the run stamps its own start; this one times a stop decided here.
        mark_run_started(message)

    @property
    @abstractmethod
    def complete(self) -> bool:
        """Whether the future is done (its slot can be reused)."""

    @property
    def time_limit_exceeded(self) -> bool:
        """Whether it has run longer than the message's timeout."""
        if self.complete:
            return False
        return utcnow_timestamp_ms() - self.created_at > self.message.timeout

    @abstractmethod
    def stop(self, exception: type[BaseException]) -> None:
        """Stop it; ``TerminationError`` releases the message, anything else is an error."""

    def clean_up(self, ignore_errors: bool = False) -> None:  # noqa: B027 (optional hook)
        """Release what the future holds (nothing by default)."""


class _ThreadRecycler:
    """The worker threads of this process, all fed from one queue.

    Starting a thread costs more than the run of a short task, so threads run futures one
    after another: a future goes on the shared queue and any idle worker takes it. A new worker
    starts only when none is idle; one idle for ``IDLE_WORKER_SECONDS`` ends. A thread something
    may have been raised into is never reused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inbox: queue.SimpleQueue[ThreadTaskFuture] = queue.SimpleQueue()
        self._idle = 0  # workers waiting on the inbox that no queued future is meant for
        self._started = 0

    def start(self, future: ThreadTaskFuture) -> None:
        """Queue ``future`` for an idle worker, starting one when none is idle."""
        with self._lock:
            spawn = self._idle == 0
            if spawn:
                self._started += 1
            else:
                self._idle -= 1
        if spawn:
            name = f"alsek-worker-{self._started}"
            threading.Thread(target=self._work, daemon=True, name=name).start()
        self._inbox.put(future)

    def _work(self) -> None:
        future: ThreadTaskFuture | None = None
        try:
            while True:
                try:
                    future = self._inbox.get(timeout=IDLE_WORKER_SECONDS)
                except queue.Empty:
                    if self._retire():
                        return
                    continue
                future._wrapper()
                if future.raised_into:
                    return
                future._release()
                future = None
                with self._lock:
                    self._idle += 1
        except BaseException as late:  # raised into the thread after its run: end the thread
            log.debug("Worker thread ends after %r", late)
        finally:
            if future is not None:
                future._release()

    def _retire(self) -> bool:
        """An idle worker asks to end; refused when a queued future is meant for it."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
                return True
            return False


_RECYCLER = _ThreadRecycler()


def _new_recycler_after_fork() -> None:
    global _RECYCLER
    _RECYCLER = _ThreadRecycler()  # the parent's threads do not exist in a forked child


os.register_at_fork(after_in_child=_new_recycler_after_fork)


class ThreadTaskFuture(TaskFuture):
    """Runs the message in a daemon thread; stopped by raising an exception inside it.

    Threads are reused across futures (one something was raised into never is).

    Args:
        complete_only_on_thread_exit: count the slot as busy until the thread is done with the
            message, even after it was stopped (a thread blocked in C runs on until it returns).
        write_running: record RUNNING here (when the claim did not).
        on_complete: called once, from any thread, when the future becomes ``complete``.
        on_run_end: called from the worker thread when the run ended and its outcome is about
            to be written (not for a stopped run): the pool may start its next message on
            another thread meanwhile.
    """

    def __init__(
        self,
        task: Any,
        message: Message,
        complete_only_on_thread_exit: bool = False,
        write_running: bool = False,
        on_complete: Callable[[TaskFuture], None] | None = None,
        on_run_end: Callable[[TaskFuture], None] | None = None,
    ) -> None:
        super().__init__(task, message)
        self.complete_only_on_thread_exit = complete_only_on_thread_exit
        self._write_running = write_running
        self._on_complete = on_complete
        self._on_run_end = on_run_end
        self._state = RUNNING
        self._state_lock = threading.Lock()
        self._ident: int | None = None  # the thread running it, once one took it
        self._raised_into = False
        self._wrapper_exit = False
        self._released = threading.Event()
        self._reported = False
        _RECYCLER.start(self)

    @property
    def complete(self) -> bool:
        """Done: the outcome was written (or the thread let go of the message)."""
        if self.complete_only_on_thread_exit:
            return self._released.is_set()
        return self._wrapper_exit or self._released.is_set()

    @property
    def stopped(self) -> bool:
        """Whether ``stop()`` took over the message."""
        return self._state == STOPPED

    @property
    def raised_into(self) -> bool:
        """Whether ``stop()`` raised an exception into the thread running it."""
        return self._raised_into

    def _claim_outcome(self, state: int) -> bool:
        """Take the right to finish the message (once, by the run or by a stop)."""
        with self._state_lock:
            if self._state != RUNNING:
                return False
            self._state = state
            return True

    def _report(self) -> None:
        with self._state_lock:
            if self._reported or not self.complete:
                return
            self._reported = True
        if self._on_complete is not None:
            self._on_complete(self)

    def _release(self) -> None:
        """Called by the worker thread when it is done with the message."""
        self._released.set()
        self._report()

    def _wrapper(self) -> None:
        with self._state_lock:
            if self._state != RUNNING:
                return  # stopped before a worker took it: nothing to run
            self._ident = threading.get_ident()
        try:
            log.info("Received %s", self.message.summary)
            _write_running(self.task, self.message, self._write_running)
            result, error = _run_task(self.task, self.message)
            if self._claim_outcome(FINISHING):
                if self._on_run_end is not None:
                    self._on_run_end(self)
                _finish_run(self.task, self.message, result, error)
                self._wrapper_exit = True
                self._report()
        except BaseException as late:  # an exception raised into the thread after it finished
            log.debug("Ignoring %r raised into %s after its run", late, self.message.summary)

    def stop(self, exception: type[BaseException]) -> None:
        """Raise ``exception`` in the thread (``TimeoutError`` as ``_TimeLimitExceeded``) and
        finish the message accordingly."""
        with self._state_lock:
            if self._state != RUNNING:
                return
            self._state = STOPPED
            # Raised under the lock: the thread cannot have finished with the message yet.
            ident = self._ident
            if platform.python_implementation() != "CPython":
                log.error("Cannot stop threads outside CPython; %s runs on", self.message.summary)
            elif ident is not None:
                raised = _TimeLimitExceeded if issubclass(exception, TimeoutError) else exception
                thread_raise(ident, raised)
                self._raised_into = True
        where = f"thread {ident}" if ident is not None else "before it started"
        run_plan(stop_plan(self.task, self.message, exception(f"Stopped {where}")))
        self._wrapper_exit = True
        self._report()


class MainThreadTaskFuture(TaskFuture):
    """Runs the message inline, in the constructor (``run_in_main_thread``): cannot be stopped."""

    def __init__(self, task: Any, message: Message, write_running: bool = False) -> None:
        super().__init__(task, message)
        log.info("Received %s (in the main thread)", message.summary)
        _write_running(task, message, write_running)
        result, error = _run_task(task, message)
        _finish_run(task, message, result, error)
        self._complete = True

    @property
    def complete(self) -> bool:
        """Always true: it ran to completion in the constructor."""
        return self._complete

    def stop(self, exception: type[BaseException]) -> None:
        """Nothing to stop."""


def _obey_sigterm_only_from_stop(state: Any) -> None:
    """In a process future's child: end on SIGTERM only when the pool's ``stop()`` sent it.

    ``stop()`` marks the future STOPPED before its SIGTERM, and the child then ends at once.
    A SIGTERM sent to the whole process group (a service manager stopping the pool) finds the
    future still RUNNING and is ignored: the pool's graceful shutdown decides the child's fate,
    letting it finish within the grace period.
    """
    raw = state.get_obj()  # read without the lock: we are in a signal handler

    def on_sigterm(signum: int, frame: Any) -> None:
        if raw.value == STOPPED:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def _process_wrapper(
    work: tuple[Any, Message] | bytes, log_setup: LogSetup, state: Any, write_running: bool
) -> None:
    """Body of a process future's child: run, then finish unless the parent stopped us.

    ``work`` is the task and the message: as they are when the child was forked (no encoding
    in the parent), else encoded.
    """
    _obey_sigterm_only_from_stop(state)
    set_alsek_worker_pool_env_var()
    log_setup.apply()
    if isinstance(work, tuple):
        # The task as inherited: rebuilt with connections of our own, as the parent's may have
        # been in use by another of its threads at the fork.
        inherited, message = work
        task = BaseTask.deserialize(inherited.serialize())
    else:
        task, message = _process_future_decoder(work)
    log.info("Received %s (process %s)", message.summary, os.getpid())
    _write_running(task, message, write_running)
    result, error = _run_task(task, message)
    with state.get_lock():
        if state.value != RUNNING:
            return
        state.value = FINISHING
    _finish_run(task, message, result, error)
    state.value = FINISHED


class ProcessTaskFuture(TaskFuture):
    """Runs the message in a process of its own; stopped with SIGTERM, then SIGKILL.

    Args:
        patience: ms between SIGTERM and SIGKILL.
        write_running: record RUNNING here (when the claim did not).
    """

    def __init__(
        self, task: Any, message: Message, patience: int = 1 * 1000, write_running: bool = False
    ) -> None:
        super().__init__(task, message)

        self.patience = patience
        self._state = Value("i", RUNNING)
        self._settled = False
        self._settle_lock = threading.Lock()
        work = (task, message) if forks_processes() else _process_future_encoder(task, message)
        self.process = Process(
            target=_process_wrapper,
            args=(
                work,
                current_log_setup(),
                self._state,
                write_running,
            ),
            daemon=True,
        )
        self.process.start()

    @property
    def complete(self) -> bool:
        """Done: the child process has exited."""
        return not self.process.is_alive()

    def _shutdown(self) -> None:
        self.process.terminate()
        self.process.join(self.patience / 1000)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def stop(self, exception: type[BaseException]) -> None:
        """Terminate the child and, unless it had finished, finish the message here."""
        if self.process.ident is None:
            log.error("%s: process never started", self.message.summary)
            return
        with self._settle_lock:
            if self._settled:
                return
            self._settled = True
            with self._state.get_lock():
                state = self._state.value
                if state == RUNNING:
                    self._state.value = STOPPED
            self._shutdown()
        if state in (RUNNING, FINISHING):
            error = exception(f"Stopped process {self.process.ident}")
            run_plan(stop_plan(self.task, self.message, error))

    def settle(self) -> None:
        """After the child exited by itself: if it died before finishing, finish it here."""
        with self._settle_lock:
            if self._settled or self.process.is_alive():
                return
            self._settled = True
        if self._state.value in (RUNNING, FINISHING):
            code = self.process.exitcode
            error = WorkerLostError(f"The process running it exited with code {code}")
            _finish_run(self.task, self.message, None, error)
