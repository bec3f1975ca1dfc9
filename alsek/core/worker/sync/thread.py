"""``ThreadWorkerPool``: threads inside elastic worker processes.

Each *process group* is a child process running a pool of its own (``ThreadsInProcessGroup``):
it claims as many messages as it has free threads, runs them, renews their leases, hears their
revocations and writes their outcomes, as a single-process pool would. The pool's own process
only supervises. It starts another group while every group's claims come back full (up to
``n_processes``), retires its newest group when a group's worth of threads has been idle for
``IDLE_GROUP_SECONDS`` (down to ``n_process_floor``), and replaces groups that die.

Each group shares a little memory with the pool's process (``_GroupState``): a stop request one
way; the group's readiness, load and *ledger* (what it runs) the other. When a group dies, the
pool finishes the messages of its ledger that it still holds the leases of as lost attempts, at
once rather than when their leases expire.

A group ignores SIGTERM and SIGINT: a service manager signalling the whole process group reaches
the pool's process too, whose graceful shutdown stops every group (they stop claiming, let
running messages finish within the grace period, then stop and release the rest); a second signal
stops them at once. A group whose parent is gone stops by itself.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import wait
from multiprocessing.sharedctypes import RawArray
from typing import Any

import dill

from alsek.core import Process, Value
from alsek.core.broker import keys
from alsek.core.future.outcome import error_plan, release_plan, run_plan
from alsek.core.future.sync import MainThreadTaskFuture, TaskFuture, ThreadTaskFuture
from alsek.core.message import Message
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from alsek.core.task.base import BaseTask
from alsek.core.worker.base import BaseWorkerPool
from alsek.exceptions import TerminationError, WorkerLostError
from alsek.utils.environment import set_alsek_worker_pool_env_var
from alsek.utils.logging import get_logger, setup_logging
from alsek.utils.system import smart_cpu_count
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)

#: When a whole group's worth of threads has been idle this long, the newest group above the
#: floor is retired.
IDLE_GROUP_SECONDS = 10.0
#: Bytes of a ledger entry (queue, uuid, retries and lease owner of a running message). A
#: message whose entry would not fit is recovered when its lease expires instead.
LEDGER_ENTRY_BYTES = 512
#: Time groups get to exit beyond the grace period, or after being told to stop at once (their
#: leases are released meanwhile); then they are killed.
STOP_MARGIN_SECONDS = 5.0
#: Pause before starting a group again after one died before it was ready.
FAILED_START_PAUSE_SECONDS = 1.0
#: How often a group looks at its parent's stop request and at whether its parent is alive.
SUPERVISION_POLL_SECONDS = 0.05

#: Stop requests, from the pool's process to a group.
RUN, STOP, STOP_NOW = 0, 1, 2


class _Ledger:
    """The messages a group runs, in shared memory that the pool's process reads once the group
    is dead. Written by the group's engine thread only."""

    def __init__(self, n_entries: int) -> None:
        self._buffer: Any = RawArray(ctypes.c_char, n_entries * LEDGER_ENTRY_BYTES)
        self._free = list(range(n_entries))
        self._where: dict[str, int] = {}

    def record(self, message: Message) -> None:
        """Note that ``message`` runs."""
        self.erase(message.uuid)
        owner = message.linked_lock["owner_id"] if message.linked_lock else ""
        fields = (message.queue, message.uuid, str(message.retries), owner)
        entry = "\x1f".join(fields).encode() + b"\0"
        if len(entry) > LEDGER_ENTRY_BYTES or not self._free:
            return
        index = self._free.pop()
        start = index * LEDGER_ENTRY_BYTES
        self._buffer[start : start + len(entry)] = entry
        self._where[message.uuid] = index

    def erase(self, uuid: str) -> None:
        """Note that ``uuid`` no longer runs."""
        index = self._where.pop(uuid, None)
        if index is not None:
            self._buffer[index * LEDGER_ENTRY_BYTES] = b"\0"
            self._free.append(index)

    def entries(self) -> list[tuple[str, str, int, str]]:
        """``(queue, uuid, retries, lease owner)`` of each message recorded as running."""
        raw = self._buffer.raw
        found = []
        for start in range(0, len(raw), LEDGER_ENTRY_BYTES):
            entry = raw[start : start + LEDGER_ENTRY_BYTES].split(b"\0", 1)[0]
            if entry:
                queue_name, uuid, retries, owner = entry.decode().split("\x1f", 3)
                found.append((queue_name, uuid, int(retries), owner))
        return found


class _GroupState:
    """What a group and the pool's process share: a stop request one way; readiness, load and
    the ledger the other. Plain shared values: each has one writer."""

    def __init__(self, n_threads: int) -> None:
        self._stop = Value("i", RUN, lock=False)
        self._ready = Value("i", 0, lock=False)
        self._running = Value("i", 0, lock=False)
        self._backlogged = Value("i", 0, lock=False)
        self.ledger = _Ledger(n_threads)

    @property
    def stop_request(self) -> int:
        """``RUN``, ``STOP`` (gracefully) or ``STOP_NOW``."""
        return int(self._stop.value)

    def request_stop(self, level: int) -> None:
        self._stop.value = max(self._stop.value, level)

    @property
    def ready(self) -> bool:
        """Whether the group has booted and claims."""
        return bool(self._ready.value)

    def set_ready(self) -> None:
        self._ready.value = 1

    @property
    def running(self) -> int:
        """Messages the group runs."""
        return int(self._running.value)

    def set_running(self, count: int) -> None:
        self._running.value = count

    @property
    def backlogged(self) -> bool:
        """Whether the group's last claim came back full (work is waiting)."""
        return bool(self._backlogged.value)

    def set_backlogged(self, backlogged: bool) -> None:
        self._backlogged.value = int(backlogged)


class ProcessGroup:
    """A child process running ``ThreadsInProcessGroup`` over the pool's tasks.

    Args:
        n_threads: messages it runs at once.
        complete_only_on_thread_exit: see ``ThreadTaskFuture``.
        package_name: package imported in the child first (so its ``__init__`` runs there).
        tasks: the settings of the tasks it runs, encoded (``_encode_tasks``); the child
            rebuilds them with connections of its own.
        options: its other ``BaseWorkerPool`` arguments; its lease owner id is ``owner_id``
            followed by its group id.
        seed: messages already claimed (leased) for it, started first.
    """

    _next_id = 0

    def __init__(
        self,
        n_threads: int,
        complete_only_on_thread_exit: bool,
        package_name: str | None = None,
        *,
        tasks: bytes,
        options: dict[str, Any],
        owner_id: str,
        seed: Sequence[Message] = (),
    ) -> None:
        ProcessGroup._next_id += 1
        self.group_id = ProcessGroup._next_id
        self.n_threads = n_threads
        self.state = _GroupState(n_threads)
        self.stopping = False
        options = {**options, "owner_id": f"{owner_id}:g{self.group_id}"}
        self.process = Process(
            target=_start_thread_worker,
            args=(
                tasks,
                options,
                self.state,
                n_threads,
                complete_only_on_thread_exit,
                package_name,
                get_logger().level,
                os.getpid(),
                list(seed),
            ),
            daemon=True,
            name=f"alsek-group-{self.group_id}",
        )
        self.process.start()

    def stop(self, now: bool = False) -> None:
        """Ask the group to stop claiming and exit once its messages are done (or, ``now``,
        to stop and release them)."""
        self.stopping = True
        self.state.request_stop(STOP_NOW if now else STOP)


def _encode_tasks(tasks: list[Any]) -> bytes:
    return bytes(dill.dumps([task.serialize() for task in tasks]))


def _decode_tasks(encoded: bytes) -> list[Any]:
    """Tasks rebuilt from their settings, sharing one broker again as they did in the pool."""
    tasks = [BaseTask.deserialize(settings) for settings in dill.loads(encoded)]
    for task in tasks[1:]:
        task.broker = tasks[0].broker
    return tasks


def _start_thread_worker(
    tasks: bytes,
    options: dict[str, Any],
    state: _GroupState,
    n_threads: int,
    complete_only_on_thread_exit: bool,
    package_name: str | None,
    log_level: int,
    parent_pid: int,
    seed: list[Message],
) -> None:
    """Entry point of a process group's child."""
    _ignore_stop_signals()
    set_alsek_worker_pool_env_var()
    setup_logging(log_level)
    if package_name:
        importlib.import_module(package_name)
    ThreadsInProcessGroup(
        n_threads,
        complete_only_on_thread_exit,
        state=state,
        parent_pid=parent_pid,
        seed=seed,
        tasks=_decode_tasks(tasks),
        **options,
    ).run()


def _ignore_stop_signals() -> None:
    """In a group: stop signals are the pool process's to handle (see the module's docstring)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


class ThreadsInProcessGroup(BaseWorkerPool):
    """The pool a process group runs: a single-process thread pool that its parent supervises.

    Args:
        n_threads: messages it runs at once.
        complete_only_on_thread_exit: see ``ThreadTaskFuture``.
        state: what it shares with the pool's process.
        parent_pid: the pool's process; when it is gone, the group stops.
        seed: leased messages to start first.
        **kwargs: ``BaseWorkerPool`` options.
    """

    def __init__(
        self,
        n_threads: int,
        complete_only_on_thread_exit: bool,
        *,
        state: _GroupState,
        parent_pid: int,
        seed: Sequence[Message] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(mechanism="thread", **kwargs)
        _ignore_stop_signals()  # again: building the consumer installed the stop handlers
        self.n_threads = n_threads
        self.complete_only_on_thread_exit = complete_only_on_thread_exit
        self._state = state
        self._parent_pid = parent_pid
        self._seed = list(seed)
        self._futures: dict[str, TaskFuture] = {}
        self._done: queue.SimpleQueue[TaskFuture] = queue.SimpleQueue()
        self._timeouts_due: int | None = None

    @property
    def capacity(self) -> int:
        """Threads of the group."""
        return self.n_threads

    # -- boot and shutdown -------------------------------------------------------------------

    def on_boot(self) -> None:
        """Listen for revocations and to the parent, start the seed, and report ready."""
        self._listen_for_revocations()
        threading.Thread(target=self._watch_parent, name="alsek-supervision", daemon=True).start()
        for message in self._seed:
            self._start(message)
        self._seed = []
        self._state.set_ready()
        log.debug("Process group online (pid %s)", os.getpid())

    def _watch_parent(self) -> None:
        """Turn the parent's stop request, or its death, into this pool's stop signal."""
        while not self.stop_signal.received:
            if os.getppid() != self._parent_pid:
                log.error("Worker pool process is gone; stopping")
                break
            if self._state.stop_request != RUN:
                break
            time.sleep(SUPERVISION_POLL_SECONDS)
        self.stop_signal.exit_event.set()

    def _draining(self, deadline: int) -> bool:
        return self._state.stop_request != STOP_NOW and super()._draining(deadline)

    def on_shutdown(self) -> None:
        """Drain within the grace period (unless told to stop now), then stop and release."""
        self._drain_and_release()
        log.debug("Process group stopped (pid %s)", os.getpid())

    # -- claiming ------------------------------------------------------------------------------

    def _note_claim(self, requested: int, claimed: int) -> None:
        super()._note_claim(requested, claimed)
        self._state.set_backlogged(self._backlogged)

    def free_slots(self) -> int:
        """Threads without a message."""
        return self.n_threads - len(self._futures)

    def submit_message(self, message: Message) -> bool:
        """Start the message in a worker thread (or, ``run_in_main_thread``, run it here)."""
        task = self._task_map[message.task_name]
        write_running = self._writes_running(task)
        self._state.ledger.record(message)
        due = utcnow_timestamp_ms() + message.timeout + 1
        self._timeouts_due = min(due, self._timeouts_due or due)
        future: TaskFuture
        if message.run_in_main_thread:
            with self._maintained_meanwhile():
                future = MainThreadTaskFuture(task, message, write_running=write_running)
            self._done.put(future)
        else:
            future = ThreadTaskFuture(
                task,
                message,
                complete_only_on_thread_exit=self.complete_only_on_thread_exit,
                write_running=write_running,
                on_complete=self._on_complete,
            )
        self._futures[message.uuid] = future
        self._state.set_running(len(self._futures))
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
        """Called from a future's thread: its slot is free (the engine reaps it)."""
        self._done.put(future)

    def _reap_done(self, block_seconds: float | None = None) -> None:
        try:
            future = self._done.get(block_seconds is not None, block_seconds)
            while True:
                self._reap(future)
                future = self._done.get_nowait()
        except queue.Empty:
            pass

    def _reap(self, future: TaskFuture) -> None:
        uuid = future.message.uuid
        if self._futures.get(uuid) is not future:
            return  # an earlier attempt: the message runs again already
        del self._futures[uuid]
        self._state.ledger.erase(uuid)
        self._finished(uuid)
        self._state.set_running(len(self._futures))

    def prune(self) -> None:
        """Reap finished futures, and stop those past their timeout."""
        self._reap_done()
        if self._timeouts_due is not None and utcnow_timestamp_ms() >= self._timeouts_due:
            self._stop_timed_out()

    def _stop_timed_out(self) -> None:
        due = None
        for future in list(self._futures.values()):
            if future.time_limit_exceeded:
                log.warning("%s timed out", future.message.summary)
                future.stop(TimeoutError)
            elif not future.complete:
                limit = future.created_at + future.message.timeout + 1
                due = limit if due is None else min(due, limit)
        self._timeouts_due = due

    def _next_deadline(self) -> int | None:
        return self._timeouts_due

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


class ThreadWorkerPool(BaseWorkerPool):
    """Runs thread-mechanism tasks in threads of elastic child processes.

    Args:
        n_threads: threads per process group.
        n_processes: most process groups (default: CPUs minus one).
        n_process_floor: groups kept even when idle.
        complete_only_on_thread_exit: see ``ThreadTaskFuture``.
        package_name: package each group imports first.
        **kwargs: ``BaseWorkerPool`` options (each group is built with them).
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
            "foreign_tasks": self.exclude_tasks,
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
            self._group_tasks = _encode_tasks(self.tasks)
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

    def _all_groups(self) -> list[ProcessGroup]:
        return [*self._progress_groups, *self._retiring]

    # -- boot, supervision, shutdown ----------------------------------------------------------

    def on_boot(self) -> None:
        """Log the capacity and what the pool serves, and start the floor of process groups."""
        log.info(
            "Capacity: %d processes x %d threads (floor %d)",
            self.n_processes,
            self.n_threads,
            self.n_process_floor,
        )
        for line in self._boot_lines(self.queues):
            log.info(line)
        for _ in range(self.n_process_floor):
            self._make_new_process_group()
        log.info("Worker pool online")

    def engine(self) -> None:
        """Supervise the groups (they claim and run the messages) until told to stop."""
        while self._can_run and not self.stop_signal.received:
            try:
                self.prune()
                if self._progress_groups or time.monotonic() < self._no_start_before:
                    self.wait_for_slot(self.slot_wait_interval)
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
                    run_plan(error_plan(self._task_map[message.task_name], message, error))
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
            deadline = time.monotonic() + self.grace_period / 1000 + STOP_MARGIN_SECONDS
            for group in groups:
                group.process.join(max(deadline - time.monotonic(), 0))
        finally:
            self.stop_all(TerminationError)
            log.info("Worker pool stopped")

    # -- BaseWorkerPool's interface, as the supervisor sees it ---------------------------------

    def free_slots(self) -> int:
        """Free threads in the groups, and in the groups that may still start."""
        running = sum(group.state.running for group in self._progress_groups)
        return self.capacity - running

    def submit_message(self, message: Message) -> bool:
        """Never called: the groups claim and start messages themselves."""
        return False

    def wait_for_slot(self, timeout_ms: int) -> None:
        """Block until a group exits, or ``timeout_ms``."""
        sentinels = [group.process.sentinel for group in self._all_groups()]
        if sentinels:
            wait(sentinels, timeout=timeout_ms / 1000)
        else:
            self.stop_signal.wait(timeout_ms)

    def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        """Nothing to do: each group hears the revocations of its messages itself."""

    def stop_all(self, exception: type[BaseException]) -> None:
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
