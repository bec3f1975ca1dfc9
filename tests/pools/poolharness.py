"""The harness every pool test body runs on, whatever the pool kind.

A test body talks to a ``Lab``: it builds tasks by function name (``lab.task("flaky", ...)``),
submits messages through them, follows statuses (``lab.follow``), runs a pool of the lab's kind
(``with lab.pool(capacity=2):``) and reads what the tasks recorded (``lab.starts(message)``...).
Producers are always sync; only the pool side depends on the kind.

A pool kind is:

* a work module (``poolwork.sync_work``, ``poolwork.async_work``) with the same function names,
  its ``components(url, namespace)`` and ``build_task(function_name, broker, **options)``;
* in ``poolwork.pools``: its mechanism, its work module, and how ``build_pool``/``serve`` build
  and run it;
* a ``PoolKind`` in ``KINDS``: how tests get the task the pool runs (``worker_task``), how they
  run a pool in this process (``start``), its CLI options, and what it ``lacks`` (a test body
  marked ``@pytest.mark.needs(ability)`` is skipped, with the kind's reason, for a kind lacking
  that ability).

Every test body runs for every kind. The async kind builds its tasks, components and pool
inside the event loop of the pool's thread, swapping the lab's sync tracker and store for async
twins in the same namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poolwork import async_work, pools, probe, sync_work

from alsek.core.backoff import ConstantBackoff
from alsek.core.message import Message
from alsek.core.status import TaskStatus
from tests.polling import eventually
from tests.subprocesses import SessionProcess

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ALSEK_COMMAND = str(Path(sys.executable).with_name("alsek"))

#: Idle wait of in-process pools: short, so that a stop is noticed within ~100 ms.
#: The timeout of the tests' tasks that must be stopped (ms): long enough for the task to
#: record its start on a loaded machine before the stop comes, short against their 30 s run.
STOP_AFTER_MS = 1_500
IDLE_BACKOFF = ConstantBackoff(100, floor=0, ceiling=100, zero_override=False)
#: Consumer backoff options for CLI pools, with the same purpose.
CLI_IDLE_OPTIONS = (
    "--consumer_backoff_factor", "100",
    "--consumer_backoff_floor", "100",
    "--consumer_backoff_ceiling", "200",
)  # fmt: skip
#: Options of every pool command (SPEC §17), plus our grace period.
COMMON_CLI_OPTIONS = (
    "--queues",
    "--task_specific_mode",
    "--consumer_backoff_factor",
    "--consumer_backoff_floor",
    "--consumer_backoff_ceiling",
    "--log-level",
    "--grace_period",
)


# -- pools running in this process ------------------------------------------------------------


class ThreadedPool:
    """A pool built in the main thread (it installs the signal handlers) and run in a thread."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="pool-under-test", daemon=True)

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as error:  # the test asserts there was none
            self.error = error

    def _serve(self) -> None:
        self.pool.run()

    def start(self) -> ThreadedPool:
        self.thread.start()
        return self

    @property
    def alive(self) -> bool:
        """Whether ``run()`` is still going."""
        return self.thread.is_alive()

    def stop(self, timeout: float = 20.0) -> None:
        """Signal a stop, wait for the graceful shutdown, and check that ``run()`` did not fail."""
        self.pool.stop_signal.exit_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the pool did not stop"
        assert self.error is None, f"the pool's run() raised {self.error!r}"


@dataclass(frozen=True)
class AsyncRecipe:
    """What the async kind needs to build the twin of a producer task inside the pool's loop."""

    function_name: str
    options: dict[str, Any]  # the producer's, without its sync status tracker and result store
    tracked: bool
    stored: bool

    def build(self, broker: Any, tracker: Any, store: Any) -> Any:
        """The ``async_work`` task, with the pool's async tracker and store where the producer
        had the lab's."""
        return async_work.build_task(
            self.function_name,
            broker,
            status_tracker=tracker if self.tracked else None,
            result_store=store if self.stored else None,
            **self.options,
        )


class LoopPool(ThreadedPool):
    """An async pool whose tasks, components and pool are built inside the event loop of its
    thread (asyncio clients and futures belong to one loop), then run on it."""

    def __init__(
        self, lab: Lab, recipes: list[AsyncRecipe], capacity: int, options: dict[str, Any]
    ) -> None:
        super().__init__(pool=None)
        self.lab, self.recipes, self.capacity, self.options = lab, recipes, capacity, options
        self._built = threading.Event()

    def _serve(self) -> None:
        try:
            asyncio.run(self._build_and_run())
        finally:
            self._built.set()  # also when building failed

    async def _build_and_run(self) -> None:
        broker, tracker, store = async_work.components(self.lab.url, self.lab.namespace)
        for middleware in self.lab.pool_middleware:
            broker.add_middleware(middleware)
        try:
            tasks = [recipe.build(broker, tracker, store) for recipe in self.recipes]
            self.pool = pools.build_pool("async", tasks, self.capacity, **self.options)
            self._built.set()
            await self.pool.run()
        finally:
            await broker.backend.conn.aclose()
            await probe.close_async_client()

    def start(self, timeout: float = 10.0) -> LoopPool:
        """Start the loop; returns once the pool is built (re-raising what stopped that)."""
        super().start()
        assert self._built.wait(timeout), "the async pool was not built"
        if self.error is not None:
            raise self.error
        return self


@dataclass(frozen=True)
class PoolKind:
    """One kind of pool: how tests build its tasks, run it, and call its CLI command.

    Args:
        name: ``"thread"``, ``"process"`` or ``"async"`` (the ``pools``/``poolwork.cli`` kind).
        command: its ``alsek`` command.
        options: the command's own §17 options.
        capacity_option: the command's option for how many messages run at once.
        fixed_options: options that make ``capacity_option`` the whole capacity.
        lacks: abilities this kind does not have, with the reason; test bodies marked
            ``@pytest.mark.needs(ability)`` are skipped for it with that reason.
    """

    name: str
    command: str
    options: tuple[str, ...]
    capacity_option: str
    fixed_options: tuple[str, ...] = ()
    lacks: Mapping[str, str] = field(default_factory=dict)

    @property
    def mechanism(self) -> str:
        """The ``mechanism`` of the tasks this kind serves."""
        return pools.MECHANISMS[self.name]

    def worker_task(self, function_name: str, options: dict[str, Any], producer: Any) -> Any:
        """The task the pool runs for ``producer`` (a sync kind runs the producer's own)."""
        return producer

    def start(self, lab: Lab, capacity: int, options: dict[str, Any]) -> ThreadedPool:
        """Build a pool over ``lab``'s worker tasks and run it in a background thread."""
        pool = pools.build_pool(self.name, lab.worker_tasks, capacity, **options)
        return ThreadedPool(pool).start()

    def cli_capacity(self, capacity: int) -> list[str]:
        """CLI options giving the pool ``capacity`` slots."""
        return [self.capacity_option, str(capacity), *self.fixed_options]


class AsyncPoolKind(PoolKind):
    """The async pool: its tasks are ``async_work`` twins of the producers, built in its loop."""

    def worker_task(self, function_name: str, options: dict[str, Any], producer: Any) -> Any:
        """A recipe for the async twin of ``producer`` (built by ``start``, in the loop)."""
        own = {k: v for k, v in options.items() if k not in ("status_tracker", "result_store")}
        tracked, stored = (options.get(k) is not None for k in ("status_tracker", "result_store"))
        return AsyncRecipe(function_name, own, tracked, stored)

    def start(self, lab: Lab, capacity: int, options: dict[str, Any]) -> ThreadedPool:
        """Run an event loop in a background thread, and build and run the pool on it."""
        return LoopPool(lab, lab.worker_tasks, capacity, options).start()


KINDS = {
    "thread": PoolKind(
        name="thread",
        command="thread-pool",
        options=(
            "--n_threads",
            "--n_processes",
            "--n_process_floor",
            "--slot_wait_interval",
            "--complete_only_on_thread_exit",
        ),
        capacity_option="--n_threads",
        fixed_options=("--n_processes", "1"),
        lacks={
            "repeated_stops": "a thread is stopped by one exception raised into it; a task "
            "that catches it runs on (Python has no other way to stop a thread)",
        },
    ),
    "process": PoolKind(
        name="process",
        command="process-pool",
        options=(
            "--n_processes",
            "--max-tasks-per-child",
            "--prune_interval",
            "--slot_wait_interval",
        ),
        capacity_option="--n_processes",
    ),
    "async": AsyncPoolKind(
        name="async",
        command="async-pool",
        options=("--n_tasks", "--prune_interval_seconds", "--slot_wait_interval"),
        capacity_option="--n_tasks",
        lacks={
            "crash_isolation": "its tasks run on the pool's own event loop, so a task that "
            "kills its process (os._exit) kills the pool",
        },
    ),
}


# -- statuses -------------------------------------------------------------------------------------


class StatusLog:
    """Every status of one message with the (monotonic) time it arrived, from a listener
    started before anything runs (it first gets the current status)."""

    def __init__(self, tracker: Any, message: Message, timeout: float = 5.0) -> None:
        self.message = message
        self.updates: list[tuple[float, TaskStatus]] = []
        self._first = threading.Event()
        self._iterator = tracker.listen_to_updates(message)
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        assert self._first.wait(timeout), f"no current status for {message.summary}"

    def _listen(self) -> None:
        for update in self._iterator:
            self.updates.append((time.monotonic(), update.value))
            self._first.set()

    @property
    def statuses(self) -> list[TaskStatus]:
        """The statuses so far, in order."""
        return [status for _, status in self.updates]

    def wait(self, timeout: float = 20.0) -> list[TaskStatus]:
        """Wait for a terminal status; returns every status."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), (
            f"{self.message.summary} reached no terminal status in {timeout} s: {self.statuses}"
        )
        return self.statuses

    def times(self, status: TaskStatus) -> list[float]:
        """When each ``status`` update arrived."""
        return [at for at, value in self.updates if value is status]


def is_lifecycle(statuses: list[TaskStatus]) -> bool:
    """SUBMITTED, RUNNING, [RETRYING, RUNNING]*, then SUCCEEDED or FAILED."""
    names = [status.name for status in statuses]
    if len(names) < 3 or names[:2] != ["SUBMITTED", "RUNNING"]:
        return False
    middle, last = names[2:-1], names[-1]
    pairs_ok = middle == ["RETRYING", "RUNNING"] * (len(middle) // 2)
    return pairs_ok and last in ("SUCCEEDED", "FAILED")


# -- the lab -------------------------------------------------------------------------------------


class Lab:
    """Broker, tracker and store in a test's namespace, the tasks of one test, and its pools."""

    queue = "pools"

    def __init__(self, kind: PoolKind, url: str, namespace: str, log_dir: Path) -> None:
        self.kind = kind
        self.url = url
        self.namespace = namespace
        self.log_dir = log_dir
        self.broker, self.tracker, self.store = sync_work.components(url, namespace)
        self.worker_tasks: list[Any] = []
        self.spawned: list[PoolProcess] = []
        #: What an async pool's own broker gets (the other kinds run on the lab's broker).
        self.pool_middleware: list[Any] = []

    def close(self) -> None:
        """Kill every pool subprocess (with its children) and close the lab's connections."""
        for process in self.spawned:
            process.kill_session()
        self.broker.backend.conn.close()

    def task(self, function_name: str, **options: Any) -> Any:
        """A producer task for ``poolwork`` function ``function_name``; the pools run it.

        Defaults: this lab's queue, the kind's mechanism, its tracker and store, no retries.
        """
        options = {
            "queue": self.queue,
            "mechanism": self.kind.mechanism,
            "status_tracker": self.tracker,
            "result_store": self.store,
            "max_retries": 0,
            "backoff": None,
            **options,
        }
        producer = sync_work.build_task(function_name, self.broker, **options)
        self.worker_tasks.append(self.kind.worker_task(function_name, options, producer))
        return producer

    def use_middleware(self, middleware: Any, async_middleware: Any = None) -> None:
        """Add ``middleware`` to the lab's broker (the producers', and the sync pools'); an
        async pool's broker gets ``async_middleware`` (default: ``middleware``, run inline)."""
        self.broker.add_middleware(middleware)
        self.pool_middleware.append(async_middleware or middleware)

    @contextmanager
    def pool(self, capacity: int = 2, **options: Any) -> Iterator[ThreadedPool]:
        """Run a pool of this lab's kind over the lab's tasks for the ``with`` block."""
        options = {"backoff": IDLE_BACKOFF, "grace_period": 2_000, **options}
        running = self.kind.start(self, capacity, options)
        try:
            yield running
        finally:
            running.stop()

    # -- pools in subprocesses ----------------------------------------------------------------

    def served(self) -> dict[str, Any]:
        """Producer tasks (sync) for what subprocess pools serve (``poolwork.cli``), by name."""
        return pools.served_tasks(sync_work, self.kind.name, self.broker, self.tracker, self.store)

    def spawn(self, args: list[str]) -> PoolProcess:
        """Start ``args`` (a pool) as a subprocess, killed with its children at the end."""
        env = subprocess_env(self.kind, self.url, self.namespace)
        process = PoolProcess(args, env, self.log_dir)
        self.spawned.append(process)
        return process

    def cli(self, *args: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``alsek <kind>-pool ARGS`` to completion (``path``: also importable)."""
        env = subprocess_env(self.kind, self.url, self.namespace)
        if path is not None:
            env["PYTHONPATH"] = os.pathsep.join((str(path), env["PYTHONPATH"]))
        return subprocess.run(
            [ALSEK_COMMAND, self.kind.command, *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def cli_pool(self, capacity: int, *options: str) -> PoolProcess:
        """``alsek <kind>-pool poolwork.cli`` with ``capacity`` slots and ``options``."""
        args = [ALSEK_COMMAND, self.kind.command, "poolwork.cli", *self.kind.cli_capacity(capacity)]
        return self.spawn([*args, *CLI_IDLE_OPTIONS, *options])

    def launched_pool(
        self,
        capacity: int,
        lease_ttl: int,
        grace_period: int | None = None,
        start_method: str | None = None,
    ) -> PoolProcess:
        """A pool over ``poolwork.cli`` built directly, with ``lease_ttl`` (ms) and, when
        given, ``grace_period`` (ms; else ``poolwork.launch``'s) and the ``multiprocessing``
        ``start_method``."""
        launcher = [sys.executable, "-m", "poolwork.launch"]
        options = ["--capacity", str(capacity), "--lease-ttl", str(lease_ttl)]
        if grace_period is not None:
            options += ["--grace-period", str(grace_period)]
        if start_method is not None:
            options += ["--start-method", start_method]
        return self.spawn([*launcher, *options])

    def follow(self, message: Message) -> StatusLog:
        """Start recording the statuses of ``message``."""
        return StatusLog(self.tracker, message)

    # -- what the tasks recorded ------------------------------------------------------------

    def _count(self, name: str, message: Message) -> int:
        return int(probe.client().get(probe.key(name, message.uuid)) or 0)

    def starts(self, message: Message) -> int:
        """How many times the task started on ``message``."""
        return self._count("starts", message)

    def done(self, message: Message) -> int:
        """How many times the task returned normally on ``message``."""
        return self._count("done", message)

    def order(self) -> list[str]:
        """Message uuids in the order their runs started."""
        return list(probe.client().lrange(probe.key("order"), 0, -1))

    def attempts(self, message: Message) -> list[dict[str, Any]]:
        """One record per start of ``message`` (retries, recorded error, pid, time)."""
        raw = probe.client().lrange(probe.key("attempts", message.uuid), 0, -1)
        return [json.loads(item) for item in raw]

    def last_beat(self, message: Message) -> int | None:
        """Wall-clock ms of the last heartbeat of a long task."""
        value = probe.client().get(probe.key("beat", message.uuid))
        return None if value is None else int(value)

    def hook(self, hook: str, message: Message) -> str | None:
        """The exception name a hook recorded for ``message`` (``"-"``: none)."""
        return probe.client().get(probe.key("hook", hook, message.uuid))

    def dead_letters(self, queue: str | None = None) -> dict[str, Any]:
        """The dead-letter queue of ``queue`` (default: the lab's), by uuid."""
        return {dead.uuid: dead for dead in self.broker.dlq_list(queue or self.queue)}

    def wait_until_stopped_beating(self, message: Message, quiet_ms: int = 300) -> int:
        """Wait until ``message``'s heartbeat is ``quiet_ms`` old; returns the last beat."""

        def quiet() -> int | None:
            last = self.last_beat(message)
            if last is not None and probe.now_ms() - last >= quiet_ms:
                return last
            return None

        return int(eventually(quiet, timeout=10, what=f"{message.summary} stopped"))


# -- pools in subprocesses --------------------------------------------------------------------


def subprocess_env(kind: PoolKind, url: str, namespace: str) -> dict[str, str]:
    """Environment of a pool subprocess: ``poolwork`` importable, probe and kind set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env[probe.URL_VAR] = url
    env[probe.NAMESPACE_VAR] = namespace
    env[pools.KIND_VAR] = kind.name
    return env


class PoolProcess(SessionProcess):
    """A pool subprocess of the pool tests (its files are named ``pool-*``)."""

    def __init__(self, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        super().__init__("pool", args, env, log_dir)
