"""The harness of the fault tests: a Redis server of the test's own, pools in subprocesses,
producers, and what the tasks recorded.

A ``FaultLab`` owns one throwaway ``redis-server`` (so a test may restart it or kill its
clients without touching any other test), a namespace on it, the producer tasks
(``faultwork.tasks.build``), and every pool subprocess it started. Pools are real: ``alsek``
CLI commands (``cli_pool``) or the pool classes with a short lease (``launched_pool``), each in a
session of its own so that it is killed with all its children, even when the test fails.

The tasks record every attempt in the probe database (see ``faultwork.probe``); ``evidence()``
reads it back as ``Attempt`` records per message.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from faultwork import probe, settings, tasks
from keyspace import Audit, audit

from alsek.admin import Admin
from alsek.core.message import Message
from alsek.core.status import StatusTracker
from alsek.storage.result import ResultStore
from alsek.testing import RedisServer
from tests import polling
from tests.subprocesses import SessionProcess

#: Errors of a Redis that is down or cut off: "not yet" while polling.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ALSEK_COMMAND = str(Path(sys.executable).with_name("alsek"))
#: The suite runs the sizes of the issue; ``ALSEK_FAULTS_QUICK=1`` scales some down (for a quick
#: local run: the figures in ``docs/reliability.md`` come from the full sizes).
QUICK = os.environ.get("ALSEK_FAULTS_QUICK") == "1"
#: Idle waits of CLI pools: short (submits wake them anyway).
CLI_IDLE_OPTIONS = (
    "--consumer_backoff_factor", "100",
    "--consumer_backoff_floor", "100",
    "--consumer_backoff_ceiling", "500",
)  # fmt: skip
#: Redis settings of the restart scenario: every write is on disk before it is acknowledged.
AOF_ARGS = ("--appendonly", "yes", "--appendfsync", "always")


def scaled(full: int, quick: int) -> int:
    """``full``, or ``quick`` under ``ALSEK_FAULTS_QUICK=1``."""
    return quick if QUICK else full


def eventually(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy; a Redis connection error counts as
    "not yet" (some tests cut every connection)."""
    return polling.eventually(check, timeout, what, interval, not_yet=REDIS_DOWN)


# -- processes -------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from "state" on


def session_pids(session: int) -> list[int]:
    """Live processes of a session (a pool and all its children), zombies excluded."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[3]) == session and fields[0] != "Z":
                pids.append(int(entry))
    return sorted(pids)


def rss_kb(pid: int) -> int:
    """Resident memory of one process (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PoolProcess(SessionProcess):
    """A pool subprocess; the fault tests also look at its children and their memory."""

    def pids(self) -> list[int]:
        """Every live process of the pool (main process and children)."""
        return session_pids(self.pid)

    def rss_kb(self) -> int:
        """Resident memory of the pool, children included."""
        return sum(rss_kb(pid) for pid in self.pids())

    def kill(self) -> list[int]:
        """SIGKILL every process of the pool; returns their pids."""
        pids = self.pids()
        self.kill_session()
        return pids

    def output(self, tail: int | None = 3000) -> str:
        """The end of its stdout and stderr, for failure messages."""
        return super().output(tail)


# -- what the tasks recorded -----------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One attempt of one message, as its task recorded it."""

    uuid: str
    pid: int
    at: int
    retries: int
    error: str | None
    kind: str
    ended_at: int | None


class Evidence:
    """Every recorded attempt, by message uuid, in start order."""

    def __init__(self, starts: dict[str, str], ends: dict[str, str]) -> None:
        self.attempts: dict[str, list[Attempt]] = {}
        for key, raw in starts.items():
            uuid = key.partition("|")[0]
            record = json.loads(raw)
            ended = ends.get(key)
            attempt = Attempt(
                uuid=uuid,
                pid=record["pid"],
                at=record["at"],
                retries=record["retries"],
                error=record["error"],
                kind=record["kind"],
                ended_at=int(ended) if ended is not None else None,
            )
            self.attempts.setdefault(uuid, []).append(attempt)
        for attempts in self.attempts.values():
            attempts.sort(key=lambda a: a.at)

    def runs(self, uuid: str) -> int:
        """How many times the task started on ``uuid``."""
        return len(self.attempts.get(uuid, ()))

    def repeated(self) -> dict[str, list[Attempt]]:
        """Messages that started more than once."""
        return {u: a for u, a in self.attempts.items() if len(a) > 1}

    def by(self, field: str) -> dict[Any, int]:
        """Attempts counted by one of their fields (``kind``, ``pid``...)."""
        counts: dict[Any, int] = {}
        for attempts in self.attempts.values():
            for attempt in attempts:
                value = getattr(attempt, field)
                counts[value] = counts.get(value, 0) + 1
        return counts


# -- the lab ---------------------------------------------------------------------------------


class FaultLab:
    """A Redis server, a namespace on it, producers, pools, and the evidence of their runs."""

    queue = settings.QUEUE

    def __init__(self, server: RedisServer, namespace: str, log_dir: Path) -> None:
        self.server = server
        self.namespace = namespace
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.url = server.url
        self.probe_url = server.url.rsplit("/", 1)[0] + "/1"
        self.conn = redis.Redis.from_url(self.url, decode_responses=True)
        self.probe = redis.Redis.from_url(self.probe_url, decode_responses=True)
        self.broker, self.tracker, self.store = tasks.components(self.url, namespace)
        self.tasks = tasks.build(self.broker, self.tracker, self.store)
        self.admin = Admin(self.broker)
        self.pools: list[PoolProcess] = []

    def close(self) -> None:
        """Kill every pool this lab started (with its children) and close its clients."""
        for pool in self.pools:
            pool.kill()
        for conn in (self.conn, self.probe, self.broker.backend.conn):
            conn.close()

    # -- pools ---------------------------------------------------------------------------

    def env(
        self, mechanism: str = "thread", version: int = 1, clock_skew_ms: int = 0
    ) -> dict[str, str]:
        """Environment of a pool: ``faultwork`` importable, its Redis, namespace and probe, the
        release of the tasks it runs, and how far its clock is off."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        env[settings.URL_VAR] = self.url
        env[settings.NAMESPACE_VAR] = self.namespace
        env[settings.MECHANISM_VAR] = mechanism
        env[settings.VERSION_VAR] = str(version)
        env[settings.CLOCK_SKEW_VAR] = str(clock_skew_ms)
        env[probe.URL_VAR] = self.probe_url
        return env

    def spawn(
        self,
        name: str,
        args: list[str],
        mechanism: str = "thread",
        version: int = 1,
        clock_skew_ms: int = 0,
    ) -> PoolProcess:
        """Start a pool subprocess (named ``name-<n>``); it is killed when the lab closes."""
        name = f"{name}-{len(self.pools) + 1}"
        env = self.env(mechanism, version, clock_skew_ms)
        pool = PoolProcess(name, args, env, self.log_dir)
        self.pools.append(pool)
        return pool

    def cli_pool(
        self,
        kind: str,
        capacity: int,
        *options: str,
        log_level: str = "WARNING",
        version: int = 1,
        clock_skew_ms: int = 0,
    ) -> PoolProcess:
        """``alsek thread-pool|process-pool|async-pool`` over the tasks of release ``version``,
        on a host whose clock is ``clock_skew_ms`` off.

        A thread pool gets one process group of ``capacity`` threads; a process pool
        ``capacity`` processes; an async pool ``capacity`` concurrent tasks.
        """
        command, package, capacity_options = {
            "thread": ("thread-pool", "faultwork.tasks", ["--n_threads", str(capacity)]),
            "process": ("process-pool", "faultwork.tasks", ["--n_processes", str(capacity)]),
            "async": ("async-pool", "faultwork.async_tasks", ["--n_tasks", str(capacity)]),
        }[kind]
        if kind == "thread":
            capacity_options += ["--n_processes", "1"]
        args = [ALSEK_COMMAND, command, package, *capacity_options, *CLI_IDLE_OPTIONS]
        args += ["--log-level", log_level, *options]
        mechanism = "process" if kind == "process" else "thread"
        return self.spawn(f"{kind}-pool", args, mechanism, version, clock_skew_ms)

    def launched_pool(
        self, kind: str, capacity: int, lease_ttl: int, grace_period: int = 2_000
    ) -> PoolProcess:
        """A pool built from the pool classes with a lease of ``lease_ttl`` ms."""
        args = [sys.executable, "-m", "faultwork.launch", kind, "--capacity", str(capacity)]
        args += ["--lease-ttl", str(lease_ttl), "--grace-period", str(grace_period)]
        mechanism = "process" if kind == "process" else "thread"
        return self.spawn(f"{kind}-launched", args, mechanism)

    def stop(self, pools: Sequence[PoolProcess], exit_seconds: float) -> None:
        """SIGTERM every pool once it is registered (a pool restarted last may still be
        importing), then check each exits 0 within ``exit_seconds``."""
        eventually(
            lambda: all(pool.pid in self.registered_pids() for pool in pools),
            30.0,
            "every pool registered before it is stopped",
            interval=0.05,
        )
        for pool in pools:
            pool.signal(signal.SIGTERM)
        for pool in pools:
            assert pool.wait(exit_seconds) == 0, pool.output()

    def idle_consumers(self) -> int:
        """Clients blocked waiting for work (an idle pool blocks on its queue's wake list)."""
        return sum(1 for client in self.conn.client_list() if client.get("cmd") == "blpop")

    def registered_pids(self) -> set[int]:
        """Pids of the pools in the worker registry. A pool registers (its first beat) only
        after it installed its stop-signal handlers, so a registered pool stops gracefully."""
        return {worker.pid for worker in self.admin.workers()}

    def wait_until_idle(self, pools: Sequence[PoolProcess], timeout: float = 30.0) -> None:
        """Wait until each of ``pools`` is registered (it can take a SIGTERM) and they are all
        waiting for work. Counting blocked clients alone is not enough: one pool may hold
        several, while a pool restarted last is still importing."""

        def ready() -> bool:
            for pool in pools:
                assert pool.alive, f"{pool.name} exited with {pool.popen.returncode}\n" + (
                    pool.output()
                )
            registered = self.registered_pids()
            if any(pool.pid not in registered for pool in pools):
                return False
            return self.idle_consumers() >= len(pools)

        eventually(ready, timeout, "the pools waiting for work", interval=0.05)

    # -- producing -----------------------------------------------------------------------

    def submit(
        self, task_name: str, args_list: Sequence[Sequence[Any]], batch: int = 1000
    ) -> list[Message]:
        """Submit one message per ``args`` (pipelined batches), with SUBMITTED statuses."""
        task = self.tasks[task_name]
        messages: list[Message] = []
        for start in range(0, len(args_list), batch):
            messages += task.generate_many(args_list=args_list[start : start + batch])
        return messages

    # -- reading back --------------------------------------------------------------------

    def evidence(self) -> Evidence:
        """Every attempt the tasks recorded."""
        return Evidence(self.probe.hgetall(probe.STARTS), self.probe.hgetall(probe.ENDS))

    def live_statuses(self) -> int:
        """Messages of the lab's queue whose status is not terminal yet."""
        return int(self.conn.zcard(f"{self.namespace}:{StatusTracker.get_index_name(self.queue)}"))

    def wait_until_settled(self, timeout: float, what: str = "every message settled") -> float:
        """Wait until every status of the queue is terminal; returns the seconds it took."""
        started = time.monotonic()
        eventually(lambda: self.live_statuses() == 0, timeout, what, interval=0.1)
        return time.monotonic() - started

    def outcomes(self, messages: Sequence[Message]) -> list[tuple[str | None, Any]]:
        """(status name, stored result) of each message, read in pipelined batches."""
        out: list[tuple[str | None, Any]] = []
        for start in range(0, len(messages), 1000):
            chunk = messages[start : start + 1000]
            pipe = self.conn.pipeline(transaction=False)
            for message in chunk:
                pipe.get(f"{self.namespace}:{StatusTracker.get_storage_name(message)}")
                pipe.get(f"{self.namespace}:{ResultStore.get_storage_name(message)}")
            replies = pipe.execute()
            for status, result in zip(replies[::2], replies[1::2]):
                name = json.loads(status)["value"] if status else None
                out.append((name, json.loads(result)["result"] if result else None))
        return out

    def assert_all_succeeded(self, messages: Sequence[Message], results: Sequence[Any]) -> None:
        """Every message SUCCEEDED with its expected result; names the first few that did not."""
        outcomes = self.outcomes(messages)
        wrong = [
            (m.uuid, got, expected)
            for m, got, expected in zip(messages, outcomes, results)
            if got != ("SUCCEEDED", expected)
        ]
        assert not wrong, f"{len(wrong)} messages did not succeed as expected: {wrong[:5]}"

    def audit(self) -> Audit:
        """The hygiene checker over the lab's namespace, plus keys of nobody in db 0."""
        report = audit(self.conn, self.namespace)
        strangers = [
            key
            for key in self.conn.scan_iter(count=1000)
            if not (
                key.startswith(f"{self.namespace}:") or key.startswith(f"lock:{self.namespace}:")
            )
        ]
        report.violations += [f"key outside the namespace: {key!r}" for key in strangers]
        return report

    def assert_hygiene(self, live: int = 0) -> Audit:
        """No violation, and exactly ``live`` live messages."""
        report = self.audit()
        assert not report.violations, "\n".join(report.violations[:20])
        assert len(report.live) == live, f"live messages: {report.live}"
        return report

    def used_memory(self) -> int:
        """Redis ``used_memory`` (bytes)."""
        return int(self.conn.info("memory")["used_memory"])
