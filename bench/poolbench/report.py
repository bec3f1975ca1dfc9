"""The benchmark's output: the tables (printed, and in ``docs/benchmarks.md`` after a full
run), the JSON with every round, and the chart.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from _common import BENCH_DIR

from poolbench.comparisons import Verdict
from poolbench.figures import Results
from poolbench.records import Rounds
from poolbench.setups import MODES, TASKS, peers_python

REPO = BENCH_DIR.parent
DOCS_PAGE = REPO / "docs" / "benchmarks.md"
CHART = REPO / "docs" / "benchmarks.png"
#: The figures in ``DOCS_PAGE`` sit between these two lines; the prose around them is kept.
DOCS_BEGIN = "<!-- pools.py: figures begin -->"
DOCS_END = "<!-- pools.py: figures end -->"

#: What "from launch" counts from, by mode.
FROM_LAUNCH = {"backlog": "w/ start-up", "trickle": "from 1st submit"}


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


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


def _title(text: str, markdown: bool) -> list[str]:
    return [f"**{text}**", ""] if markdown else [text]


# -- tables ------------------------------------------------------------------------------------


def pools_table(results: Results, mode: str, markdown: bool = False) -> list[str]:
    """Messages per second of every pool in ``mode``, no-op and 1 ms side by side, with the
    no-op run's costs (and, trickling, the producer's pace)."""
    header = ["setup", "messages"]
    for label in TASKS.values():
        header += [f"{label} msg/s", "median", FROM_LAUNCH[mode]]
    header += ["no-op: worker cores", "redis cores", "redis CPU us/msg", "redis cmd/msg"]
    if mode == "trickle":
        header.append("producer msg/s")
    lines = []
    names = dict.fromkeys(name for name, _, m in results.pools if m == mode)
    for name in names:
        cells: list[str] = []
        costs: dict[str, Any] = {}
        for task in TASKS:
            figure = results.pools[(name, task, mode)]
            best = figure.best
            if not cells:
                cells = [figure.setup.label, f"{figure.count:,}"]
            cells += [
                _number(best.rate) if best else ("FAILED" if figure.error else "-"),
                _number(_median([run.rate for run in figure.runs])),
                _number(best.rate_from_launch) if best else "-",
            ]
            if best and not costs:
                costs = best.costs()
        keys = ["worker_cores", "redis_cores", "redis_cpu_us_per_msg", "redis_commands_per_msg"]
        if mode == "trickle":
            keys.append("submit_msgs_per_s")
        cells += [_number(costs.get(key)) for key in keys]
        lines.append(cells)
    return _table(header, lines, markdown)


def submits_table(results: Results, markdown: bool = False) -> list[str]:
    """Single submits per second, one at a time and awaited, and what each cost."""
    header = ["submit (no worker running)", "messages", "msg/s", "median", "wall us/msg"]
    header += ["client CPU us/msg", "redis CPU us/msg", "redis cmd/msg"]
    lines = []
    for figure in results.submits.values():
        best = figure.best
        costs = best.costs() if best else {}
        lines.append(
            [
                figure.submitter.label,
                f"{figure.count:,}",
                _number(best.rate) if best else ("FAILED" if figure.error else "-"),
                _number(_median([run.rate for run in figure.runs])),
                *(
                    _number(costs.get(key))
                    for key in (
                        "wall_us_per_msg",
                        "client_cpu_us_per_msg",
                        "redis_cpu_us_per_msg",
                        "redis_commands_per_msg",
                    )
                ),
            ]
        )
    return _table(header, lines, markdown)


def latency_table(results: Results, markdown: bool = False) -> list[str]:
    """Submit → start at idle: the lowest p50 and p99 of the rounds, their medians beside."""
    header = ["submit -> start at idle", "messages", "p50 ms", "median", "p99 ms", "median"]
    lines = []
    for figure in results.latency.values():
        p50s = [run.p50 for run in figure.runs]
        p99s = [run.p99 for run in figure.runs]
        lines.append(
            [
                figure.probe.label,
                f"{figure.count:,}",
                _number(figure.best_p50) if p50s else ("FAILED" if figure.error else "-"),
                _number(_median(p50s)),
                _number(figure.best_p99),
                _number(_median(p99s)),
            ]
        )
    return _table(header, lines, markdown)


def _result(verdict: Verdict) -> str:
    return {None: "SKIPPED", True: "pass", False: "MISSED"}[verdict.passed]


def verdicts_tables(verdicts: Sequence[Verdict], markdown: bool = False) -> list[str]:
    """One table per figure of the issue: value or ratio, median over rounds, target, verdict."""
    out: list[str] = []
    for group, members in groupby(verdicts, key=lambda verdict: verdict.comparison.group):
        header = ["comparison", "case", "value", "median", "target", "result"]
        lines = [
            [
                v.comparison.name,
                v.comparison.case,
                _number(v.value),
                _number(v.median),
                str(v.comparison.target),
                _result(v),
            ]
            for v in members
        ]
        out += [*_title(group, markdown), *_table(header, lines, markdown), ""]
    return out


def all_tables(results: Results, verdicts: Sequence[Verdict], markdown: bool) -> list[str]:
    """Every table, titled: pools by mode, submits, latency, then the targets by figure."""
    out: list[str] = []
    for mode in MODES:
        if any(m == mode for _, _, m in results.pools):
            title = f"Pools, {mode}: " + (
                "messages queued before the workers start"
                if mode == "backlog"
                else "a producer submits one message at a time, each awaited, while they run"
            )
            out += [*_title(title, markdown), *pools_table(results, mode, markdown), ""]
    if results.submits:
        out += [*_title("Single submits", markdown), *submits_table(results, markdown), ""]
    if results.latency:
        out += [*_title("Latency at idle", markdown), *latency_table(results, markdown), ""]
    return out + verdicts_tables(verdicts, markdown)


# -- printing and writing ----------------------------------------------------------------------


def print_report(env: dict[str, Any], results: Results, verdicts: Sequence[Verdict]) -> None:
    """The tables, the targets with their verdicts, and what failed."""
    print(
        f"\nalsek pool benchmark: Redis {env['redis_version']}, Python {env['python_version']}, "
        f"{env['cpu_cores']} cores, {env['timestamp']}{' (quick)' if env['quick'] else ''}, "
        f"best of {env['rounds']} round(s)\n"
    )
    print("\n".join(all_tables(results, verdicts, markdown=False)))
    print(
        "cores: CPU of the worker processes and of redis-server while messages ran (of "
        f"{env['cpu_cores']}). redis CPU us/msg: INFO cpu over the whole run / messages (trickle:"
        " the producer's submits included). redis cmd/msg: commands Redis ran per message."
    )
    rows: list[tuple[str, Rounds[Any]]] = [
        *((" / ".join(key), figure) for key, figure in results.pools.items()),
        *results.submits.items(),
        *results.latency.items(),
    ]
    failed = [(label, figure.error) for label, figure in rows if figure.error]
    for label, error in failed:
        print(f"\nFAILED {label}: {error}")
    missed = [verdict for verdict in verdicts if verdict.passed is False]
    print(f"\n{len(missed)} target(s) missed." if missed else "\nAll measured targets met.")


def write_json(
    path: Path, env: dict[str, Any], results: Results, verdicts: Sequence[Verdict]
) -> None:
    """Write everything measured to ``path`` (atomically, via a ``.tmp`` file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "environment": env,
        **results.as_dict(),
        "comparisons": [verdict.as_dict() for verdict in verdicts],
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


def update_docs(env: dict[str, Any], results: Results, verdicts: Sequence[Verdict]) -> None:
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
        *all_tables(results, verdicts, markdown=True),
        DOCS_END,
    ]
    text = DOCS_PAGE.read_text()
    before, rest = text.split(DOCS_BEGIN, 1)
    _, after = rest.split(DOCS_END, 1)
    DOCS_PAGE.write_text(before + "\n".join(block) + after)
