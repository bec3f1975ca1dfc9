"""What one run measured (``PoolRun``, ``SubmitRun``, ``LatencyRun``), and the rounds of one row
(``PoolFigure``, ``SubmitFigure``, ``LatencyFigure``), each with its JSON form.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from _common import percentile

from poolbench.setups import TASKS, LatencyProbe, Setup, Submitter


@dataclass
class PoolRun:
    """One run of a pool over one task: when messages finished, and what it cost.

    ``launched`` is the worker's launch (backlog) or the producer's first submit (trickle);
    ``redis_cpu_total_seconds`` covers the whole run from then, so that per message it counts
    every message; the ``*_cores`` figures cover the window from the first finished message.
    """

    count: int
    launched: float
    first: float
    last: float
    worker_cpu_seconds: float
    redis_cpu_seconds: float
    cpu_window_seconds: float
    redis_cpu_total_seconds: float
    redis_calls: int
    redis_usec: int
    submit_seconds: float | None = None

    @property
    def rate(self) -> float:
        """Messages per second between the first finished message and the last."""
        return (self.count - 1) / (self.last - self.first) if self.last > self.first else 0.0

    @property
    def rate_from_launch(self) -> float:
        """Messages per second from ``launched`` to the last finished message."""
        return self.count / (self.last - self.launched)

    @property
    def startup_seconds(self) -> float:
        """From ``launched`` to the first finished message."""
        return self.first - self.launched

    @property
    def redis_cpu_us_per_msg(self) -> float:
        """Redis CPU per message over the whole run."""
        return self.redis_cpu_total_seconds * 1e6 / self.count

    def costs(self) -> dict[str, float | None]:
        """Cores busy while messages ran, Redis work per message, the producer's pace."""
        window = self.cpu_window_seconds or 1.0
        return {
            "worker_cores": round(self.worker_cpu_seconds / window, 2),
            "redis_cores": round(self.redis_cpu_seconds / window, 2),
            "redis_cpu_us_per_msg": round(self.redis_cpu_us_per_msg, 1),
            "redis_commands_per_msg": round(self.redis_calls / self.count, 2),
            "redis_usec_per_msg": round(self.redis_usec / self.count, 1),
            "submit_msgs_per_s": round(self.count / self.submit_seconds, 1)
            if self.submit_seconds
            else None,
        }


@dataclass
class SubmitRun:
    """One producer's ``count`` single submits, with no worker running."""

    count: int
    seconds: float
    client_cpu_seconds: float
    redis_cpu_seconds: float
    redis_calls: int
    redis_usec: int

    @property
    def rate(self) -> float:
        """Submits per second (each awaited before the next)."""
        return self.count / self.seconds

    @property
    def redis_cpu_us_per_msg(self) -> float:
        """Redis CPU per submit."""
        return self.redis_cpu_seconds * 1e6 / self.count

    def costs(self) -> dict[str, float]:
        """Per-submit costs in microseconds, and commands per submit."""
        return {
            "wall_us_per_msg": round(self.seconds * 1e6 / self.count, 1),
            "client_cpu_us_per_msg": round(self.client_cpu_seconds * 1e6 / self.count, 1),
            "redis_cpu_us_per_msg": round(self.redis_cpu_us_per_msg, 1),
            "redis_commands_per_msg": round(self.redis_calls / self.count, 2),
            "redis_usec_per_msg": round(self.redis_usec / self.count, 1),
        }


@dataclass
class LatencyRun:
    """Submit → start of each message sent to an idle pool, in milliseconds."""

    latencies_ms: list[float]

    @property
    def p50(self) -> float:
        """The median."""
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        """The 99th percentile."""
        return percentile(self.latencies_ms, 99)

    def summary(self) -> dict[str, float]:
        """p50, p90, p99 and max, in milliseconds."""
        return {
            "p50_ms": round(self.p50, 3),
            "p90_ms": round(percentile(self.latencies_ms, 90), 3),
            "p99_ms": round(self.p99, 3),
            "max_ms": round(max(self.latencies_ms), 3),
        }


R = TypeVar("R", PoolRun, SubmitRun, LatencyRun)


@dataclass(eq=False, kw_only=True)
class Rounds(Generic[R]):
    """The runs of one row, round after round; ``error`` once one failed (no more rounds)."""

    count: int
    runs: list[R] = field(default_factory=list)
    error: str | None = None


@dataclass(eq=False, kw_only=True)
class PoolFigure(Rounds[PoolRun]):
    """A pool setup over one task in one mode."""

    setup: Setup
    task: str
    mode: str

    @property
    def best(self) -> PoolRun | None:
        """The fastest run (other processes only ever slow a run down)."""
        return max(self.runs, key=lambda run: run.rate) if self.runs else None

    def as_dict(self) -> dict[str, Any]:
        """Everything measured, for the JSON."""
        best = self.best
        return {
            "setup": self.setup.name,
            "label": self.setup.label,
            "short_label": self.setup.short,
            "framework": self.setup.framework,
            "task": self.task,
            "task_label": TASKS[self.task],
            "mode": self.mode,
            "messages": self.count,
            "msgs_per_s": round(best.rate, 1) if best else None,
            "median_msgs_per_s": _median([run.rate for run in self.runs]),
            "msgs_per_s_from_launch": round(best.rate_from_launch, 1) if best else None,
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


@dataclass(eq=False, kw_only=True)
class SubmitFigure(Rounds[SubmitRun]):
    """One framework's single submits."""

    submitter: Submitter

    @property
    def best(self) -> SubmitRun | None:
        """The fastest run."""
        return max(self.runs, key=lambda run: run.rate) if self.runs else None

    def as_dict(self) -> dict[str, Any]:
        """Everything measured, for the JSON."""
        best = self.best
        return {
            "name": self.submitter.name,
            "label": self.submitter.label,
            "framework": self.submitter.framework,
            "messages": self.count,
            "msgs_per_s": round(best.rate, 1) if best else None,
            "median_msgs_per_s": _median([run.rate for run in self.runs]),
            "costs": best.costs() if best else None,
            "rounds": [{"msgs_per_s": round(r.rate, 1), **r.costs()} for r in self.runs],
            "error": self.error,
        }


@dataclass(eq=False, kw_only=True)
class LatencyFigure(Rounds[LatencyRun]):
    """Submit → start at idle of one pool."""

    probe: LatencyProbe

    @property
    def best_p50(self) -> float | None:
        """The lowest p50 of the rounds (other processes only ever add delay)."""
        return min(run.p50 for run in self.runs) if self.runs else None

    @property
    def best_p99(self) -> float | None:
        """The lowest p99 of the rounds."""
        return min(run.p99 for run in self.runs) if self.runs else None

    def as_dict(self) -> dict[str, Any]:
        """Everything measured, for the JSON (every sample of every round included)."""
        return {
            "name": self.probe.name,
            "label": self.probe.label,
            "setup": self.probe.setup.name,
            "framework": self.probe.setup.framework,
            "messages": self.count,
            "p50_ms": _round(self.best_p50, 3),
            "median_p50_ms": _median([run.p50 for run in self.runs], 3),
            "p99_ms": _round(self.best_p99, 3),
            "median_p99_ms": _median([run.p99 for run in self.runs], 3),
            "rounds": [
                {**run.summary(), "latencies_ms": [round(v, 3) for v in run.latencies_ms]}
                for run in self.runs
            ],
            "error": self.error,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _median(values: list[float], digits: int = 1) -> float | None:
    return round(statistics.median(values), digits) if values else None
