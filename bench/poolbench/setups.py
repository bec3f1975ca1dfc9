"""What the pool benchmark runs: the apps, their workers, and the rows made of them.

Three kinds of row:

* a pool ``Setup``: workers started through their own command line, over messages queued
  before they start (``backlog``) or submitted one at a time while they run (``trickle``);
* a ``Submitter``: one framework's single submit, one message at a time, each awaited, with no
  worker running;
* a ``LatencyProbe``: a pool at idle, sent one message every 5 to 15 ms, each carrying its
  submit time, so that the task can tell how long it waited to start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from _common import BENCH_DIR

#: The peers' own virtualenv (Dramatiq, taskiq, Celery, matplotlib) and BullMQ's npm folder.
PEERS_VENV = BENCH_DIR / ".venv-peers"
BULLMQ_DIR = BENCH_DIR / "peers" / "bullmq"

#: What an app needs installed: alsek's own environment, ``PEERS_VENV``, or BullMQ's
#: ``node_modules`` (see ``installs``).
ALSEK, PEERS, NODE = "alsek", "peers-venv", "node"

MODES = ("backlog", "trickle")
TASKS = {"noop": "no-op", "sleep_1ms": "1 ms sleep"}
SIZES = ("full", "quick")

#: Messages per run, by mode and size. A trickle run submits one message at a time, so it takes
#: longer per message than a backlog run; fewer messages keep rounds short.
Counts = Mapping[str, Mapping[str, int]]
POOL_COUNTS: Counts = {
    "backlog": {"full": 20_000, "quick": 2_000},
    "trickle": {"full": 5_000, "quick": 500},
}
#: alsek's process pool with ``--max-tasks-per-child 1`` forks a process for every message.
FORK_PER_MESSAGE_COUNTS: Counts = {
    "backlog": {"full": 400, "quick": 100},
    "trickle": {"full": 400, "quick": 100},
}
#: Celery's prefork pool runs a few hundred messages a second, and its backlog is queued
#: one ``apply_async`` at a time.
CELERY_COUNTS: Counts = {
    "backlog": {"full": 5_000, "quick": 1_000},
    "trickle": {"full": 2_000, "quick": 500},
}
SUBMIT_COUNTS = {"full": 5_000, "quick": 1_000}
LATENCY_COUNTS = {"full": 1_000, "quick": 200}

LOG_LEVEL = "WARNING"  # every framework: no per-message log lines


# -- apps and workers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    """A framework's benchmark app: its queue, and the command that submits to it.

    ``producer`` is followed by ``TASK COUNT [--mode ...]`` (the arguments of ``apps.submit``).
    """

    name: str
    producer: tuple[str, ...]
    requires: str = ALSEK


def peers_python() -> Path:
    """The peers' interpreter."""
    return PEERS_VENV / "bin" / "python"


def python_app(module: str, requires: str = ALSEK) -> App:
    """An app module of ``bench/apps`` or ``bench/peers``, run by ``apps.submit``."""
    python = peers_python() if requires == PEERS else Path(sys.executable)
    return App(module, (str(python), "-m", "apps.submit", module), requires)


ALSEK_THREADS = python_app("apps.alsek_threads")
ALSEK_PROCESSES = python_app("apps.alsek_processes")
ALSEK_ASYNC = python_app("apps.alsek_async")
DRAMATIQ = python_app("peers.dramatiq_app", PEERS)
TASKIQ = python_app("peers.taskiq_app", PEERS)
CELERY = python_app("peers.celery_app", PEERS)
BULLMQ = App("peers/bullmq", ("node", str(BULLMQ_DIR / "producer.mjs")), NODE)


@dataclass(frozen=True)
class Worker:
    """One worker process to start: the app it serves and its command line."""

    app: App
    argv: tuple[str, ...]


def alsek_command(*args: str) -> tuple[str, ...]:
    """``alsek ...`` from this interpreter's environment."""
    return (str(Path(sys.executable).with_name("alsek")), *args, "--log-level", LOG_LEVEL)


def peer_command(*args: str) -> tuple[str, ...]:
    """A console script of the peers' virtualenv."""
    return (str(PEERS_VENV / "bin" / args[0]), *args[1:])


THREAD_POOL = Worker(
    ALSEK_THREADS,
    alsek_command("thread-pool", "apps.alsek_threads", "--n_threads", "8", "--n_processes", "1"),
)
#: The thread pool with its Prometheus metrics served (``--metrics-port``, any free port):
#: every run counted by the metrics middleware in the group's process.
THREAD_POOL_METRICS = Worker(ALSEK_THREADS, (*THREAD_POOL.argv, "--metrics-port", "0"))
#: One warm process per CPU, as Celery's prefork pool below (``-c`` = CPUs).
PROCESS_POOL = Worker(
    ALSEK_PROCESSES,
    alsek_command(
        "process-pool", "apps.alsek_processes", "--n_processes", str(os.cpu_count() or 1)
    ),
)
FORK_PER_MESSAGE_POOL = Worker(
    ALSEK_PROCESSES,
    alsek_command(
        "process-pool",
        "apps.alsek_processes",
        "--n_processes",
        str(os.cpu_count() or 1),
        "--max-tasks-per-child",
        "1",
    ),
)
ASYNC_POOL = Worker(ALSEK_ASYNC, alsek_command("async-pool", "apps.alsek_async"))
#: The async pool with its Prometheus metrics served: every run counted on the event loop.
ASYNC_POOL_METRICS = Worker(ALSEK_ASYNC, (*ASYNC_POOL.argv, "--metrics-port", "0"))
DRAMATIQ_WORKER = Worker(
    DRAMATIQ, peer_command("dramatiq", "peers.dramatiq_app", "--processes", "1", "--threads", "8")
)
TASKIQ_WORKER = Worker(
    TASKIQ,
    peer_command(
        "taskiq", "worker", "peers.taskiq_app:broker", "--workers", "1", "--log-level", LOG_LEVEL
    ),
)
#: Celery's prefork pool with one child per CPU (``-c`` = CPUs, its default made explicit).
#: Gossip, mingle and heartbeat are off: worker-to-worker chatter, not message work.
CELERY_WORKER = Worker(
    CELERY,
    peer_command(
        "celery",
        "-A",
        "peers.celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(os.cpu_count() or 1),
        "--loglevel",
        LOG_LEVEL,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ),
)


def bullmq_worker(concurrency: int) -> Worker:
    """One Node process running up to ``concurrency`` BullMQ jobs at once."""
    return Worker(BULLMQ, ("node", str(BULLMQ_DIR / "worker.mjs"), str(concurrency)))


# -- pool rows -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Setup:
    """One pool row: messages for ``workers``' apps, which run them.

    Messages are split evenly over the distinct apps of ``workers`` (two pools of one app
    share its queue).
    """

    name: str
    label: str
    short: str
    workers: tuple[Worker, ...]
    framework: str = "alsek"
    tracking: bool = False
    note: str = ""
    counts: Counts = field(default_factory=lambda: POOL_COUNTS)

    @property
    def apps(self) -> list[App]:
        """The distinct apps messages are submitted to."""
        return list(dict.fromkeys(worker.app for worker in self.workers))

    @property
    def requires(self) -> set[str]:
        """What must be installed for it to run."""
        return {app.requires for app in self.apps}

    def count(self, mode: str, size: str) -> int:
        """Messages per run of ``mode`` at ``size``."""
        return self.counts[mode][size]


#: Two pool processes at once, by ``--machine-wide``. Two async pools use the two cores best:
#: an async pool is one process, while a thread pool is two (the supervising parent and its
#: group of threads), so two thread pools (four processes) or thread + async (three) leave
#: Python processes waiting for a core. The measured alternatives are in ``docs/benchmarks.md``.
MACHINE_WIDE = {
    "async+async": (ASYNC_POOL, ASYNC_POOL),
    "thread+async": (THREAD_POOL, ASYNC_POOL),
    "thread+thread": (THREAD_POOL, THREAD_POOL),
}
DEFAULT_MACHINE_WIDE = "async+async"


def machine_wide(choice: str) -> Setup:
    """The machine-wide row: two pool processes at once, as ``MACHINE_WIDE[choice]``."""
    kinds = " + ".join(f"{kind} pool" for kind in choice.split("+"))
    return Setup(
        "machine",
        f"alsek machine-wide: {kinds} at once",
        f"alsek machine-wide\n({kinds})",
        MACHINE_WIDE[choice],
    )


def bullmq_setup(concurrency: int, compared_with: str) -> Setup:
    """BullMQ at ``concurrency``, the row ``compared_with`` is measured against."""
    return Setup(
        f"bullmq_{concurrency}",
        f"BullMQ, 1 Node process, concurrency {concurrency}",
        f"BullMQ\n(concurrency {concurrency})",
        (bullmq_worker(concurrency),),
        framework="bullmq",
        note=f"compared with {compared_with}",
    )


SETUPS: tuple[Setup, ...] = (
    Setup(
        "thread_off",
        "alsek thread pool, 1 process x 8 threads, status+result off",
        "alsek thread pool",
        (THREAD_POOL,),
    ),
    Setup(
        "thread_on",
        "alsek thread pool, 1 process x 8 threads, status+result on",
        "alsek thread pool,\nstatus+result on",
        (THREAD_POOL,),
        tracking=True,
    ),
    Setup(
        "thread_metrics",
        "alsek thread pool, 1 process x 8 threads, Prometheus metrics on",
        "alsek thread pool,\nmetrics on",
        (THREAD_POOL_METRICS,),
    ),
    Setup(
        "process",
        f"alsek process pool, {os.cpu_count()} warm processes (CPUs)",
        "alsek process pool\n(warm processes)",
        (PROCESS_POOL,),
    ),
    Setup(
        "process_fork",
        f"alsek process pool, {os.cpu_count()} processes, --max-tasks-per-child 1",
        "alsek process pool\n(a process per message)",
        (FORK_PER_MESSAGE_POOL,),
        note="fewer messages: it forks a process for every message",
        counts=FORK_PER_MESSAGE_COUNTS,
    ),
    Setup(
        "async",
        "alsek async pool, 1 process (100 tasks at once)",
        "alsek async pool",
        (ASYNC_POOL,),
    ),
    Setup(
        "async_metrics",
        "alsek async pool, 1 process (100 tasks at once), Prometheus metrics on",
        "alsek async pool,\nmetrics on",
        (ASYNC_POOL_METRICS,),
    ),
    machine_wide(DEFAULT_MACHINE_WIDE),
    Setup(
        "dramatiq",
        "Dramatiq, 1 process x 8 threads, RedisBroker",
        "Dramatiq",
        (DRAMATIQ_WORKER,),
        framework="dramatiq",
    ),
    Setup(
        "taskiq",
        "taskiq + taskiq-redis ListQueueBroker, 1 worker process",
        "taskiq",
        (TASKIQ_WORKER,),
        framework="taskiq",
    ),
    bullmq_setup(8, "the thread pool (1 x 8)"),
    bullmq_setup(100, "the async pool (100 at once)"),
    Setup(
        "celery",
        f"Celery prefork, -c {os.cpu_count()} (CPUs), Redis broker, acks_late, prefetch 1",
        "Celery prefork",
        (CELERY_WORKER,),
        framework="celery",
        note="fewer messages: its backlog is queued one apply_async at a time",
        counts=CELERY_COUNTS,
    ),
)


# -- single submits and latency ------------------------------------------------------------------


@dataclass(frozen=True)
class Submitter:
    """One framework's single submit: ``app``'s ``send``, one message at a time, awaited."""

    name: str
    label: str
    app: App
    framework: str


SUBMITTERS: tuple[Submitter, ...] = (
    Submitter("submit_alsek", "alsek Task.generate (sync)", ALSEK_THREADS, "alsek"),
    Submitter("submit_alsek_async", "alsek AsyncTask.generate (awaited)", ALSEK_ASYNC, "alsek"),
    Submitter("submit_dramatiq", "Dramatiq actor.send", DRAMATIQ, "dramatiq"),
    Submitter("submit_taskiq", "taskiq task.kiq (awaited)", TASKIQ, "taskiq"),
    Submitter("submit_bullmq", "BullMQ queue.add (awaited)", BULLMQ, "bullmq"),
    Submitter("submit_celery", "Celery task.apply_async", CELERY, "celery"),
)


@dataclass(frozen=True)
class LatencyProbe:
    """Submit → start at idle of one pool row's worker (``setup``)."""

    name: str
    label: str
    setup: Setup


def _probe(name: str, setup_name: str, label: str) -> LatencyProbe:
    setup = next(setup for setup in SETUPS if setup.name == setup_name)
    return LatencyProbe(name, label, setup)


LATENCY_PROBES: tuple[LatencyProbe, ...] = (
    _probe("latency_thread", "thread_off", "alsek thread pool, 1 x 8"),
    _probe("latency_async", "async", "alsek async pool"),
    _probe("latency_dramatiq", "dramatiq", "Dramatiq, 1 x 8"),
    _probe("latency_taskiq", "taskiq", "taskiq, 1 worker"),
    _probe("latency_bullmq", "bullmq_8", "BullMQ, concurrency 8"),
    _probe("latency_celery", "celery", "Celery prefork"),
)

#: ``--only`` also takes these, for every row of a kind.
GROUPS = {
    "pools": tuple(setup.name for setup in SETUPS),
    "submits": tuple(submitter.name for submitter in SUBMITTERS),
    "latency": tuple(probe.name for probe in LATENCY_PROBES),
}
