"""A subprocess of a test (a worker pool), started in a session of its own so that it can be
killed with its children; its output goes to files (a pipe nobody reads could block it)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class SessionProcess:
    """A subprocess leading a session of its own; ``output()`` shows what it printed."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.monotonic_ns()
        self.stdout_path = log_dir / f"{name}-{stamp}.out"
        self.stderr_path = log_dir / f"{name}-{stamp}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(
                args, env=env, cwd=REPO, stdout=out, stderr=err, start_new_session=True
            )

    @property
    def pid(self) -> int:
        """Pid of the main process (also its session id)."""
        return self.popen.pid

    @property
    def alive(self) -> bool:
        """Whether the main process is still running."""
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the main process only (not its children)."""
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Exit code; fails the test if the process does not exit within ``timeout`` s."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout} s\n{self.output()}"
            ) from None

    def kill_session(self) -> None:
        """SIGKILL the main process and every process of its session."""
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stderr(self) -> str:
        """Everything it wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def output(self, tail: int | None = None) -> str:
        """Its stdout and stderr (the last ``tail`` characters of each), for failure messages."""
        out = self.stdout_path.read_text(errors="replace")
        err = self.stderr()
        if tail is not None:
            out, err = out[-tail:], err[-tail:]
        return f"--- {self.name} stdout ---\n{out}\n--- {self.name} stderr ---\n{err}"
