"""Draw the pool benchmark's chart: ``python bench/chart.py RESULTS.json OUT.png``.

Run by ``bench/pools.py`` with the peers' virtualenv, which has matplotlib (alsek's does not).
Messages per second of every setup, no-op and 1 ms sleep side by side, alsek in one colour
family and the peers in grey; one panel per mode (backlog, trickle).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after the backend is chosen

COLOURS = {
    ("alsek", "noop"): "#1f5fa8",
    ("alsek", "sleep_1ms"): "#7fb1e3",
    ("peer", "noop"): "#555555",
    ("peer", "sleep_1ms"): "#b0b0b0",
}
TASK_LABELS = {"noop": "no-op", "sleep_1ms": "1 ms sleep"}
BAR_HEIGHT = 0.38
MODE_TITLES = {
    "backlog": "backlog: queued before the workers start",
    "trickle": "trickle: submitted one at a time while they run",
}


def _panel(ax, figures: list[dict], mode: str) -> None:
    """One mode's grouped bars: every setup, no-op and 1 ms sleep side by side."""
    setups = list(dict.fromkeys(figure["setup"] for figure in figures))
    by_key = {(figure["setup"], figure["task"]): figure for figure in figures}
    peak = max((f["msgs_per_s"] or 0) for f in figures) or 1
    for offset, task in ((-BAR_HEIGHT / 2, "noop"), (BAR_HEIGHT / 2, "sleep_1ms")):
        for row, setup in enumerate(setups):
            figure = by_key[(setup, task)]
            family = "alsek" if figure["framework"] == "alsek" else "peer"
            value = figure["msgs_per_s"] or 0
            ax.barh(row + offset, value, BAR_HEIGHT, color=COLOURS[(family, task)])
            text = f"{value:,.0f}" if value else "failed"
            ax.text(value + peak * 0.01, row + offset, text, va="center", fontsize=8)
    ax.set_yticks(range(len(setups)))
    ax.set_yticklabels([by_key[(s, "noop")]["short_label"] for s in setups], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, peak * 1.15)
    ax.set_xlabel("messages per second (higher is better)")
    ax.set_title(MODE_TITLES.get(mode, mode), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def draw(results: dict, out: Path) -> None:
    """Horizontal grouped bar charts of ``results["figures"]``, one panel per mode."""
    modes = list(dict.fromkeys(figure.get("mode", "backlog") for figure in results["figures"]))
    rows = len({figure["setup"] for figure in results["figures"]})
    fig, axes = plt.subplots(
        1, len(modes), figsize=(7.5 * len(modes), 0.9 * rows + 1.8), dpi=110, squeeze=False
    )
    for ax, mode in zip(axes[0], modes):
        figures = [f for f in results["figures"] if f.get("mode", "backlog") == mode]
        _panel(ax, figures, mode)
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=COLOURS[(family, task)])
        for family in ("alsek", "peer")
        for task in ("noop", "sleep_1ms")
    ]
    labels = [
        f"{family}, {TASK_LABELS[task]}" for family in ("alsek", "peer") for task in TASK_LABELS
    ]
    axes[0][-1].legend(handles, labels, loc="lower right", fontsize=8, frameon=False)
    env = results["environment"]
    fig.suptitle(
        f"Worker pools end to end, {env['cpu_cores']} cores, Redis {env['redis_version']}, "
        f"Python {env['python_version']} (best of {env['rounds']})",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(out)


def main() -> None:
    """Read the JSON named first, write the PNG named second."""
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    draw(json.loads(source.read_text()), out)


if __name__ == "__main__":
    main()
