"""Pool benchmark (``make bench-pools``): alsek's worker pools end to end, beside their peers.

Every row is a worker started through its own CLI, in a subprocess, as a user would start it,
over messages queued beforehand on the run's Redis (a throwaway ``redis-server``, or
``ALSEK_BENCH_REDIS_URL``):

* alsek thread pool, 1 process x 8 threads, status tracking and result store off, then on;
* alsek process pool (default sizes: a process per message, so fewer messages);
* alsek async pool (1 process, default 100 tasks at once);
* alsek machine-wide: two pool processes at once, by default two async pools on one queue
  (``--machine-wide``; see ``MACHINE_WIDE``);
* Dramatiq, 1 process x 8 threads, Redis broker; taskiq with taskiq-redis's ``ListQueueBroker``,
  1 worker process. Both are installed from PyPI into ``bench/.venv-peers`` (created on the first
  run, with matplotlib for the chart), never into alsek's environment.

Two tasks: a no-op and a 1 ms sleep (``time.sleep`` / ``asyncio.sleep``). A task ends with
``apps.completions.done()``, which counts it in the process; the process writes its count to
Redis every 50 ms. The figure is messages per second from the first finished message to the
last (worker start-up excluded; it is reported beside it). Rows take turns round after round,
so that a slow spell of a shared machine hits them alike; the best round is reported, the
median beside it. Worker and Redis CPU (from ``/proc`` and ``INFO cpu``) and Redis commands
per message (``INFO commandstats``) say where the time went.

A full run writes ``bench/results/pools.json``, ``docs/benchmarks.png`` and the figures in
``docs/benchmarks.md``; ``--quick`` (2,000 messages, one round) and ``--only`` write the JSON only.

    .venv/bin/python bench/pools.py [--quick] [--rounds N] [--only NAME] [--json PATH]
                                    [--machine-wide async+async|thread+async|thread+thread]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis
from _common import (
    BENCH_DIR,
    RESULTS_DIR,
    Bench,
    BenchRedis,
    Row,
    Target,
    bench_redis,
    environment,
    ratio_row,
    skipped,
)
from apps import completions, settings

REPO = BENCH_DIR.parent
DOCS_PAGE = REPO / "docs" / "benchmarks.md"
CHART = REPO / "docs" / "benchmarks.png"
#: The figures in ``DOCS_PAGE`` sit between these two lines; the prose around them is kept.
DOCS_BEGIN = "<!-- pools.py: figures begin -->"
DOCS_END = "<!-- pools.py: figures end -->"

#: The peers' own virtualenv, and what goes into it.
PEERS_VENV = BENCH_DIR / ".venv-peers"
PEER_REQUIREMENTS = ("dramatiq[redis]", "taskiq", "taskiq-redis", "matplotlib")
PEER_DISTRIBUTIONS = ("dramatiq", "taskiq", "taskiq-redis", "redis", "matplotlib")

#: Messages per run (the process pool runs ``PROCESS_POOL_COUNTS``: it forks one per message).
COUNTS = {"full": 20_000, "quick": 2_000}
PROCESS_POOL_COUNTS = {"full": 400, "quick": 100}
ROUNDS = {"full": 3, "quick": 1}
TASKS = {"noop": "no-op", "sleep_1ms": "1 ms sleep"}

#: How often the benchmark reads the completion tally (the figures come from the tasks' own
#: clock readings, so this only decides how soon a finished run is noticed).
POLL_SECONDS = 0.02
#: A run that has not finished by ``BASE_TIMEOUT_SECONDS + messages / SLOWEST_RATE`` failed.
BASE_TIMEOUT_SECONDS = 60
SLOWEST_RATE = 50
#: Time a worker gets to exit after SIGTERM before the benchmark kills its process group.
STOP_TIMEOUT_SECONDS = 30
#: Lines of a failed worker's output shown in the error.
LOG_TAIL_LINES = 20

LOG_LEVEL = "WARNING"  # every framework: no per-message log lines


# -- what runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Worker:
    """One worker process to start: the app module it serves and its command line."""

    module: str
    argv: tuple[str, ...]
    peer: bool = False


@dataclass(frozen=True, eq=False)
class Setup:
    """One row of the table: messages queued for ``workers``' apps, which then run them.

    Messages are split evenly over the distinct app modules of ``workers`` (two pools of one
    app share its queue).
    """

    name: str
    label: str
    short: str
    workers: tuple[Worker, ...]
    framework: str = "alsek"
    tracking: bool = False
    note: str = ""
    counts: dict[str, int] = field(default_factory=lambda: COUNTS)

    @property
    def peer(self) -> bool:
        """Whether it runs from the peers' virtualenv."""
        return any(worker.peer for worker in self.workers)

    @property
    def modules(self) -> list[str]:
        """The distinct app modules messages are queued for."""
        return list(dict.fromkeys(worker.module for worker in self.workers))


def alsek_command(*args: str) -> tuple[str, ...]:
    """``alsek ...`` from this interpreter's environment."""
    return (str(Path(sys.executable).with_name("alsek")), *args, "--log-level", LOG_LEVEL)


def peer_command(*args: str) -> tuple[str, ...]:
    """A console script of the peers' virtualenv."""
    return (str(PEERS_VENV / "bin" / args[0]), *args[1:])


THREAD_POOL = Worker(
    "apps.alsek_threads",
    alsek_command("thread-pool", "apps.alsek_threads", "--n_threads", "8", "--n_processes", "1"),
)
ASYNC_POOL = Worker("apps.alsek_async", alsek_command("async-pool", "apps.alsek_async"))
#: Two pool processes at once, by ``--machine-wide``. Two async pools use the two cores best:
#: an async pool is one process, while a thread pool is two (the claiming parent and its group of
#: threads), so two thread pools (four processes) or thread + async (three) leave Python
#: processes waiting for a core. The measured alternatives are in ``docs/benchmarks.md``.
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
        "process",
        "alsek process pool (defaults: CPUs - 1 processes, one fork per message)",
        "alsek process pool\n(a fork per message)",
        (Worker("apps.alsek_processes", alsek_command("process-pool", "apps.alsek_processes")),),
        note="fewer messages: it forks a process for every message",
        counts=PROCESS_POOL_COUNTS,
    ),
    Setup(
        "async",
        "alsek async pool, 1 process (100 tasks at once)",
        "alsek async pool",
        (ASYNC_POOL,),
    ),
    machine_wide(DEFAULT_MACHINE_WIDE),
    Setup(
        "dramatiq",
        "Dramatiq, 1 process x 8 threads, RedisBroker",
        "Dramatiq",
        (
            Worker(
                "peers.dramatiq_app",
                peer_command(
                    "dramatiq", "peers.dramatiq_app", "--processes", "1", "--threads", "8"
                ),
                peer=True,
            ),
        ),
        framework="dramatiq",
    ),
    Setup(
        "taskiq",
        "taskiq + taskiq-redis ListQueueBroker, 1 worker process",
        "taskiq",
        (
            Worker(
                "peers.taskiq_app",
                peer_command(
                    "taskiq",
                    "worker",
                    "peers.taskiq_app:broker",
                    "--workers",
                    "1",
                    "--log-level",
                    LOG_LEVEL,
                ),
                peer=True,
            ),
        ),
        framework="taskiq",
    ),
)
SETUPS_BY_NAME = {setup.name: setup for setup in SETUPS}


# -- the peers' virtualenv ---------------------------------------------------------------------


def peers_python() -> Path:
    """The peers' interpreter."""
    return PEERS_VENV / "bin" / "python"


def ensure_peers_venv() -> str | None:
    """Create and fill ``PEERS_VENV`` unless it is ready; returns why it cannot be, or None."""
    stamp = PEERS_VENV / ".installed"
    wanted = "\n".join(PEER_REQUIREMENTS)
    if peers_python().exists() and stamp.exists() and stamp.read_text() == wanted:
        return None
    print(f"... installing {', '.join(PEER_REQUIREMENTS)} into {PEERS_VENV}", file=sys.stderr)
    try:
        if not peers_python().exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run(
            [str(peers_python()), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        return f"could not set up {PEERS_VENV.name}: {error}"
    stamp.write_text(wanted)
    return None


def peer_versions() -> dict[str, str]:
    """Installed versions of the peers' distributions."""
    script = (
        "import json, importlib.metadata as m\n"
        f"print(json.dumps({{d: m.version(d) for d in {list(PEER_DISTRIBUTIONS)!r}}}))"
    )
    try:
        result = subprocess.run(
            [str(peers_python()), "-c", script], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return {}
    return dict(json.loads(result.stdout))


# -- measuring one run -------------------------------------------------------------------------


def _tree_cpu_seconds(root: int) -> float:
    """CPU time of ``root`` and every descendant, including children they have reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    total = 0
    for pid in times:
        ancestor = pid
        while ancestor > 1 and ancestor != root:
            ancestor = parents.get(ancestor, 0)
        if ancestor == root:
            total += times[pid]
    return total / ticks


def cpu_seconds(roots: Sequence[int]) -> float:
    """CPU time of the process trees under ``roots``."""
    return sum(_tree_cpu_seconds(root) for root in roots)


def redis_cpu_seconds(conn: redis.Redis) -> float:
    """CPU time the Redis server has used."""
    cpu = conn.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def command_stats(conn: redis.Redis) -> tuple[int, int]:
    """``(calls, usec)`` of every command since the stats were reset (INFO/CONFIG excluded)."""
    stats = conn.info("commandstats")
    measured = {k: v for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config")}
    return (
        sum(int(v["calls"]) for v in measured.values()),
        sum(int(v["usec"]) for v in measured.values()),
    )


@dataclass
class Run:
    """One run of one setup over one task: when messages finished, and what it cost."""

    count: int
    launched: float
    first: float
    last: float
    worker_cpu_seconds: float
    redis_cpu_seconds: float
    cpu_window_seconds: float
    redis_calls: int
    redis_usec: int

    @property
    def rate(self) -> float:
        """Messages per second between the first finished message and the last."""
        return (self.count - 1) / (self.last - self.first) if self.last > self.first else 0.0

    @property
    def rate_with_startup(self) -> float:
        """Messages per second from the worker's launch to the last finished message."""
        return self.count / (self.last - self.launched)

    @property
    def startup_seconds(self) -> float:
        """From the launch to the first finished message."""
        return self.first - self.launched

    def costs(self) -> dict[str, float]:
        """Cores busy while messages ran, and Redis work per message."""
        window = self.cpu_window_seconds or 1.0
        return {
            "worker_cores": round(self.worker_cpu_seconds / window, 2),
            "redis_cores": round(self.redis_cpu_seconds / window, 2),
            "redis_commands_per_msg": round(self.redis_calls / self.count, 2),
            "redis_usec_per_msg": round(self.redis_usec / self.count, 1),
        }


class WorkerFailed(RuntimeError):
    """A worker exited, or did not finish its messages in time."""


class Runner:
    """Runs setups on the benchmark's Redis."""

    def __init__(self, server: BenchRedis, namespace: str, scratch: Path) -> None:
        self.server = server
        self.conn = redis.Redis.from_url(server.url)
        self.namespace = namespace
        self.scratch = scratch

    def env(self, setup: Setup) -> dict[str, str]:
        """The environment of the submitters and workers of ``setup``."""
        path = [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
        env[settings.URL_VAR] = self.server.url
        env[settings.NAMESPACE_VAR] = self.namespace
        env.pop(settings.TRACKING_VAR, None)
        if setup.tracking:
            env[settings.TRACKING_VAR] = "1"
        return env

    def submit(self, setup: Setup, task: str, count: int) -> None:
        """Queue ``count`` messages, split over the setup's apps (untimed)."""
        python = str(peers_python() if setup.peer else sys.executable)
        modules = setup.modules
        for index, module in enumerate(modules):
            share = count // len(modules) + (index < count % len(modules))
            subprocess.run(
                [python, "-m", "apps.submit", module, task, str(share)],
                cwd=BENCH_DIR,
                env=self.env(setup),
                check=True,
            )

    def run(self, setup: Setup, task: str, count: int) -> Run:
        """Queue ``count`` messages, start the workers, time them, stop them with SIGTERM."""
        with Bench(self.server, quick=False).namespace("pools"):
            completions.reset(self.conn, self.namespace)
            self.submit(setup, task, count)
            self.conn.config_resetstat()
            logs = [
                self.scratch / f"{setup.name}-{task}-{i}.log" for i in range(len(setup.workers))
            ]
            launched = time.time()
            processes = [
                self._start(worker, setup, log) for worker, log in zip(setup.workers, logs)
            ]
            try:
                return self._wait(processes, logs, count, launched)
            finally:
                self._stop(processes)

    def _start(self, worker: Worker, setup: Setup, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as output:
            return subprocess.Popen(
                worker.argv,
                cwd=BENCH_DIR,
                env=self.env(setup),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so leftovers can be killed
            )

    def _wait(
        self,
        processes: list[subprocess.Popen[bytes]],
        logs: list[Path],
        count: int,
        launched: float,
    ) -> Run:
        deadline = time.monotonic() + BASE_TIMEOUT_SECONDS + count / SLOWEST_RATE
        pids = [process.pid for process in processes]
        window_start: tuple[float, float, float] | None = None
        while True:
            done, first, last = completions.read(self.conn, self.namespace)
            if done and window_start is None:
                window_start = (time.monotonic(), cpu_seconds(pids), redis_cpu_seconds(self.conn))
            if done >= count and first is not None and last is not None:
                break
            for process, log in zip(processes, logs):
                if process.poll() is not None:
                    raise WorkerFailed(
                        f"{Path(str(process.args[0])).name} exited with {process.returncode} after "
                        f"{done} of {count} messages:\n{_tail(log)}"
                    )
            if time.monotonic() > deadline:
                raise WorkerFailed(
                    f"only {done} of {count} messages done in time:\n{_tail(logs[0])}"
                )
            time.sleep(POLL_SECONDS)
        assert window_start is not None
        calls, usec = command_stats(self.conn)
        return Run(
            count=count,
            launched=launched,
            first=first,
            last=last,
            worker_cpu_seconds=cpu_seconds(pids) - window_start[1],
            redis_cpu_seconds=redis_cpu_seconds(self.conn) - window_start[2],
            cpu_window_seconds=time.monotonic() - window_start[0],
            redis_calls=calls,
            redis_usec=usec,
        )

    @staticmethod
    def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                print(f"    {process.pid} ignored SIGTERM; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # whatever it left behind
            process.wait()


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join("    | " + line for line in lines[-LOG_TAIL_LINES:])


# -- rounds, rows and targets --------------------------------------------------------------------


@dataclass
class Figure:
    """The runs of one setup over one task, and the row they make."""

    setup: Setup
    task: str
    count: int
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    @property
    def best(self) -> Run | None:
        """The fastest run (other processes only ever slow a run down)."""
        return max(self.runs, key=lambda run: run.rate) if self.runs else None

    def row(self) -> Row:
        """The table row: best rate, with every round's rate kept."""
        name = f"{self.setup.label} | {TASKS[self.task]}"
        best = self.best
        if best is None:
            return skipped(name, "msg/s", None, self.error or "not run")
        samples = [round(run.rate, 1) for run in self.runs]
        note = f"{self.count:,} messages" + (f"; {self.setup.note}" if self.setup.note else "")
        return Row(name, round(best.rate, 1), "msg/s", None, note=note, samples=samples)

    def as_dict(self) -> dict[str, Any]:
        """Everything measured, for the JSON."""
        best = self.best
        return {
            "setup": self.setup.name,
            "label": self.setup.label,
            "short_label": self.setup.short,
            "framework": self.setup.framework,
            "task": self.task,
            "messages": self.count,
            "msgs_per_s": round(best.rate, 1) if best else None,
            "median_msgs_per_s": round(statistics.median(r.rate for r in self.runs), 1)
            if self.runs
            else None,
            "msgs_per_s_with_startup": round(best.rate_with_startup, 1) if best else None,
            "startup_seconds": round(best.startup_seconds, 3) if best else None,
            "costs": best.costs() if best else None,
            "rounds": [
                {
                    "msgs_per_s": round(run.rate, 1),
                    "startup_seconds": round(run.startup_seconds, 3),
                    **run.costs(),
                    "raw": {k: v for k, v in asdict(run).items() if k != "count"},
                }
                for run in self.runs
            ],
            "note": self.setup.note,
            "error": self.error,
        }


Figures = dict[tuple[str, str], Figure]


def measure(runner: Runner, setups: Sequence[Setup], size: str, rounds: int) -> Figures:
    """Every setup over every task, ``rounds`` times, taking turns."""
    figures: Figures = {
        (setup.name, task): Figure(setup, task, setup.counts[size])
        for setup in setups
        for task in TASKS
    }
    for index in range(rounds):
        for figure in figures.values():
            if figure.error:
                continue
            label = f"{figure.setup.name} / {figure.task}"
            print(f"... round {index + 1}/{rounds}: {label}", file=sys.stderr, flush=True)
            try:
                run = runner.run(figure.setup, figure.task, figure.count)
            except Exception as error:  # one broken setup must not hide the other figures
                traceback.print_exc()
                figure.error = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                continue
            figure.runs.append(run)
            print(
                f"    {run.rate:,.0f} msg/s (start-up {run.startup_seconds:.2f} s)",
                file=sys.stderr,
                flush=True,
            )
    return figures


@dataclass(frozen=True)
class Comparison:
    """A target on one setup's figure, or on the ratio of two setups' figures."""

    name: str
    setup: str
    target: Target
    versus: str | None = None


COMPARISONS = (
    Comparison("thread pool, status+result off", "thread_off", Target(2000)),
    Comparison("thread pool: status+result on / off", "thread_on", Target(0.75), "thread_off"),
    Comparison("async pool", "async", Target(5000)),
    Comparison("async pool / taskiq", "async", Target(1.5), "taskiq"),
    Comparison("thread pool (off) / Dramatiq", "thread_off", Target(1.0), "dramatiq"),
    Comparison("machine-wide", "machine", Target(8000)),
    Comparison("machine-wide / taskiq", "machine", Target(1.5), "taskiq"),
    Comparison("machine-wide / Dramatiq", "machine", Target(1.0), "dramatiq"),
)


def compare(figures: Figures) -> list[Row]:
    """One row per comparison and task: the figure or ratio, against its target (comparisons
    of setups a partial run left out are left out too).

    The value is best against best; the row's samples are the ratios round by round (the two
    runs of a round ran minutes apart at most), so its median shows how steady the ratio is.
    """
    rows: list[Row] = []
    for comparison in COMPARISONS:
        for task, label in TASKS.items():
            name = f"{comparison.name} | {label}"
            figure = figures.get((comparison.setup, task))
            other = figures.get((comparison.versus, task)) if comparison.versus else None
            if figure is None or (comparison.versus and other is None):
                continue  # a partial run (--only)
            row = figure.row()
            if other is None:
                rows.append(Row(name, row.figure, "msg/s", comparison.target, samples=row.samples))
                continue
            ratio = ratio_row(name, row, other.row(), comparison.target)
            pairs = zip(figure.runs, other.runs)
            ratio.samples = [round(a.rate / b.rate, 3) for a, b in pairs if b.rate]
            rows.append(ratio)
    return rows


# -- output ------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _verdict(row: Row) -> str:
    return {None: "SKIPPED", True: "pass", False: "MISSED"}[row.passed]


def _table(header: Sequence[str], lines: Sequence[Sequence[str]], markdown: bool) -> list[str]:
    if markdown:
        rule = ["---" if i == 0 else "---:" for i in range(len(header))]
        return ["| " + " | ".join(cells) + " |" for cells in (header, rule, *lines)]
    widths = [max(len(cells[i]) for cells in (header, *lines)) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    return [render(header), "  ".join("-" * w for w in widths), *map(render, lines)]


def figures_table(figures: Figures, markdown: bool = False) -> list[str]:
    """Messages per second of every setup, no-op and 1 ms side by side, with their costs."""
    header = ["setup", "messages"]
    for label in TASKS.values():
        header += [f"{label} msg/s", "median", "w/ start-up"]
    header += ["no-op: worker cores", "redis cores", "redis cmd/msg"]
    lines = []
    for name in dict.fromkeys(setup_name for setup_name, _ in figures):
        first = figures[(name, next(iter(TASKS)))]
        setup = first.setup
        cells = [setup.label, f"{first.count:,}"]
        costs: dict[str, float] = {}
        for task in TASKS:
            figure = figures[(setup.name, task)]
            best = figure.best
            median = statistics.median(r.rate for r in figure.runs) if figure.runs else None
            cells += [
                _number(best.rate) if best else ("FAILED" if figure.error else "-"),
                _number(median),
                _number(best.rate_with_startup) if best else "-",
            ]
            if best and not costs:
                costs = best.costs()
        cells += [
            _number(costs.get("worker_cores")),
            _number(costs.get("redis_cores")),
            _number(costs.get("redis_commands_per_msg")),
        ]
        lines.append(cells)
    return _table(header, lines, markdown)


def targets_table(rows: Sequence[Row], markdown: bool = False) -> list[str]:
    """Every comparison: figure or ratio (and its median over rounds), target, verdict."""
    header = ["comparison", "task", "value", "median", "target", "result"]
    lines = []
    for row in rows:
        name, task = row.name.split(" | ")
        value = "-" if row.figure is None else _number(row.figure)
        median = statistics.median(row.samples) if len(row.samples) > 1 else None
        lines.append([name, task, value, _number(median), str(row.target), _verdict(row)])
    return _table(header, lines, markdown)


def print_report(env: dict[str, Any], figures: Figures, comparisons: Sequence[Row]) -> None:
    """The figures, the comparisons with their verdicts, and what failed."""
    print(
        f"\nalsek pool benchmark: Redis {env['redis_version']}, Python {env['python_version']}, "
        f"{env['cpu_cores']} cores, {env['timestamp']}{' (quick)' if env['quick'] else ''}, "
        f"best of {env['rounds']} round(s)\n"
    )
    print("\n".join(figures_table(figures)))
    print("\ncores: CPU of the worker processes and of redis-server while messages ran (of 2).")
    print("redis cmd/msg: commands Redis executed per message, those inside scripts included.\n")
    print("\n".join(targets_table(comparisons)))
    failed = [f for f in figures.values() if f.error]
    for figure in failed:
        print(f"\nFAILED {figure.setup.name} / {figure.task}: {figure.error}")
    missed = [row for row in comparisons if row.passed is False]
    print(f"\n{len(missed)} target(s) missed." if missed else "\nAll measured targets met.")


def write_json(
    path: Path, env: dict[str, Any], figures: Figures, comparisons: Sequence[Row]
) -> None:
    """Write everything measured to ``path`` (atomically, via a ``.tmp`` file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "environment": env,
        "figures": [figure.as_dict() for figure in figures.values()],
        "results": [figure.row().as_dict() for figure in figures.values()]
        + [row.as_dict() for row in comparisons],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)


def draw_chart(json_path: Path) -> str | None:
    """Draw ``CHART`` from the JSON with the peers' matplotlib; returns why not, or None."""
    try:
        subprocess.run(
            [str(peers_python()), str(BENCH_DIR / "chart.py"), str(json_path), str(CHART)],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        return f"chart not drawn: {error}"
    return None


def update_docs(env: dict[str, Any], figures: Figures, comparisons: Sequence[Row]) -> None:
    """Replace the figures in ``DOCS_PAGE`` (between the markers) with this run's."""
    peers = ", ".join(f"{name} {version}" for name, version in env["peers"].items())
    block = [
        DOCS_BEGIN,
        "",
        f"Measured {env['timestamp']} on {env['cpu_cores']} cores ({env['cpu_model']}), "
        f"{env['platform']}; Python {env['python_version']}, Redis {env['redis_version']} "
        f"(throwaway server on the same machine), alsek {env['alsek_version']} at commit "
        f"{env['git_commit']} (from {env['alsek_source']}); {peers}. Best of {env['rounds']} "
        f"rounds; load average {env['load_average_at_start'][0]} at the start, "
        f"{env['load_average_at_end'][0]} at the end (the machine is shared).",
        "",
        *figures_table(figures, markdown=True),
        "",
        *targets_table(comparisons, markdown=True),
        "",
        DOCS_END,
    ]
    text = DOCS_PAGE.read_text()
    before, rest = text.split(DOCS_BEGIN, 1)
    _, after = rest.split(DOCS_END, 1)
    DOCS_PAGE.write_text(before + "\n".join(block) + after)


def _alsek_source() -> str:
    """Where the alsek that ran came from: this repository (clean or not), or another path."""
    import alsek

    package = Path(alsek.__file__).resolve().parent
    if package != REPO / "alsek":
        return str(package)
    changes = subprocess.run(
        ["git", "status", "--porcelain", "--", "alsek"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return "this repository" + (", with uncommitted changes" if changes else "")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """``--quick``, ``--rounds``, ``--only``, ``--json``."""
    parser = argparse.ArgumentParser(description="alsek pool benchmark, beside its peers")
    parser.add_argument("--quick", action="store_true", help="2,000 messages per run, 1 round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default: 3; quick: 1)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SETUPS_BY_NAME),
        metavar="NAME",
        help=f"run only this setup (repeatable); one of: {', '.join(SETUPS_BY_NAME)}",
    )
    parser.add_argument(
        "--machine-wide",
        choices=list(MACHINE_WIDE),
        default=DEFAULT_MACHINE_WIDE,
        help=f"the two pools of the machine-wide row (default: {DEFAULT_MACHINE_WIDE})",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS_DIR / "pools.json",
        help="where to write the results (default: bench/results/pools.json)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen setups, print the report, write the JSON (and the docs on a full run)."""
    options = parse_args(argv)
    # Workers run in sessions of their own; a SIGTERM must unwind through the code that stops
    # them (and the throwaway Redis), not leave them behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    size = "quick" if options.quick else "full"
    rounds = options.rounds or ROUNDS[size]
    chosen = [machine_wide(options.machine_wide) if s.name == "machine" else s for s in SETUPS]
    setups = [s for s in chosen if not options.only or s.name in options.only]
    why_no_peers = ensure_peers_venv() if any(s.peer for s in setups) else None
    if why_no_peers:
        print(f"WARNING: {why_no_peers}; the peers are skipped", file=sys.stderr)
        setups = [s for s in setups if not s.peer]
    with bench_redis() as server, tempfile.TemporaryDirectory(prefix="bench-pools-") as scratch:
        runner = Runner(server, server.namespace("pools"), Path(scratch))
        env = environment(server, options.quick, [s.name for s in setups])
        figures = measure(runner, setups, size, rounds)
        env["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    env.update(
        rounds=rounds,
        cpu_model=_cpu_model(),
        alsek_source=_alsek_source(),
        peers=peer_versions() if PEERS_VENV.exists() else {},
    )
    comparisons = compare(figures)
    print_report(env, figures, comparisons)
    write_json(options.json, env, figures, comparisons)
    print(f"\nResults written to {options.json}")
    if options.quick or options.only:
        print("Docs not updated (a partial run): run without --quick/--only to refresh them.")
        return 0
    problem = draw_chart(options.json)
    if problem:
        print(f"WARNING: {problem}", file=sys.stderr)
    update_docs(env, figures, comparisons)
    print(f"Updated {DOCS_PAGE.relative_to(REPO)} and {CHART.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
