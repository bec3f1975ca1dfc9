"""Pool benchmark (``make bench-pools``): alsek's worker pools end to end, beside their peers.

Every pool row is a worker started through its own CLI, in a subprocess, as a user would start
it, on the run's Redis (a throwaway ``redis-server``, or ``ALSEK_BENCH_REDIS_URL``), in two
modes: ``backlog`` (every message queued before the worker starts) and ``trickle`` (a producer
submits one message at a time, each awaited, while the worker runs). The rows:

* alsek thread pool, 1 process x 8 threads, status tracking and result store off, then on;
* alsek process pool (default sizes: a process per message, so fewer messages);
* alsek async pool (1 process, default 100 tasks at once);
* alsek machine-wide: two pool processes at once (``--machine-wide``);
* Dramatiq 1 x 8 threads; taskiq with taskiq-redis's ``ListQueueBroker``, 1 worker process;
  BullMQ at concurrency 8 and 100 (one Node process); Celery prefork with ``-c`` = CPUs,
  ``acks_late`` and prefetch 1. The Python peers are installed from PyPI into
  ``bench/.venv-peers``, BullMQ with ``npm ci`` into ``bench/peers/bullmq/node_modules``, on
  the first run, never into alsek's environment.

Beside them: single submits (one message at a time, awaited, no worker running) of alsek
``Task.generate`` and ``AsyncTask.generate``, Dramatiq ``send``, taskiq ``kiq``, BullMQ
``queue.add`` and Celery ``apply_async``; and submit → start latency at idle (p50/p99) of
alsek's thread and async pools and of every peer, from timestamps carried in the messages.

Two tasks: a no-op and a 1 ms sleep. A task ends with ``apps.completions.done()``, which
counts it in the process; the process writes its count to Redis every 50 ms. The figure is
messages per second from the first finished message to the last. Rows take turns round after
round; the best round is reported, the median beside it. Worker and Redis CPU (``/proc``,
``INFO cpu``) and Redis commands per message (``INFO commandstats``) say where the time went.
The targets of the issue "Cheaper per message" are printed grouped by figure, with the ratios
alsek / peer from the same run.

A full run writes ``bench/results/pools.json``, ``docs/benchmarks.png`` and the figures in
``docs/benchmarks.md``; a partial one (``--quick``, ``--only``, ``--mode``, ``--messages``)
writes the JSON only.

    .venv/bin/python bench/pools.py [--quick] [--rounds N] [--only NAME] [--mode MODE]
                                    [--messages N] [--json PATH]
                                    [--machine-wide async+async|thread+async|thread+thread]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from _common import RESULTS_DIR, bench_redis, environment
from poolbench import installs, report
from poolbench.comparisons import evaluate
from poolbench.figures import measure, plan
from poolbench.runner import Runner
from poolbench.setups import (
    DEFAULT_MACHINE_WIDE,
    GROUPS,
    LATENCY_PROBES,
    MACHINE_WIDE,
    MODES,
    SETUPS,
    SUBMITTERS,
    machine_wide,
)

ROUNDS = {"full": 3, "quick": 1}
NAMES = [*GROUPS, *GROUPS["pools"], *GROUPS["submits"], *GROUPS["latency"]]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """``--quick``, ``--rounds``, ``--only``, ``--mode``, ``--messages``, ``--json``."""
    parser = argparse.ArgumentParser(description="alsek pool benchmark, beside its peers")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2,000 messages per backlog run (500 trickling), 1 round",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default: 3; quick: 1)")
    parser.add_argument(
        "--only",
        action="append",
        choices=NAMES,
        metavar="NAME",
        help=f"run only this row or group of rows (repeatable); one of: {', '.join(NAMES)}",
    )
    parser.add_argument(
        "--mode",
        action="append",
        choices=MODES,
        help="run the pools in this mode only (repeatable; default: backlog and trickle)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=None,
        help="messages per run of every row (latency: samples), instead of the defaults",
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


def _chosen(only: Sequence[str] | None) -> set[str] | None:
    """The row names ``--only`` picks (None: every row)."""
    if not only:
        return None
    return {name for choice in only for name in GROUPS.get(choice, (choice,))}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen rows, print the report, write the JSON (and the docs on a full run)."""
    options = parse_args(argv)
    # Workers run in sessions of their own; a SIGTERM must unwind through the code that stops
    # them (and the throwaway Redis), not leave them behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    size = "quick" if options.quick else "full"
    rounds = options.rounds or ROUNDS[size]
    names = _chosen(options.only)
    pools = [machine_wide(options.machine_wide) if s.name == "machine" else s for s in SETUPS]
    setups = [s for s in pools if names is None or s.name in names]
    submitters = [s for s in SUBMITTERS if names is None or s.name in names]
    probes = [p for p in LATENCY_PROBES if names is None or p.name in names]

    needed = {r for s in setups for r in s.requires} | {s.app.requires for s in submitters}
    needed |= {r for p in probes for r in p.setup.requires}
    problems = installs.ensure(needed)
    for why in problems.values():
        print(f"WARNING: {why}; the rows that need it are skipped", file=sys.stderr)
    setups = [s for s in setups if not s.requires & problems.keys()]
    submitters = [s for s in submitters if s.app.requires not in problems]
    probes = [p for p in probes if not p.setup.requires & problems.keys()]

    modes = options.mode or list(MODES)
    results = plan(setups, submitters, probes, modes, size, options.messages)
    chosen = [*(s.name for s in setups), *(s.name for s in submitters), *(p.name for p in probes)]
    with bench_redis() as server, tempfile.TemporaryDirectory(prefix="bench-pools-") as scratch:
        runner = Runner(server, server.namespace("pools"), Path(scratch))
        env = environment(server, options.quick, chosen)
        measure(runner, results, rounds)
        env["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    env.update(
        rounds=rounds,
        modes=modes,
        messages_override=options.messages,
        cpu_model=_cpu_model(),
        alsek_source=_alsek_source(),
        peers=installs.peer_versions(),
    )
    verdicts = evaluate(results)
    report.print_report(env, results, verdicts)
    report.write_json(options.json, env, results, verdicts)
    print(f"\nResults written to {options.json}")
    if options.quick or options.only or options.mode or options.messages:
        print("Docs not updated (a partial run): run without options to refresh them.")
        return 0
    chart_problem = report.draw_chart(options.json)
    if chart_problem:
        print(f"WARNING: {chart_problem}", file=sys.stderr)
    report.update_docs(env, results, verdicts)
    print(
        f"Updated {report.DOCS_PAGE.relative_to(report.REPO)} and "
        f"{report.CHART.relative_to(report.REPO)}"
    )
    return 0


def _alsek_source() -> str:
    """Where the alsek that ran came from: this repository (clean or not), or another path."""
    import alsek

    package = Path(alsek.__file__).resolve().parent
    if package != report.REPO / "alsek":
        return str(package)
    changes = subprocess.run(
        ["git", "status", "--porcelain", "--", "alsek"],
        cwd=report.REPO,
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


if __name__ == "__main__":
    sys.exit(main())
