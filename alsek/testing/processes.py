"""Server processes that never outlive the interpreter, loopback ports, and waiting with deadlines.

A test that fails, a ``pytest-timeout`` that calls ``os._exit`` or a SIGKILLed test runner must
not leave servers behind. Two guards do it: every process is started with the kernel's
parent-death signal (Linux), and whatever is still registered at interpreter exit is stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import functools
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

__all__ = [
    "ServerProcess",
    "answers_ping",
    "forget_at_exit",
    "free_port",
    "free_port_with_bus",
    "poll_until",
    "serving_pid",
    "stop_at_exit",
]

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
CLUSTER_BUS_OFFSET = 10000
"""A cluster node listens for its peers on its port + 10000 (both binaries' default)."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on the loopback address ``host`` that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_with_bus(picked: Collection[int] = ()) -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too, neither of
    them a port or bus port of the nodes already ``picked`` (the kernel may hand out a port
    again once its probe socket is closed)."""
    taken = {*picked, *(port + CLUSTER_BUS_OFFSET for port in picked)}
    for _ in range(100):
        port = free_port()
        bus = port + CLUSTER_BUS_OFFSET
        if port in taken or bus in taken:
            continue
        if bus <= 65535 and _bindable(bus):
            return port
    raise RuntimeError("No free port pair (port, port + 10000) found on the loopback interface")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def serving_pid(port: int) -> int | None:
    """The process id the server on ``port`` reports (``INFO server``); ``None`` when it does
    not say (no answer, or it wants a password first)."""
    field = re.compile(rb"process_id:(\d+)\r\n")
    reply = b""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(b"INFO server\r\n")
            while (found := field.search(reply)) is None:
                chunk = sock.recv(4096)
                if not chunk or chunk.startswith(b"-"):
                    return None
                reply += chunk
    except OSError:
        return None
    return int(found.group(1))


def answers_ping(port: int) -> bool:
    """Whether a server on ``port`` answers PING (any reply but a connection error)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def poll_until(
    check: Callable[[], T | None], timeout_seconds: float, what: str, interval: float = 0.01
) -> T:
    """Call ``check`` until it returns something truthy; ``TimeoutError`` naming ``what`` after
    ``timeout_seconds``. Startup and failover waits poll: no fixed sleep fits every machine."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout_seconds} s")
        time.sleep(interval)


class _Startable(Protocol):
    def start(self) -> Any: ...

    def stop(self) -> None: ...


_Started = TypeVar("_Started", bound=_Startable)


class StartsAndStops:
    """``with`` support for servers and proxies: ``start()`` on entry, ``stop()`` on exit."""

    def __enter__(self: _Started) -> _Started:
        self.start()
        return self

    def __exit__(
        self: _Startable,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerProcess:
    """One server process whose output goes to a file; it dies with the interpreter."""

    def __init__(self, args: Sequence[str], output_path: Path) -> None:
        self.args = tuple(args)
        self.output_path = output_path
        self._popen = _LAUNCHER.launch(self.args, output_path)
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        """Process id."""
        return self._popen.pid

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._popen.poll() is None

    def output(self) -> str:
        """What the process printed (start-up errors land here)."""
        try:
            return self.output_path.read_text(errors="replace").strip()
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL and reap: the crash a fault test wants."""
        if self.alive:
            self._popen.kill()
        self._popen.wait()
        _LIVE.discard(self)

    def terminate(self, grace_seconds: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if the process has not exited after ``grace_seconds``."""
        if self.alive:
            self._popen.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=grace_seconds)
        self.kill()


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_LIVE: set[ServerProcess] = set()
_STOP_AT_EXIT: list[_Stoppable] = []


def stop_at_exit(owner: _Stoppable) -> None:
    """Have ``owner.stop()`` run at interpreter exit unless ``forget_at_exit`` came first."""
    if owner not in _STOP_AT_EXIT:
        _STOP_AT_EXIT.append(owner)


def forget_at_exit(owner: _Stoppable) -> None:
    """``owner`` stopped by itself: nothing to do for it at exit."""
    if owner in _STOP_AT_EXIT:
        _STOP_AT_EXIT.remove(owner)


@atexit.register
def _stop_everything() -> None:
    """Kill every process still alive (their data is thrown away: no need to wait for graceful
    shutdowns), then stop their owners, which removes their directories."""
    for process in list(_LIVE):
        process.kill()
    for owner in reversed(list(_STOP_AT_EXIT)):
        try:
            owner.stop()
        except Exception as error:  # exit must go on for the others
            print(f"alsek.testing: stopping {owner!r} at exit failed: {error}", file=sys.stderr)


class _Launcher:
    """Starts every server from one long-lived thread.

    The kernel sends the parent-death signal when the *thread* that forked exits, so a server
    started from a short-lived thread (``asyncio.to_thread``, an executor) would die with that
    thread. This thread lives as long as the interpreter.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[
            tuple[tuple[str, ...], Path, Future[subprocess.Popen[bytes]]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def launch(self, args: tuple[str, ...], output_path: Path) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="alsek-testing-launcher", daemon=True
                )
                self._thread.start()
        launched: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((args, output_path, launched))
        return launched.result()

    def _serve(self) -> None:
        while True:
            args, output_path, launched = self._requests.get()
            try:
                launched.set_result(_popen(args, output_path))
            except BaseException as error:
                launched.set_exception(error)


def _popen(args: tuple[str, ...], output_path: Path) -> subprocess.Popen[bytes]:
    with output_path.open("ab") as output:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for the test runner does not crash the servers
            # under the tests' feet; they are stopped in order instead.
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGKILL the child when its parent dies (else None)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the hook ran
            os._exit(1)

    return hook


_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux, else None (elsewhere only the exit hook guards)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    prctl: Callable[..., int] = libc.prctl
    return prctl


_LAUNCHER = _Launcher()
