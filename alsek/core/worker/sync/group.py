"""Process groups of the thread pool: each a child process running a pool of its own.

A group (``ThreadsInProcessGroup``) is an ``InProcessThreadPool`` in a child process: it claims
as many messages as it has free threads, runs them, renews their leases, hears their
revocations and writes their outcomes; ``ThreadWorkerPool`` (``thread``) only supervises the
groups.

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
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.sharedctypes import RawArray
from typing import Any

import dill

from alsek.core import Process, Value
from alsek.core.future.sync import TaskFuture
from alsek.core.message import Message
from alsek.core.steps.ops import Steps
from alsek.core.task.base import BaseTask
from alsek.core.worker.sync.inprocess import InProcessThreadPool
from alsek.utils.environment import set_alsek_worker_pool_env_var
from alsek.utils.logging import LogSetup, current_log_setup

log = logging.getLogger(__name__)

#: message whose entry would not fit is recovered when its lease expires instead.
LEDGER_ENTRY_BYTES = 512
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
        self.ledger = _Ledger(2 * n_threads)  # running, and writing their outcome

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
        tasks: the settings of the tasks it runs, encoded (``encode_tasks``); the child
            rebuilds them with connections of its own.
        options: its other pool arguments (``PoolCore``'s); its lease owner id is ``owner_id``
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
                current_log_setup(),
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


def encode_tasks(tasks: list[Any]) -> bytes:
    """The settings of ``tasks``, as a group receives them (it rebuilds them, ``_decode_tasks``)."""
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
    log_setup: LogSetup,
    parent_pid: int,
    seed: list[Message],
) -> None:
    """Entry point of a process group's child."""
    _ignore_stop_signals()
    set_alsek_worker_pool_env_var()
    log_setup.apply()
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


class ThreadsInProcessGroup(InProcessThreadPool):
    """The pool a process group runs: an in-process thread pool that its parent supervises.

    Args:
        n_threads: messages it runs at once.
        complete_only_on_thread_exit: see ``ThreadTaskFuture``.
        state: what it shares with the pool's process.
        parent_pid: the pool's process; when it is gone, the group stops.
        seed: leased messages to start first.
        **kwargs: ``PoolCore`` options.
    """

    registers = False  # its pool beats for it

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
        super().__init__(n_threads, complete_only_on_thread_exit, **kwargs)
        _ignore_stop_signals()  # again: building the consumer installed the stop handlers
        self._state = state
        self._parent_pid = parent_pid
        self._seed = list(seed)

    # -- boot and shutdown -------------------------------------------------------------------

    def _ready(self) -> bool:
        """Nothing to announce or wait for: the pool's process did both before starting it."""
        return True

    def on_boot(self) -> None:
        """Listen for revocations and to the parent (the engine then boots, ``_boot_steps``)."""
        self._listen_for_revocations()
        threading.Thread(target=self._watch_parent, name="alsek-supervision", daemon=True).start()

    def _boot_steps(self) -> Steps[None]:
        """Boot as every pool does, start the seed, and report ready."""
        yield from super()._boot_steps()
        seed, self._seed = self._seed, []
        for message in seed:
            yield from self._start_steps(message)
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

    # -- what the supervisor sees ------------------------------------------------------------------

    def _note_claim(self, requested: int, claimed: int) -> None:
        super()._note_claim(requested, claimed)
        self._state.set_backlogged(self._backlogged)

    def submit_message(self, message: Message) -> bool:
        """Record the message in the ledger, then start it."""
        self._state.ledger.record(message)
        started = super().submit_message(message)
        self._state.set_running(self._occupied())
        return started

    def _reap(self, future: TaskFuture) -> bool:
        reaped = super()._reap(future)
        if reaped:
            self._state.ledger.erase(future.message.uuid)
            self._state.set_running(self._occupied())
        return reaped
