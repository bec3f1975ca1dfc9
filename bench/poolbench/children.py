"""The processes of a run: workers started through their own command lines, and producers that
speak ``apps.submit``'s handshake (warm up, ``ready``, wait for ``go``, submit, report).

Each runs in a session of its own, so that whatever it leaves behind is killed with its
process group; its output goes to a log whose tail is shown when it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from _common import BENCH_DIR

#: Time a process gets to exit after SIGTERM before its process group is killed.
STOP_TIMEOUT_SECONDS = 30
#: Lines of a failed process's output shown in the error.
LOG_TAIL_LINES = 20


class WorkerFailed(RuntimeError):
    """A worker or producer exited, or the run did not finish in time."""


class Child:
    """A started process, its log, and how to stop it."""

    def __init__(
        self, argv: Sequence[str], env: dict[str, str], log: Path, piped: bool = False
    ) -> None:
        self.name = " ".join(Path(arg).name for arg in argv[:2])
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                argv,
                cwd=BENCH_DIR,
                env=env,
                stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
                stdout=subprocess.PIPE if piped else output,
                stderr=output,
                start_new_session=True,  # its own process group, so leftovers can be killed
            )

    @property
    def pid(self) -> int:
        """The process id (the root of its tree, for CPU accounting)."""
        return self.process.pid

    def tail(self) -> str:
        """The last lines of its output, indented."""
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join("    | " + line for line in lines[-LOG_TAIL_LINES:])

    def check(self, progress: str, may_finish: bool = False) -> None:
        """Raise ``WorkerFailed`` if it has exited (a producer may finish, successfully)."""
        code = self.process.poll()
        if code is None or (may_finish and code == 0):
            return
        raise WorkerFailed(f"{self.name} exited with {code} after {progress}:\n{self.tail()}")


class Producer(Child):
    """``apps.submit`` (or ``producer.mjs``) in a handshake mode, its stdin and stdout piped."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: Path) -> None:
        super().__init__(argv, env, log, piped=True)
        self._buffer = b""

    def wait_ready(self, deadline: float) -> None:
        """Wait until it has warmed up."""
        line = self._line(deadline)
        if line != "ready":
            raise WorkerFailed(f"{self.name} said {line!r} instead of 'ready':\n{self.tail()}")

    def go(self) -> None:
        """Let it submit."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def result(self, deadline: float) -> dict[str, Any]:
        """What it reported once done: ``seconds`` and ``cpu_seconds`` of its submits."""
        return dict(json.loads(self._line(deadline)))

    def _line(self, deadline: float) -> str:
        assert self.process.stdout is not None
        stream = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise WorkerFailed(f"{self.name} did not answer in time:\n{self.tail()}")
            readable, _, _ = select.select([stream], [], [], timeout)
            if not readable:
                continue
            chunk = os.read(stream, 4096)
            if not chunk:
                self.process.wait()
                raise WorkerFailed(
                    f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
                )
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode().strip()


def stop(children: Iterable[Child]) -> None:
    """SIGTERM every child still running, wait for them, kill what they left behind."""
    children = list(children)
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"    {child.name} ({child.pid}) ignored SIGTERM; killing it", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # whatever it left behind
        child.process.wait()
        for pipe in (child.process.stdin, child.process.stdout):
            if pipe is not None:
                pipe.close()
