"""One throwaway ``redis-server`` or ``valkey-server`` process on a loopback port."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from alsek.testing.binaries import Flavour, find_server_binary
from alsek.testing.processes import (
    LOOPBACK,
    ServerProcess,
    StartsAndStops,
    answers_ping,
    forget_at_exit,
    free_port,
    poll_until,
    serving_pid,
    stop_at_exit,
)

__all__ = ["REPLICATION_LINES", "Failover", "RedisServer", "replicas_caught_up"]

REPLICATION_LINES = (
    # Replicas sync at once instead of after the default 5 s wait for more replicas.
    "repl-diskless-sync yes",
    "repl-diskless-sync-delay 0",
)


class RedisServer(StartsAndStops):
    """A server process on ``127.0.0.1`` that lives as long as this object (or until ``stop``).

    Persistence is off unless asked for; the data directory and config file live in a temporary
    directory that ``stop()`` removes.

    Args:
        extra_args: more command-line arguments, e.g. ``("--appendonly", "yes")``; they win
            over the config file.
        port: a fixed port; by default a free one is picked. It is kept across ``restart()``.
        startup_timeout_seconds: how long to wait for the server to answer PING.
        flavour: ``"redis"`` (6.2) or ``"valkey"`` (8.1); see ``find_server_binary``.
        config_lines: more config file lines, e.g. ``("cluster-enabled yes",)``.
        sentinel: run in ``--sentinel`` mode (the config lines then say what to monitor).
    """

    def __init__(
        self,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        startup_timeout_seconds: float = 10.0,
        flavour: Flavour = "redis",
        config_lines: Sequence[str] = (),
        sentinel: bool = False,
    ) -> None:
        self.extra_args = tuple(extra_args)
        self.port = port or free_port()
        self._port_is_ours = port is None
        self.startup_timeout_seconds = startup_timeout_seconds
        self.flavour: Flavour = flavour
        self.binary = find_server_binary(flavour)
        self.config_lines = tuple(config_lines)
        self.sentinel = sentinel
        self._dir: str | None = None
        self._process: ServerProcess | None = None

    def __repr__(self) -> str:
        role = "sentinel" if self.sentinel else "server"
        return f"<RedisServer {self.flavour} {role} port={self.port} running={self.running}>"

    @property
    def host(self) -> str:
        """The address it listens on."""
        return LOOPBACK

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return (LOOPBACK, self.port)

    @property
    def url(self) -> str:
        """``redis://`` URL of the server (db 0)."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def directory(self) -> Path | None:
        """Its data directory while it exists (kept by ``kill``, removed by ``stop``)."""
        return Path(self._dir) if self._dir is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.alive

    @property
    def pid(self) -> int | None:
        """Process id while started."""
        return self._process.pid if self._process is not None else None

    def client(self, decode_responses: bool = True) -> redis.Redis:
        """A direct (non-cluster) client of this one server."""
        return redis.Redis(
            host=LOOPBACK, port=self.port, decode_responses=decode_responses, socket_timeout=5
        )

    def command(self, *args: object, decode: bool = True) -> Any:
        """Run one command through a short-lived direct connection (for harness bookkeeping)."""
        client = self.client(decode_responses=decode)
        execute: Callable[..., Any] = client.execute_command  # untyped in redis-py
        try:
            return execute(*args)
        finally:
            client.close()

    def info(self, section: str) -> dict[str, Any]:
        """One ``INFO`` section, parsed."""
        client = self.client()
        try:
            return dict(client.info(section))
        finally:
            client.close()

    def start(self) -> RedisServer:
        """Start the server and wait until it answers.

        A port picked here can be taken by another process between the pick and the server's
        bind (parallel test workers start servers at once): then a new port is picked, twice
        at most. A port the caller chose is never changed.
        """
        if self.running:
            return self
        for _ in range(2 if self._port_is_ours else 0):
            try:
                return self._start_once()
            except RuntimeError as error:
                if "Address already in use" not in str(error) or self._dir is None:
                    raise
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
                self.port = free_port()
        return self._start_once()

    def _start_once(self) -> RedisServer:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix=f"alsek-{self.flavour}-")
        config = self._write_config(Path(self._dir))
        mode = ("--sentinel",) if self.sentinel else ()
        self._process = ServerProcess(
            (self.binary, str(config), *mode, *self.extra_args),
            Path(self._dir) / "server.out",
        )
        stop_at_exit(self)
        self._wait_until_ready()
        return self

    def _write_config(self, directory: Path) -> Path:
        """The config file: written once, so a restart reads what the server rewrote since."""
        config = directory / "server.conf"
        if not config.exists():
            lines = [
                f"port {self.port}",
                f"bind {LOOPBACK}",
                f"dir {directory}",
                'save ""',
                "appendonly no",
                "daemonize no",
                "loglevel notice",
                f"logfile {directory / 'server.log'}",
                *self.config_lines,
            ]
            config.write_text("\n".join(lines) + "\n")
        return config

    def _wait_until_ready(self) -> None:
        def ready() -> bool:
            if self._process is None or not self._process.alive:
                raise RuntimeError(f"{self.binary} exited at start-up: {self._failure_report()}")
            if not answers_ping(self.port):
                return False
            # Another server may hold the port (ours then exits, failing to bind): only our
            # own process answering counts.
            pid = serving_pid(self.port)
            return pid is None or pid == self._process.pid

        try:
            poll_until(ready, self.startup_timeout_seconds, f"{self!r} answering PING")
        except TimeoutError as error:
            report = self._failure_report()
            self.stop()
            raise TimeoutError(f"{error}: {report}") from None

    def _failure_report(self) -> str:
        """What the process printed and the end of its log, for start-up errors."""
        printed = self._process.output() if self._process is not None else ""
        log = Path(self._dir or ".") / "server.log"
        logged = log.read_text(errors="replace").splitlines()[-10:] if log.exists() else []
        return "\n".join(part for part in (printed, *logged) if part)

    def kill(self) -> None:
        """Stop the process at once (SIGKILL), keeping its data directory for a restart."""
        if self._process is not None:
            self._process.kill()
        self._process = None

    def restart(self) -> None:
        """Kill and start again on the same port and directory (AOF data, if any, is replayed)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        if self._process is not None:
            self._process.terminate()
        self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        forget_at_exit(self)


@dataclass(frozen=True)
class Failover:
    """What a ``kill_master`` did: the node killed, the one that took over, and how long the
    takeover took (from the kill until every live node agreed)."""

    killed: RedisServer
    promoted: RedisServer
    seconds: float


def replicas_caught_up(master: RedisServer, replicas: Sequence[RedisServer]) -> bool:
    """Whether every one of ``replicas`` has applied all that ``master`` wrote so far.

    The replicas' own offsets are compared: the master learns them only from once-a-second acks.
    """
    written = int(master.info("replication")["master_repl_offset"])
    for replica in replicas:
        replication = replica.info("replication")
        if replication.get("master_link_status") != "up":
            return False
        if int(replication.get("slave_repl_offset", -1)) < written:
            return False
    return True
