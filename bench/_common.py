"""What every alsek benchmark shares: a Redis to run on, timing, figures, the table and the JSON.

A benchmark script is a list of named *steps*; each takes a ``Bench`` (the Redis server and the
run's options) and returns ``Row`` s. ``main()`` parses the command line, starts a throwaway
``redis-server`` (or uses ``ALSEK_BENCH_REDIS_URL``), runs the chosen steps, prints one table and
writes one JSON file. A missed target is reported, never raised: the run always completes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from alsek._version import __version__ as alsek_version
from alsek.testing import RedisServer

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
#: Set to run against an existing server; every key a run writes is deleted afterwards.
REDIS_URL_VARIABLE = "ALSEK_BENCH_REDIS_URL"
#: Timed rounds of each throughput figure; the best is reported, the median shown beside it (on
#: a shared 2-core machine single rounds vary by up to a half).
ROUNDS = 5
#: Untimed rounds first: connections, script loading, caches.
WARMUP_ROUNDS = 1
#: 1-minute load average above which the table warns that something else was running.
BUSY_LOAD_AVERAGE = 0.5


# -- figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a figure must reach: ``figure >= value`` (``at_least``) or ``figure <= value``."""

    value: float
    at_least: bool = True

    def met(self, figure: float) -> bool:
        """Whether ``figure`` reaches the target."""
        return figure >= self.value if self.at_least else figure <= self.value

    def __str__(self) -> str:
        return f"{'>=' if self.at_least else '<='} {_number(self.value)}"


@dataclass
class Row:
    """One figure of the table. ``figure=None`` means the step was skipped (see ``note``).

    ``samples`` are the rates of every timed round behind a throughput figure; ``cost`` splits
    the best round's time per operation (``Measurement.breakdown``).
    """

    name: str
    figure: float | None
    unit: str
    target: Target | None = None
    note: str = ""
    cost: dict[str, float] | None = None
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        """Median of the rounds behind the figure (``None`` for a single measurement)."""
        return round(statistics.median(self.samples), 1) if len(self.samples) > 1 else None

    @property
    def passed(self) -> bool | None:
        """``True``/``False`` against the target; ``None`` with no target or no figure."""
        if self.target is None or self.figure is None:
            return None
        return self.target.met(self.figure)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of the row."""
        return {
            "name": self.name,
            "figure": self.figure,
            "unit": self.unit,
            "target": str(self.target) if self.target else None,
            "passed": self.passed,
            "note": self.note,
            "cost": self.cost,
            "samples": self.samples,
            "median": self.median,
        }


def skipped(name: str, unit: str, target: Target | None, reason: str) -> Row:
    """A row for a figure that could not be measured, saying why."""
    return Row(name, None, unit, target, note=reason)


def ratio_row(
    name: str, numerator: Row, denominator: Row, target: Target | None, paired: bool = False
) -> Row:
    """``numerator / denominator`` as a row (skipped when either figure is missing).

    ``paired``: the two rows' rounds alternated (``measure_rounds``), so the ratio is the median
    of the per-round ratios, which cancels the machine's slow drifts; otherwise it is the ratio
    of the figures. The note gives the other reading as a cross-check.
    """
    if not numerator.figure or not denominator.figure:
        return skipped(name, "ratio", target, "a figure it needs was not measured")
    of_figures = numerator.figure / denominator.figure
    pairs = list(zip(numerator.samples, denominator.samples))
    if not paired or not pairs or len(numerator.samples) != len(denominator.samples):
        return Row(name, round(of_figures, 3), "ratio", target)
    per_round = [top / bottom for top, bottom in pairs]
    note = (
        f"median of {len(per_round)} alternating rounds (each: "
        f"{', '.join(f'{ratio:.2f}' for ratio in per_round)}); best / best: {of_figures:.3f}"
    )
    return Row(name, round(statistics.median(per_round), 3), "ratio", target, note)


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``values``, interpolating between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# -- redis ---------------------------------------------------------------------------------


def evalsha_stats(conn: redis.Redis) -> tuple[int, int]:
    """``(calls, usec)`` of EVALSHA since the server's stats were last reset."""
    stats = conn.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


@dataclass
class Measurement:
    """Where the time of one timed block went (filled in when the block ends).

    Wall time, the CPU time of this process (every thread: Python, redis-py, JSON) and the time
    Redis spent running scripts (``INFO commandstats``, ``cmdstat_evalsha``). What the first
    exceeds the other two by is waiting: network, wake-ups, other processes on the cores.
    """

    wall_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    redis_calls: int = 0
    redis_usec: int = 0

    def rate(self, count: int) -> float:
        """``count`` operations over the measured wall time, per second."""
        return count / self.wall_seconds if self.wall_seconds else 0.0

    def breakdown(self, count: int) -> dict[str, float]:
        """Per-operation costs in microseconds, and the script calls behind them."""
        return {
            "wall_us_per_op": round(self.wall_seconds * 1e6 / count, 1),
            "client_cpu_us_per_op": round(self.client_cpu_seconds * 1e6 / count, 1),
            "redis_us_per_op": round(self.redis_usec / count, 1),
            "evalsha_calls_per_op": round(self.redis_calls / count, 3),
            "evalsha_usec_per_call": round(self.redis_usec / self.redis_calls, 1)
            if self.redis_calls
            else 0.0,
        }


class BenchRedis:
    """The Redis a run uses: one it started (and flushes between steps) or the configured one.

    Args:
        url: the server's URL.
        owned: whether this run started the server, so may flush it whole.
    """

    def __init__(self, url: str, owned: bool) -> None:
        self.url = url
        self.owned = owned
        self.conn = redis.Redis.from_url(url, decode_responses=True)
        self._run = uuid.uuid4().hex[:8]

    def namespace(self, label: str) -> str:
        """A fresh namespace for one step, unique to this run."""
        return f"alsek-bench-{self._run}-{label}"

    def clean(self, namespace: str) -> None:
        """Delete every key of ``namespace`` and of namespaces it prefixes (``<namespace>-1k``).

        The whole server is flushed when this run owns it.
        """
        if self.owned:
            self._flush_all()
            return
        for pattern in (f"{namespace}*", f"lock:{namespace}*"):
            batch: list[str] = []
            for key in self.conn.scan_iter(match=pattern, count=5000):
                batch.append(key)
                if len(batch) >= 5000:
                    self.conn.unlink(*batch)
                    batch = []
            if batch:
                self.conn.unlink(*batch)

    def _flush_all(self) -> None:
        # A synchronous FLUSHALL of millions of keys outlasts the client's socket timeout; the
        # lazy-free thread must finish too, or it would compete with the next measurement.
        self.conn.flushall(asynchronous=True)
        while int(self.conn.info("memory").get("lazyfree_pending_objects", 0)):
            time.sleep(0.05)

    @contextmanager
    def measured(self) -> Iterator[Measurement]:
        """Time the block: wall, this process's CPU, and Redis script time."""
        measurement = Measurement()
        calls_before, usec_before = evalsha_stats(self.conn)
        cpu_before = time.process_time()
        start = time.perf_counter()
        yield measurement
        measurement.wall_seconds = time.perf_counter() - start
        measurement.client_cpu_seconds = time.process_time() - cpu_before
        calls_after, usec_after = evalsha_stats(self.conn)
        measurement.redis_calls = calls_after - calls_before
        measurement.redis_usec = usec_after - usec_before

    def version(self) -> str:
        """The server's version."""
        return str(self.conn.info("server")["redis_version"])

    def close(self) -> None:
        """Close the run's own client."""
        self.conn.close()


@contextmanager
def bench_redis() -> Iterator[BenchRedis]:
    """The configured Redis (``ALSEK_BENCH_REDIS_URL``), else a throwaway ``redis-server``."""
    configured = os.environ.get(REDIS_URL_VARIABLE)
    if configured:
        server = BenchRedis(configured, owned=False)
        try:
            yield server
        finally:
            server.close()
        return
    with RedisServer() as process:
        server = BenchRedis(process.url, owned=True)
        try:
            yield server
        finally:
            server.close()


# -- running -------------------------------------------------------------------------------


@dataclass
class Bench:
    """What a step gets: the Redis to use and the run's options."""

    redis: BenchRedis
    quick: bool

    @contextmanager
    def namespace(self, label: str) -> Iterator[str]:
        """A fresh namespace for the block; its keys are deleted afterwards."""
        name = self.redis.namespace(label)
        self.redis.clean(name)
        try:
            yield name
        finally:
            self.redis.clean(name)


Step = Callable[[Bench], list[Row]]
#: Prepares one round outside the timing (builds messages, fills a queue) and returns the work to
#: time.
Prepare = Callable[[], Callable[[], object]]


def measure_rounds(
    bench: Bench, variants: dict[str, Prepare], rounds: int = ROUNDS, warmup: int = WARMUP_ROUNDS
) -> dict[str, list[Measurement]]:
    """Time each variant ``rounds`` times after ``warmup`` untimed rounds.

    Variants take turns (A, B, A, B, ...) so that a slow spell of a shared machine hits them
    alike, and a ratio between them stays meaningful.
    """
    results: dict[str, list[Measurement]] = {name: [] for name in variants}
    for index in range(warmup + rounds):
        for name, prepare in variants.items():
            timed = prepare()
            with bench.redis.measured() as measurement:
                timed()
            if index >= warmup:
                results[name].append(measurement)
    return results


def throughput_row(
    name: str,
    rounds: Sequence[Measurement],
    count: int,
    target: Target | None = None,
    note: str = "",
    unit: str = "msg/s",
) -> Row:
    """The best of rounds of ``count`` operations each; the row keeps every round's rate.

    The best round, as ``timeit`` advises: other processes only ever slow a round down, so the
    fastest one is the closest to what the code can do. The median is shown beside it.
    """
    best = max(rounds, key=lambda measurement: measurement.rate(count))
    return Row(
        name,
        round(best.rate(count), 1),
        unit,
        target,
        note=note,
        cost=best.breakdown(count),
        samples=[round(measurement.rate(count), 1) for measurement in rounds],
    )


def parse_args(title: str, steps: Sequence[str], default_json: Path, argv: Sequence[str] | None):
    """The options every benchmark takes: ``--quick``, ``--only NAME``, ``--json PATH``."""
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes, skipping the slowest cases"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(steps),
        metavar="NAME",
        help=f"run only this step (repeatable); one of: {', '.join(steps)}",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=default_json,
        help=f"where to write the results (default: {default_json.relative_to(BENCH_DIR.parent)})",
    )
    return parser.parse_args(argv)


def run_steps(bench: Bench, steps: dict[str, Step], chosen: Sequence[str]) -> list[Row]:
    """Run the chosen steps in order; a step that crashes becomes a row saying so."""
    rows: list[Row] = []
    for name in chosen:
        print(f"... {name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            rows += steps[name](bench)
        except Exception as error:  # a broken step must not hide the others' figures
            traceback.print_exc()
            rows.append(skipped(name, "", None, f"crashed: {type(error).__name__}: {error}"))
        print(f"    done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return rows


def environment(server: BenchRedis, quick: bool, chosen: Sequence[str]) -> dict[str, Any]:
    """Where and how the figures were measured."""
    return {
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "redis_version": server.version(),
        "redis": "throwaway redis-server" if server.owned else f"${REDIS_URL_VARIABLE}",
        "python_version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_cores": os.cpu_count(),
        "load_average_at_start": _load_average(),
        "alsek_version": alsek_version,
        "git_commit": _git_commit(),
        "quick": quick,
        "steps": list(chosen),
    }


def _load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip() or None


def main(
    title: str,
    steps: dict[str, Step],
    default_json: Path,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse options, run the steps on a Redis, print the table and write the JSON."""
    options = parse_args(title, list(steps), default_json, argv)
    chosen = [name for name in steps if not options.only or name in options.only]
    with bench_redis() as server:
        bench = Bench(server, quick=options.quick)
        env = environment(server, options.quick, chosen)
        rows = run_steps(bench, steps, chosen)
        env["load_average_at_end"] = _load_average()
    print_table(title, env, rows)
    write_json(options.json, env, rows)
    print(f"\nResults written to {options.json}")
    return 0


# -- output --------------------------------------------------------------------------------


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


#: Cost figures shown in the table (all of them are in the JSON), and their headings.
COST_COLUMNS = {
    "wall_us_per_op": "wall us/op",
    "client_cpu_us_per_op": "client cpu us/op",
    "redis_us_per_op": "redis us/op",
    "evalsha_usec_per_call": "evalsha us/call",
}


def _cost(row: Row, key: str) -> str:
    return "" if row.cost is None else f"{row.cost[key]:.1f}"


def _verdict(row: Row) -> str:
    if row.figure is None:
        return "SKIPPED"
    return {None: "", True: "pass", False: "MISSED"}[row.passed]


def print_table(title: str, env: dict[str, Any], rows: Sequence[Row]) -> None:
    """Print the figures, their targets and verdicts, then the list of missed targets."""
    header = ("figure", "value", "unit", "target", "result", "median", *COST_COLUMNS.values())
    lines = [header]
    for row in rows:
        costs = [_cost(row, key) for key in COST_COLUMNS]
        lines.append(
            (
                row.name,
                "-" if row.figure is None else _number(row.figure),
                row.unit,
                str(row.target) if row.target else "",
                _verdict(row),
                "" if row.median is None else _number(row.median),
                *costs,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(
        f"\n{title}: Redis {env['redis_version']}, Python {env['python_version']}, "
        f"{env['cpu_cores']} cores, {env['timestamp']}{' (quick)' if env['quick'] else ''}\n"
    )
    load = env["load_average_at_start"][0]
    if load > BUSY_LOAD_AVERAGE:
        print(
            f"WARNING: the machine was busy when the run started (load average {load}): other "
            "processes share the cores, so the figures are pessimistic.\n"
        )
    for index, line in enumerate(lines):
        cells = [
            cell.ljust(width) if i in (0, 2, 3, 4) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths))
        ]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    notes = [row for row in rows if row.note]
    if notes:
        print()
        for row in notes:
            print(f"  {row.name}: {row.note}")
    missed = [row for row in rows if row.passed is False]
    print()
    if missed:
        print(f"TARGETS MISSED ({len(missed)}):")
        for row in missed:
            print(f"  - {row.name}: {_number(row.figure or 0)} {row.unit}, target {row.target}")
    else:
        print("All measured targets met.")


def write_json(path: Path, env: dict[str, Any], rows: Sequence[Row]) -> None:
    """Write the environment and rows to ``path`` (atomically, via a ``.tmp`` file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"environment": env, "results": [row.as_dict() for row in rows]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)
