"""The warm children of the process pool: processes forked once that run messages one at a time.

A child rebuilds the pool's tasks with Redis clients of its own (a connection pool is never
shared across a fork), says ``READY`` on its pipe, then loops: it takes a message from the pipe,
runs it and writes its outcome (``alsek.core.future.warm``); then, while work is backed up, it
claims its next message itself and says ``NEXT`` with it (``next_claim``), else it says
``DONE``. It ends when its pipe closes: the pool closed it (retiring the child, or stopping),
or the pool's process is gone. The pool stops a run by killing the child (SIGKILL: a task in C
code or ``time.sleep`` is stopped too) and starts another.

A child ignores SIGTERM and SIGINT: a service manager signalling the whole process group reaches
the pool's process too, whose graceful shutdown decides what happens to running messages.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
from collections.abc import Sequence
from dataclasses import replace
from multiprocessing.connection import Connection

from alsek.core import Process, Value
from alsek.core.future.sync import forks_processes
from alsek.core.future.warm import (
    IDLE,
    SENT,
    SharedInt,
    WarmTaskFuture,
    pack_message,
    phase_for,
    phase_word,
    run_in_child,
    unpack_message,
)
from alsek.core.message import Message
from alsek.core.worker.sync.group import _decode_tasks, _ignore_stop_signals
from alsek.core.worker.sync.next_claim import ChildClaims, claim_next
from alsek.utils.environment import set_alsek_worker_pool_env_var
from alsek.utils.logging import LogSetup, current_log_setup

log = logging.getLogger(__name__)

#: What a child says on its pipe: it has booted / it is done with its message / it is done and
#: has claimed and started the message that follows (packed).
READY, DONE, NEXT = b"r", b"d", b"n"
#: How long a killed child is waited for before the pool looks again later.
KILL_WAIT_SECONDS = 5.0

_child_ids = itertools.count(1)


class WarmChild:
    """One warm child, seen from the pool's process: its process, its pipe, its phase, and
    the future it runs.

    Args:
        tasks: the pool's tasks, encoded (``encode_tasks``); the child rebuilds them.
        write_running: names of the tasks whose runs record RUNNING themselves.
        siblings: the pool's ends of the other children's pipes: a forked child closes them,
            so that each pipe ends when the pool's process does.
        claims: how the child claims its next message itself (``None``: it never does); its
            lease owner id is the pool's followed by ``:c`` and the child's id.
    """

    def __init__(
        self,
        tasks: bytes,
        write_running: frozenset[str],
        siblings: Sequence[Connection] = (),
        claims: ChildClaims | None = None,
    ) -> None:
        self.child_id = next(_child_ids)
        if claims is not None:
            claims = replace(claims, owner_id=f"{claims.owner_id}:c{self.child_id}")
        self._phase: SharedInt = Value("q", IDLE, lock=False)
        self.serial = 0
        self.conn, child_end = multiprocessing.Pipe(duplex=True)
        inherited = [self.conn, *siblings] if forks_processes() else []
        self.process = Process(
            target=_serve,
            args=(
                child_end,
                inherited,
                tasks,
                write_running,
                self._phase,
                current_log_setup(),
                claims,
            ),
            daemon=True,
            name=f"alsek-child-{self.child_id}",
        )
        self.process.start()
        child_end.close()
        self.ready = False
        self.future: WarmTaskFuture | None = None
        self.runs = 0
        self.retiring = False
        self.killed = False
        self.pipe_open = True

    def __repr__(self) -> str:
        return f"<WarmChild {self.child_id} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        pid: int | None = self.process.pid
        return pid

    def phase_of(self, serial: int) -> int:
        """Where the child is with its message ``serial`` (``alsek.core.future.warm``)."""
        return phase_for(int(self._phase.value), serial)

    @property
    def exitcode(self) -> int | None:
        """How the child ended (``-9``: killed); ``None`` while it runs."""
        code: int | None = self.process.exitcode
        return code

    @property
    def idle(self) -> bool:
        """Whether it can take a message now."""
        return self.ready and self.future is None and not self.retiring and self.pipe_open

    @property
    def awaits_report(self) -> bool:
        """Whether the pool waits for something on its pipe (``READY`` or ``DONE``)."""
        return self.pipe_open and (not self.ready or self.future is not None)

    def assign(self, future: WarmTaskFuture) -> None:
        """Make ``future`` its run (``SENT``: a stop from now on kills it), before ``send``."""
        self.future = future
        self._phase.value = phase_word(future.serial, SENT)

    def send(self, future: WarmTaskFuture) -> None:
        """Send it ``future``'s message; a child that died meanwhile is reaped (and the
        message settled) by the pool."""
        try:
            self.conn.send_bytes(pack_message(future.message))
        except OSError as error:
            log.warning("Could not hand %s to %r: %s", future.message.summary, self, error)

    def read_report(self) -> Message | None:
        """Take what the child said on its pipe (it said something: the pipe is readable);
        the message it claimed and started itself, if it said ``NEXT`` (the pool then
        ``adopt``s it)."""
        try:
            report = self.conn.recv_bytes()
        except (EOFError, OSError):
            self.pipe_open = False  # it is gone: the pool reaps it through its sentinel
            return None
        if report == READY:
            self.ready = True
            return None
        if self.future is not None and report[:1] in (DONE, NEXT):
            self.future.finished()
            self.future = None
            self.runs += 1
        return unpack_message(report[1:]) if report[:1] == NEXT else None

    def next_serial(self) -> int:
        """The serial of the next message the child takes (sent, or claimed by itself)."""
        self.serial += 1
        return self.serial

    def adopt(self, future: WarmTaskFuture) -> None:
        """Make ``future`` (of a message the child claimed itself) its run; the child wrote
        its phase."""
        self.future = future

    def retire(self) -> None:
        """Close its pipe: it ends once it is done with its message (if any)."""
        self.retiring = True
        self.close_pipe()

    def close_pipe(self) -> None:
        """Close the pool's end of the pipe (the child sees it closed and ends)."""
        if self.pipe_open:
            self.pipe_open = False
            self.conn.close()

    def kill(self) -> bool:
        """SIGKILL the child and wait for it (at most ``KILL_WAIT_SECONDS``); whether it is
        gone."""
        self.killed = True
        self.process.kill()
        self.process.join(KILL_WAIT_SECONDS)
        return self.process.exitcode is not None

    def settle_after_exit(self) -> None:
        """The child has exited: reap it, and finish its message if it still had one."""
        self.process.join()
        self.close_pipe()
        future, self.future = self.future, None
        if future is not None:
            future.settle()


def _serve(
    conn: Connection,
    inherited: list[Connection],
    tasks: bytes,
    write_running: frozenset[str],
    phase: SharedInt,
    log_setup: LogSetup,
    claims: ChildClaims | None,
) -> None:
    """Body of a warm child: boot, then run the messages of its pipe, and those it claims
    itself, until the pipe closes (retired, stopped, or the pool's process is gone)."""
    _ignore_stop_signals()
    for other in inherited:
        other.close()  # the pool's ends: a pipe must end when the pool's process does
    set_alsek_worker_pool_env_var()
    log_setup.apply()
    served = {task.name: task for task in _decode_tasks(tasks)}
    if not _say(conn, READY):
        return
    serial = 0  # the messages it took so far, each run before the next: also its runs
    while True:
        try:
            message: Message | None = unpack_message(conn.recv_bytes())
        except (EOFError, OSError):
            return
        serial += 1
        while message is not None:
            run_in_child(served, message, phase, serial, write_running)
            message = claim_next(claims, served, serial) if claims is not None else None
            if message is None:
                report = DONE
            else:
                serial += 1
                phase.value = phase_word(serial, SENT)
                report = NEXT + pack_message(message)
            if not _say(conn, report):
                return


def _say(conn: Connection, report: bytes) -> bool:
    """Send ``report`` to the pool; whether it is still there."""
    try:
        conn.send_bytes(report)
    except OSError:
        return False
    return True
