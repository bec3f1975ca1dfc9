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


@dataclass(frozen=True)
class Job:
    """One row's run in a round: its label, its figure, the run, and a line on its result."""

    label: str
    figure: Rounds[Any]
    run: Callable[[], Any]
    describe: Callable[[Any], str]


def _pool_job(runner: Runner, figure: PoolFigure) -> Job:
    return Job(
        f"{figure.setup.name} / {figure.task} / {figure.mode}",
        figure,
        lambda: runner.pool(figure.setup, figure.task, figure.mode, figure.count),
        lambda run: f"{run.rate:,.0f} msg/s (start-up {run.startup_seconds:.2f} s)",
    )


def _submit_job(runner: Runner, figure: SubmitFigure) -> Job:
    return Job(
        figure.submitter.name,
        figure,
        lambda: runner.submits(figure.submitter, figure.count),
        lambda run: f"{run.rate:,.0f} submits/s",
    )


def _latency_job(runner: Runner, figure: LatencyFigure) -> Job:
    return Job(
        figure.probe.name,
        figure,
        lambda: runner.latency(figure.probe, figure.count),
        lambda run: f"p50 {run.p50:.2f} ms, p99 {run.p99:.2f} ms",
    )


def _jobs(runner: Runner, results: Results) -> list[Job]:
    """What one round runs, in order."""
    return [
        *(_pool_job(runner, figure) for figure in results.pools.values()),
        *(_submit_job(runner, figure) for figure in results.submits.values()),
        *(_latency_job(runner, figure) for figure in results.latency.values()),
    ]


def measure(runner: Runner, results: Results, rounds: int) -> None:
    """Run every row ``rounds`` times, taking turns, adding each run to its figure."""
    jobs = _jobs(runner, results)
    for index in range(rounds):
        for job in jobs:
            if job.figure.error:
                continue
            print(f"... round {index + 1}/{rounds}: {job.label}", file=sys.stderr, flush=True)
            try:
                outcome = job.run()
            except Exception as error:  # one broken row must not hide the other figures
                traceback.print_exc()
                job.figure.error = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                continue
            job.figure.runs.append(outcome)
            print(f"    {job.describe(outcome)}", file=sys.stderr, flush=True)
