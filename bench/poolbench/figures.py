"""Every row of a benchmark run, measured round after round, taking turns.

Within a round every row runs once (pools in each mode, then single submits, then latency),
so that a slow spell of a shared machine hits them alike; a row whose run fails is reported
as failed and skipped in the later rounds, without hiding the others.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from poolbench.records import LatencyFigure, PoolFigure, Rounds, SubmitFigure
from poolbench.runner import Runner
from poolbench.setups import (
    LATENCY_COUNTS,
    SUBMIT_COUNTS,
    TASKS,
    LatencyProbe,
    Setup,
    Submitter,
)

PoolKey = tuple[str, str, str]  # setup name, task, mode


@dataclass
class Results:
    """The rows of a run, in the order they are measured and shown."""

    pools: dict[PoolKey, PoolFigure] = field(default_factory=dict)
    submits: dict[str, SubmitFigure] = field(default_factory=dict)
    latency: dict[str, LatencyFigure] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Every figure, for the JSON."""
        return {
            "figures": [figure.as_dict() for figure in self.pools.values()],
            "submits": [figure.as_dict() for figure in self.submits.values()],
            "latency": [figure.as_dict() for figure in self.latency.values()],
        }


def plan(
    setups: Sequence[Setup],
    submitters: Sequence[Submitter],
    probes: Sequence[LatencyProbe],
    modes: Sequence[str],
    size: str,
    messages: int | None = None,
) -> Results:
    """The rows to measure, each with its message count (``messages`` overrides them all)."""
    results = Results()
    for mode in modes:
        for setup in setups:
            for task in TASKS:
                count = messages or setup.count(mode, size)
                key = (setup.name, task, mode)
                results.pools[key] = PoolFigure(count=count, setup=setup, task=task, mode=mode)
    for submitter in submitters:
        count = messages or SUBMIT_COUNTS[size]
        results.submits[submitter.name] = SubmitFigure(count=count, submitter=submitter)
    for probe in probes:
        count = messages or LATENCY_COUNTS[size]
        results.latency[probe.name] = LatencyFigure(count=count, probe=probe)
    return results


Job = tuple[str, Rounds[Any], Callable[[], Any], Callable[[Any], str]]


def _jobs(runner: Runner, results: Results) -> list[Job]:
    """What one round runs: a label, the figure, the run, and how to print its result."""
    jobs: list[Job] = []
    for (name, task, mode), pool in results.pools.items():
        jobs.append(
            (
                f"{name} / {task} / {mode}",
                pool,
                lambda p=pool: runner.pool(p.setup, p.task, p.mode, p.count),
                lambda run: f"{run.rate:,.0f} msg/s (start-up {run.startup_seconds:.2f} s)",
            )
        )
    for name, submit in results.submits.items():
        jobs.append(
            (
                name,
                submit,
                lambda s=submit: runner.submits(s.submitter, s.count),
                lambda run: f"{run.rate:,.0f} submits/s",
            )
        )
    for name, latency in results.latency.items():
        jobs.append(
            (
                name,
                latency,
                lambda f=latency: runner.latency(f.probe, f.count),
                lambda run: f"p50 {run.p50:.2f} ms, p99 {run.p99:.2f} ms",
            )
        )
    return jobs


def measure(runner: Runner, results: Results, rounds: int) -> None:
    """Run every row ``rounds`` times, taking turns, adding each run to its figure."""
    jobs = _jobs(runner, results)
    for index in range(rounds):
        for label, figure, run, describe in jobs:
            if figure.error:
                continue
            print(f"... round {index + 1}/{rounds}: {label}", file=sys.stderr, flush=True)
            try:
                outcome = run()
            except Exception as error:  # one broken row must not hide the other figures
                traceback.print_exc()
                figure.error = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                continue
            figure.runs.append(outcome)
            print(f"    {describe(outcome)}", file=sys.stderr, flush=True)
