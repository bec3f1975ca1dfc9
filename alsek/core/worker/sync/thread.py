"""``ThreadWorkerPool``: threads inside elastic worker processes.

The pool's own process claims messages and hands them to *process groups*: child processes each
running up to ``n_threads`` futures in threads. Groups are started as load needs them (up to
``n_processes``) and retired when idle (down to ``n_process_floor``). The parent keeps exact
accounting of what each group runs, so it claims only what can start; a group reports each
message it finished, and a group that dies has its messages finished by the parent as lost
attempts. A group whose parent disappears stops its futures and exits.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue as queue_module
import time
from typing import Any

import dill

from alsek.core import Process, Queue
from alsek.core.future.outcome import error_plan, run_plan
from alsek.core.future.sync import MainThreadTaskFuture, TaskFuture, ThreadTaskFuture
from alsek.core.message import Message
from alsek.core.task.base import BaseTask
from alsek.core.worker.base import BaseWorkerPool
from alsek.exceptions import RevokedError, TerminationError, WorkerLostError
from alsek.utils.environment import set_alsek_worker_pool_env_var
from alsek.utils.logging import get_logger, setup_logging
from alsek.utils.system import smart_cpu_count

log = logging.getLogger(__name__)

#: A group above the floor with nothing to run for this long is retired.
IDLE_GROUP_SECONDS = 10.0

_STOP_REASONS: dict[str, type[BaseException]] = {
    "revoked": RevokedError,
    "timeout": TimeoutError,
    "terminate": TerminationError,
}
_REASON_NAMES = {exception: name for name, exception in _STOP_REASONS.items()}


class ProcessGroup:
    """A child process running up to ``n_threads`` futures, fed through a command queue.

    Args:
        n_threads: futures it runs at once.
        complete_only_on_thread_exit: see ``ThreadTaskFuture``.
        slot_wait_interval_seconds: longest the child blocks on its queue before pruning.
        package_name: package imported in the child first (so its ``__init__`` runs there).
        tasks: the tasks it may run (sent once, serialized).
        completions: queue on which it reports ``(group id, uuid)`` of each finished message.
        running_written: names of the tasks whose futures must record RUNNING themselves.
    """

    _next_id = 0

    def __init__(
        self,
        n_threads: int,
        complete_only_on_thread_exit: bool,
        slot_wait_interval_seconds: float,
        package_name: str | None = None,
        *,
        tasks: list[Any],
        completions: Any,
        running_written: frozenset[str] = frozenset(),
    ) -> None:
        ProcessGroup._next_id += 1
        self.group_id = ProcessGroup._next_id
        self.n_threads = n_threads
        self.queue = Queue()
        self.assigned: set[str] = set()
        self.idle_since = time.monotonic()
        payload = dill.dumps({task.name: task.serialize() for task in tasks})
        self.process = Process(
            target=_start_thread_worker,
            args=(
                self.queue,
                completions,
                self.group_id,
                n_threads,
                complete_only_on_thread_exit,
                slot_wait_interval_seconds,
                get_logger().level,
                payload,
                running_written,
                os.getpid(),
                package_name,
            ),
            daemon=True,
            name=f"alsek-group-{self.group_id}",
        )
        self.process.start()

    def has_slot(self) -> bool:
        """Whether it can take one more message (exact: the parent counts assignments)."""
        return len(self.assigned) < self.n_threads

    def submit(self, task: Any, message: Message) -> bool:
        """Hand ``message`` to the child; ``False`` when it is full."""
        if not self.has_slot():
            return False
        self.queue.put(("run", message))
        self.assigned.add(message.uuid)
        return True

    def done(self, uuid: str) -> None:
        """Record that the child finished ``uuid``."""
        self.assigned.discard(uuid)
        if not self.assigned:
            self.idle_since = time.monotonic()

    def stop_message(self, uuid: str, exception: type[BaseException]) -> None:
        """Ask the child to stop one running message."""
        self.queue.put(("stop", uuid, _REASON_NAMES.get(exception, "terminate")))

    def stop(self, timeout: int | float = 2) -> None:
        """Stop every future (their leases are released) and end the child."""
        if self.process.is_alive():
            self.queue.put(("shutdown",))
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _start_thread_worker(
    commands: Any,
    completions: Any,
    group_id: int,
    n_threads: int,
    complete_only_on_thread_exit: bool,
    slot_wait_interval_seconds: float,
    log_level: int,
    payload: bytes,
    running_written: frozenset[str],
    parent_pid: int,
    package_name: str | None = None,
) -> None:
    """Entry point of a process group's child."""
    set_alsek_worker_pool_env_var()
    setup_logging(log_level)
    if package_name:
        importlib.import_module(package_name)
    tasks = {name: BaseTask.deserialize(s) for name, s in dill.loads(payload).items()}
    ThreadsInProcessGroup(
        commands,
        completions,
        group_id,
        tasks,
        n_threads=n_threads,
        complete_only_on_thread_exit=complete_only_on_thread_exit,
        slot_wait_interval_seconds=slot_wait_interval_seconds,
        running_written=running_written,
        parent_pid=parent_pid,
    ).run()


class ThreadsInProcessGroup:
    """The child's loop: start futures, stop them on command or timeout, report completions."""

    def __init__(
        self,
        commands: Any,
        completions: Any,
        group_id: int,
        tasks: dict[str, Any],
        *,
        n_threads: int,
        complete_only_on_thread_exit: bool,
        slot_wait_interval_seconds: float,
        running_written: frozenset[str],
        parent_pid: int,
    ) -> None:
        self.commands = commands
        self.completions = completions
        self.group_id = group_id
        self.tasks = tasks
        self.n_threads = n_threads
        self.complete_only_on_thread_exit = complete_only_on_thread_exit
        self.slot_wait_interval_seconds = slot_wait_interval_seconds
        self.running_written = running_written
        self.parent_pid = parent_pid
        self._live: dict[str, TaskFuture] = {}

    def run(self) -> None:
        """Serve commands until told to shut down, or until the parent is gone."""
        try:
            while True:
                self._prune()
                if os.getppid() != self.parent_pid:
                    log.error("Worker pool process is gone; stopping")
                    self._stop_all(TerminationError)
                    return
                try:
                    command = self.commands.get(timeout=self.slot_wait_interval_seconds)
                except queue_module.Empty:
                    continue
                if command[0] == "run":
                    self._spawn(command[1])
                elif command[0] == "stop":
                    self._stop(command[1], _STOP_REASONS[command[2]])
                else:
                    self._stop_all(TerminationError)
                    self._prune()
                    return
        except KeyboardInterrupt:
            self._stop_all(TerminationError)

    def _spawn(self, message: Message) -> None:
        task = self.tasks[message.task_name]
        write_running = message.task_name in self.running_written
        if message.run_in_main_thread:
            future: TaskFuture = MainThreadTaskFuture(task, message, write_running=write_running)
        else:
            future = ThreadTaskFuture(
                task,
                message,
                complete_only_on_thread_exit=self.complete_only_on_thread_exit,
                write_running=write_running,
                on_complete=self._report,
            )
        self._live[message.uuid] = future

    def _report(self, future: TaskFuture) -> None:
        """Tell the pool at once that a slot is free (called from the future's thread)."""
        self.completions.put((self.group_id, future.message.uuid))

    def _stop(self, uuid: str, exception: type[BaseException]) -> None:
        future = self._live.get(uuid)
        if future is not None:
            future.stop(exception)

    def _stop_all(self, exception: type[BaseException]) -> None:
        for future in list(self._live.values()):
            if not future.complete:
                future.stop(exception)

    def _prune(self) -> None:
        for uuid, future in list(self._live.items()):
            if future.time_limit_exceeded:
                log.warning("%s timed out", future.message.summary)
                future.stop(TimeoutError)
            if future.complete:
                del self._live[uuid]
                if not isinstance(future, ThreadTaskFuture):  # those report themselves
                    self.completions.put((self.group_id, uuid))


class ThreadWorkerPool(BaseWorkerPool):
    """Runs thread-mechanism tasks in threads of elastic child processes.

    Args:
        n_threads: threads per process group.
        n_processes: most process groups (default: CPUs minus one).
        n_process_floor: groups kept even when idle.
        complete_only_on_thread_exit: see ``ThreadTaskFuture``.
        package_name: package each group imports first.
        **kwargs: ``BaseWorkerPool`` options.
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
        self._completions = Queue()
        self._running_written = frozenset(
            task.name for task in self.tasks if self._writes_running(task)
        )

    @property
    def groups(self) -> list[ProcessGroup]:
        """The live process groups."""
        return self._progress_groups

    def _make_new_process_group(self) -> ProcessGroup | None:
        if self.stop_signal.received or len(self._progress_groups) >= self.n_processes:
            return None
        group = ProcessGroup(
            self.n_threads,
            self.complete_only_on_thread_exit,
            self._slot_wait_interval_seconds,
            self.package_name,
            tasks=self.tasks,
            completions=self._completions,
            running_written=self._running_written,
        )
        self._progress_groups.append(group)
        log.debug("Started process group %d (pid %s)", group.group_id, group.process.pid)
        return group

    def on_boot(self) -> None:
        """Start the floor of process groups, then the common boot."""
        log.info(
            "Capacity: %d processes x %d threads (floor %d)",
            self.n_processes,
            self.n_threads,
            self.n_process_floor,
        )
        for _ in range(self.n_process_floor):
            self._make_new_process_group()
        super().on_boot()

    @property
    def capacity(self) -> int:
        """Threads across all the process groups the pool may start."""
        return self.n_threads * self.n_processes

    def free_slots(self) -> int:
        """Free threads in running groups, plus those of groups that may still start."""
        free = sum(self.n_threads - len(group.assigned) for group in self._progress_groups)
        return free + (self.n_processes - len(self._progress_groups)) * self.n_threads

    def _acquire_group(self) -> ProcessGroup | None:
        for group in self._progress_groups:
            if group.has_slot():
                return group
        return self._make_new_process_group()

    def submit_message(self, message: Message) -> bool:
        """Hand the message to a group with a free thread."""
        group = self._acquire_group()
        if group is None:
            return False
        return group.submit(self._task_map[message.task_name], message)

    def _drain_completions(self, block_seconds: float | None = None) -> None:
        by_id = {group.group_id: group for group in self._progress_groups}
        try:
            item = self._completions.get(timeout=block_seconds) if block_seconds else None
            while True:
                if item is None:
                    item = self._completions.get_nowait()
                group_id, uuid = item
                if group_id in by_id:
                    by_id[group_id].done(uuid)
                self._finished(uuid)
                item = None
        except queue_module.Empty:
            pass

    def prune(self) -> None:
        """Reap completions, finish the messages of dead groups, retire idle ones."""
        self._drain_completions()
        for group in list(self._progress_groups):
            if not group.process.is_alive():
                self._progress_groups.remove(group)
                self._lost_group(group)
        self._retire_idle_groups()
        while len(self._progress_groups) < self.n_process_floor and self._can_run:
            if self._make_new_process_group() is None:
                break

    def _lost_group(self, group: ProcessGroup) -> None:
        code = group.process.exitcode
        log.error("Process group %d died (exit code %s)", group.group_id, code)
        for uuid in list(group.assigned):
            message = self._inflight.get(uuid)
            if message is not None:
                error = WorkerLostError(f"The process running it exited with code {code}")
                run_plan(error_plan(self._task_map[message.task_name], message, error))
            self._finished(uuid)

    def _retire_idle_groups(self) -> None:
        now = time.monotonic()
        for group in list(self._progress_groups):
            if len(self._progress_groups) <= self.n_process_floor:
                return
            if not group.assigned and now - group.idle_since >= IDLE_GROUP_SECONDS:
                self._progress_groups.remove(group)
                group.stop()
                log.debug("Retired idle process group %d", group.group_id)

    def wait_for_slot(self, timeout_ms: int) -> None:
        """Block until a group reports a finished message, or ``timeout_ms``."""
        self._drain_completions(block_seconds=max(timeout_ms, 1) / 1000)

    def stop_running(self, uuid: str, exception: type[BaseException]) -> None:
        """Forward a stop to the group running ``uuid``."""
        for group in list(self._progress_groups):
            if uuid in group.assigned:
                group.stop_message(uuid, exception)

    def stop_all(self, exception: type[BaseException]) -> None:
        """Stop every group; their futures are stopped with ``TerminationError``."""
        for group in self._progress_groups:
            group.stop()
        self._drain_completions()
        for group in self._progress_groups:
            for uuid in list(group.assigned):
                group.done(uuid)
        self._progress_groups = []
