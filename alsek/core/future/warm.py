"""``WarmTaskFuture``: one message run by a warm child of the process pool.

The process pool forks its children once and hands each one message at a time (the children
are in ``alsek.core.worker.sync.children``). A child runs the task *and* its outcome plan (the
ack, retry or failure with its hooks, ``outcome``), as a process future's child does: results
and exceptions never cross a pipe, hooks run beside the task (a hook that crashes takes only
the child down), and the outcome writes of several children reach Redis in parallel while the
pool's process only claims, renews leases and dispatches.

The pool's process follows a run through one shared integer per child, its *phase*, which
also carries the *serial* of the message it is about (the child's how-manieth message), so that
a stop aimed at a message the child has left behind never touches the one it took next. Exactly
one side writes it at a time: the pool writes ``SENT`` before it sends a message to an idle
child; a child that claimed its next message itself (``children``) writes ``SENT`` for it before
it tells the pool; the child writes ``RUNNING`` when it takes the message, ``FINISHING`` before
the outcome plan and ``FINISHED`` after it; a later serial means ``FINISHED`` for every earlier
one. A stop (timeout, revocation, shutdown) kills the child first and decides
afterwards from the phase the child left, so no lock is ever shared with a process that may die
holding it, and the outcome of each attempt is written exactly once:

* ``FINISHED``: the run and its outcome are done; nothing to do.
* ``FINISHING``: the child's outcome reached Redis exactly when the lease is gone; if it is
  still held, as ``RUNNING``.
* ``RUNNING``: the stop's outcome (a timeout or a revocation fails the attempt, a shutdown
  releases the message); a child that died by itself (a segfault, the OOM killer) fails the
  attempt with ``WorkerLostError``, so a message that keeps killing its child ends in the DLQ.
* ``SENT``: the run never began: a death or a shutdown releases the message, uncounted.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
from typing import Any, Protocol

import dill

from alsek.core.future.outcome import interrupted_plan, run_plan
from alsek.core.future.sync import TaskFuture, _finish_run, _run_task, _write_running
from alsek.core.message import Message
from alsek.exceptions import WorkerLostError

log = logging.getLogger(__name__)

#: Phases of a warm child (see the module's docstring).
IDLE, SENT, RUNNING, FINISHING, FINISHED = 0, 1, 2, 3, 4
#: A phase word is ``serial * PHASES + phase``.
PHASES = 8


def phase_word(serial: int, phase: int) -> int:
    """The shared integer saying that message ``serial`` of a child is at ``phase``."""
    return serial * PHASES + phase


def phase_for(word: int, serial: int) -> int:
    """The phase of message ``serial`` as ``word`` tells it: a child that moved on to a later
    message is done with this one."""
    current, phase = divmod(word, PHASES)
    if current > serial:
        return FINISHED
    return phase if current == serial else SENT


class SharedInt(Protocol):
    """A ``multiprocessing`` shared integer."""

    value: int


class WarmChildHandle(Protocol):
    """What a future needs of the child running it (``WarmChild`` in the pool)."""

    @property
    def pid(self) -> int | None:
        """The child's process id."""

    def phase_of(self, serial: int) -> int:
        """Where the child is with its message ``serial``."""

    @property
    def exitcode(self) -> int | None:
        """How the child ended; ``None`` while it runs."""

    def kill(self) -> bool:
        """SIGKILL the child; whether it is gone (reaped) on return."""


def pack_message(message: Message) -> bytes:
    """A message as the pool sends it to a child: pickled, or with ``dill`` when its arguments
    need it (a binary serializer may carry values ``pickle`` cannot)."""
    try:
        return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return bytes(dill.dumps(message))


def unpack_message(payload: bytes) -> Message:
    """A message as ``pack_message`` sent it (between the pool and its own children only)."""
    message: Message = pickle.loads(payload)  # also reads dill's output
    return message


def run_in_child(
    tasks: dict[str, Any],
    message: Message,
    phase: SharedInt,
    serial: int,
    write_running: frozenset[str],
) -> None:
    """In a warm child: run ``message`` (the child's message ``serial``) and write its outcome,
    moving ``phase`` along (the pool's process reads it if the child is killed or dies)."""
    phase.value = phase_word(serial, RUNNING)
    task = tasks[message.task_name]
    log.info("Received %s (process %s)", message.summary, os.getpid())
    _write_running(task, message, message.task_name in write_running)
    result, error = _run_task(task, message)
    phase.value = phase_word(serial, FINISHING)
    _finish_run(task, message, result, error)
    phase.value = phase_word(serial, FINISHED)


class WarmTaskFuture(TaskFuture):
    """One message run by a warm child; its outcome is written by the child, or, when the
    child is killed or dies first, here (see the module's docstring).

    Args:
        task: the task (the pool's copy: the one the outcome is written with here).
        message: the message as claimed (it carries the lease).
        child: the child running it.
        lease_ttl: the pool's lease (ms), renewed when the child's outcome must be checked.
        serial: which of the child's messages it is.
    """

    def __init__(
        self, task: Any, message: Message, child: WarmChildHandle, lease_ttl: int, serial: int
    ) -> None:
        super().__init__(task, message)
        self.child = child
        self.serial = serial
        self.lease_ttl = lease_ttl
        self._lock = threading.Lock()
        self._stopped_by: type[BaseException] | None = None
        self._settling = False
        self._complete = False

    @property
    def complete(self) -> bool:
        """Done: the child reported the end of the run, or the outcome was written here."""
        return self._complete

    def finished(self) -> None:
        """The child reported that the run and its outcome are done."""
        with self._lock:
            self._settling = True
            self._complete = True

    def stop(self, exception: type[BaseException]) -> None:
        """Kill the child (unless the run already ended) and finish the message as the phase
        it left says; ``TerminationError`` releases it, anything else fails the attempt."""
        with self._lock:
            if self._settling or self._stopped_by is not None:
                return
            if self.child.phase_of(self.serial) == FINISHED:
                return  # the run is over and its report on the way: nothing to stop
            self._stopped_by = exception
        if self.child.kill():
            self.settle()
        # Else the child is not reaped yet (stuck in the kernel): the pool settles it on exit.

    def settle(self) -> None:
        """The child is gone: finish the message as the phase it left says (once)."""
        with self._lock:
            if self._settling:
                return
            self._settling = True
        try:
            self._finish_here()
        finally:
            self._complete = True

    def _finish_here(self) -> None:
        phase = self.child.phase_of(self.serial)
        if phase == FINISHED:
            return
        if self._stopped_by is not None:
            error: BaseException | None = self._stopped_by(f"Stopped process {self.child.pid}")
        elif phase == SENT:
            error = None
        else:
            code = self.child.exitcode
            error = WorkerLostError(f"The process running it exited with code {code}")
            log.error("%s: its process died (exit code %s)", self.message.summary, code)
        plan = interrupted_plan(
            self.task, self.message, error, self.lease_ttl, may_have_finished=phase == FINISHING
        )
        run_plan(plan)
