"""The targets, grouped by figure as the issue "Cheaper per message" states them, and their
verdicts: a figure against a value, or alsek's figure over a peer's from the same run.

A value is best against best (the fastest round, or the lowest cost); its median is that of
the ratios round by round (the two runs of a round ran minutes apart at most), which shows how
steady it is. Comparisons of rows a partial run (``--only``, ``--mode``) left out are left out.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from _common import Target

from poolbench.figures import Results
from poolbench.setups import MODES, TASKS

#: A measured quantity: ``("rate" | "redis_cpu", setup, task, mode)`` of a pool row,
#: ``("submit", name)`` of a submitter, ``("p50" | "p99", name)`` of a latency probe.
Key = tuple[str, ...]


@dataclass(frozen=True)
class Series:
    """One quantity, round by round."""

    values: list[float]
    higher_is_better: bool

    @property
    def best(self) -> float | None:
        """The best round's value (None when every round failed)."""
        if not self.values:
            return None
        return max(self.values) if self.higher_is_better else min(self.values)


def series(results: Results) -> dict[Key, Series]:
    """Every quantity a comparison can name, from every planned row."""
    found: dict[Key, Series] = {}
    for (name, task, mode), pool in results.pools.items():
        found[("rate", name, task, mode)] = Series([run.rate for run in pool.runs], True)
        costs = [run.redis_cpu_us_per_msg for run in pool.runs]
        found[("redis_cpu", name, task, mode)] = Series(costs, False)
    for name, submit in results.submits.items():
        found[("submit", name)] = Series([run.rate for run in submit.runs], True)
    for name, latency in results.latency.items():
        found[("p50", name)] = Series([run.p50 for run in latency.runs], False)
        found[("p99", name)] = Series([run.p99 for run in latency.runs], False)
    return found


@dataclass(frozen=True)
class Comparison:
    """A target on one quantity, or on its ratio to another's (``versus``)."""

    group: str
    name: str
    case: str
    quantity: Key
    target: Target
    versus: Key | None = None
    unit: str = "msg/s"


@dataclass(frozen=True)
class Verdict:
    """A comparison's value, its median over rounds, and whether it met its target."""

    comparison: Comparison
    value: float | None
    median: float | None

    @property
    def passed(self) -> bool | None:
        """None when a figure it needs is missing."""
        return None if self.value is None else self.comparison.target.met(self.value)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        comparison = self.comparison
        return {
            "group": comparison.group,
            "name": comparison.name,
            "case": comparison.case,
            "value": None if self.value is None else round(self.value, 3),
            "median": None if self.median is None else round(self.median, 3),
            "unit": "ratio" if comparison.versus else comparison.unit,
            "target": str(comparison.target),
            "passed": self.passed,
        }


REDIS_CPU = "Redis CPU per message (INFO cpu delta / messages), no-op, status off"
SUBMIT = "Single submit, sync and async (one generate per call, awaited)"
THREAD = "Thread pool 1x8, no-op and 1 ms, backlog and trickle"
ASYNC = "Async pool, no-op and 1 ms, backlog and trickle"
PROCESS = "Process pool, no-op"
LATENCY = "Submit -> start at idle, thread and async pools"
EARLIER = "Earlier targets (backlog)"


def _pools(
    group: str,
    name: str,
    setup: str,
    target: Target,
    versus: str | None = None,
    tasks: Sequence[str] = tuple(TASKS),
    modes: Sequence[str] = MODES,
    quantity: str = "rate",
) -> list[Comparison]:
    """One comparison of pool rows per task and mode."""
    return [
        Comparison(
            group,
            name,
            f"{TASKS[task]}, {mode}",
            (quantity, setup, task, mode),
            target,
            (quantity, versus, task, mode) if versus else None,
        )
        for task in tasks
        for mode in modes
    ]


def _latency(name: str, probe: str) -> list[Comparison]:
    return [
        Comparison(LATENCY, name, "p50", ("p50", probe), Target(1.0, at_least=False), unit="ms"),
        Comparison(LATENCY, name, "p99", ("p99", probe), Target(2.5, at_least=False), unit="ms"),
    ]


AT_MOST_PEER = Target(1.0, at_least=False)
NOOP = ("noop",)
BACKLOG = ("backlog",)

COMPARISONS: tuple[Comparison, ...] = (
    *_pools(REDIS_CPU, "thread pool / taskiq", "thread_off", AT_MOST_PEER, "taskiq", NOOP,
            quantity="redis_cpu"),
    *_pools(REDIS_CPU, "async pool / taskiq", "async", AT_MOST_PEER, "taskiq", NOOP,
            quantity="redis_cpu"),
    Comparison(SUBMIT, "alsek sync / taskiq kiq", "no-op", ("submit", "submit_alsek"),
               Target(1.5), ("submit", "submit_taskiq")),
    Comparison(SUBMIT, "alsek sync / Dramatiq send", "no-op", ("submit", "submit_alsek"),
               Target(1.0), ("submit", "submit_dramatiq")),
    Comparison(SUBMIT, "alsek async / taskiq kiq", "no-op", ("submit", "submit_alsek_async"),
               Target(1.5), ("submit", "submit_taskiq")),
    Comparison(SUBMIT, "alsek async / Dramatiq send", "no-op", ("submit", "submit_alsek_async"),
               Target(1.0), ("submit", "submit_dramatiq")),
    *_pools(THREAD, "thread pool / Dramatiq 1x8", "thread_off", Target(1.2), "dramatiq"),
    *_pools(THREAD, "thread pool / BullMQ c=8", "thread_off", Target(1.0), "bullmq_8"),
    *_pools(ASYNC, "async pool / taskiq", "async", Target(1.5), "taskiq"),
    *_pools(ASYNC, "async pool / BullMQ c=100", "async", Target(1.0), "bullmq_100"),
    *_pools(PROCESS, "process pool", "process", Target(1000), tasks=NOOP),
    *_pools(PROCESS, "process pool / Celery prefork", "process", Target(1.0), "celery", NOOP),
    *_latency("thread pool", "latency_thread"),
    *_latency("async pool", "latency_async"),
    *_pools(EARLIER, "thread pool, status+result off", "thread_off", Target(2000), modes=BACKLOG),
    *_pools(EARLIER, "thread pool: status+result on / off", "thread_on", Target(0.75),
            "thread_off", modes=BACKLOG),
    *_pools(EARLIER, "thread pool: metrics on / off", "thread_metrics", Target(0.9),
            "thread_off", modes=BACKLOG),
    *_pools(EARLIER, "async pool", "async", Target(5000), modes=BACKLOG),
    *_pools(EARLIER, "async pool: metrics on / off", "async_metrics", Target(0.9), "async",
            modes=BACKLOG),
    *_pools(EARLIER, "machine-wide", "machine", Target(8000), modes=BACKLOG),
    *_pools(EARLIER, "machine-wide / taskiq", "machine", Target(1.5), "taskiq", modes=BACKLOG),
    *_pools(EARLIER, "machine-wide / Dramatiq", "machine", Target(1.0), "dramatiq",
            modes=BACKLOG),
)  # fmt: skip


def _verdict(comparison: Comparison, found: dict[Key, Series]) -> Verdict:
    top = found[comparison.quantity]
    if comparison.versus is None:
        median = statistics.median(top.values) if top.values else None
        return Verdict(comparison, top.best, median)
    bottom = found[comparison.versus]
    if top.best is None or not bottom.best:
        return Verdict(comparison, None, None)
    ratios = [a / b for a, b in zip(top.values, bottom.values) if b]
    return Verdict(comparison, top.best / bottom.best, statistics.median(ratios))


def evaluate(results: Results) -> list[Verdict]:
    """The verdict of every comparison whose rows were planned, in ``COMPARISONS`` order."""
    found = series(results)
    return [
        _verdict(comparison, found)
        for comparison in COMPARISONS
        if comparison.quantity in found
        and (comparison.versus is None or comparison.versus in found)
    ]
