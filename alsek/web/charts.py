"""Throughput charts drawn on the server as SVG, from ``Admin.throughput()``'s points.

No script and nothing fetched: the chart is markup in the page, so it works offline and under
the dashboard's strict content-security policy (sizes are attributes, never inline styles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from markupsafe import Markup, escape

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


class PointLike(Protocol):
    """What a chart reads of a ``ThroughputPoint``: its bucket start and its counts."""

    @property
    def at_ms(self) -> int: ...
    @property
    def succeeded(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def dead_lettered(self) -> int: ...
    @property
    def run_ms_buckets(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class Window:
    """A span of history a chart shows: read at ``step`` from ``Admin.throughput``, drawn in
    buckets of ``bucket_ms``, and read again at most every ``reuse_seconds`` (a long window
    is hundreds of reads per queue, and changes little between two refreshes of a page)."""

    key: str
    label: str
    span_ms: int
    step: str
    bucket_ms: int
    reuse_seconds: float


#: The spans the overview offers (per-minute counters are kept 48 h, hourly ones 14 days).
WINDOWS: dict[str, Window] = {
    w.key: w
    for w in (
        Window("1h", "1 hour", HOUR_MS, "minute", MINUTE_MS, 5),
        Window("24h", "24 hours", 24 * HOUR_MS, "hour", HOUR_MS, 10),
        Window("14d", "14 days", 14 * 24 * HOUR_MS, "hour", 6 * HOUR_MS, 120),
    )
}
DEFAULT_WINDOW = "1h"


@dataclass(frozen=True)
class Bucket:
    """The counts of one drawn bar."""

    start_ms: int
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    dead_lettered: int = 0

    @property
    def total(self) -> int:
        """Runs that ended in this bucket (a dead-lettered run is also a failed one)."""
        return self.succeeded + self.retried + self.failed


def bucketize(points: Sequence[PointLike], window: Window, now_ms: int) -> list[Bucket]:
    """Every bucket of ``window`` ending at ``now_ms``, oldest first, with the points summed
    into them (buckets without a point are zeros, points outside the window are dropped)."""
    width = window.bucket_ms
    first = (now_ms - window.span_ms) // width * width + width
    count = (now_ms // width * width - first) // width + 1
    sums = [[0, 0, 0, 0] for _ in range(count)]
    for point in points:
        index = (point.at_ms - first) // width
        if 0 <= index < count:
            row = sums[index]
            row[0] += point.succeeded
            row[1] += point.retried
            row[2] += point.failed
            row[3] += point.dead_lettered
    return [Bucket(first + i * width, *row) for i, row in enumerate(sums)]


#: Series drawn bottom to top: (attribute, css class, legend label).
SERIES = (
    ("succeeded", "ok", "succeeded"),
    ("retried", "retry", "retried"),
    ("failed", "fail", "failed"),
)
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 180, 40, 22, 8


def _label(ms: int, window: Window) -> str:
    when = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return when.strftime("%m-%d %H:%M" if window.span_ms > 24 * HOUR_MS else "%H:%M")


def _bar(bucket: Bucket, x: float, width: float, scale: float, window: Window) -> str:
    """One bucket's stacked rectangles, with a tooltip of its counts."""
    parts: list[str] = []
    base = HEIGHT - BOTTOM
    for attribute, css, _ in SERIES:
        value = getattr(bucket, attribute)
        if not value:
            continue
        height = value * scale
        base -= height
        parts.append(
            f'<rect class="{css}" x="{x:.1f}" y="{base:.1f}" '
            f'width="{width:.1f}" height="{height:.1f}"/>'
        )
    if not parts:
        return ""
    tip = escape(
        f"{_label(bucket.start_ms, window)} UTC: {bucket.succeeded} succeeded, "
        f"{bucket.retried} retried, {bucket.failed} failed, {bucket.dead_lettered} dead-lettered"
    )
    return f"<g><title>{tip}</title>{''.join(parts)}</g>"


def throughput_svg(buckets: Sequence[Bucket], window: Window) -> Markup:
    """A stacked bar chart of ``buckets`` (succeeded, retried, failed per bucket), with the
    largest total on the y axis and times (UTC) under it; 'no runs' when all are zero."""
    peak = max((bucket.total for bucket in buckets), default=0)
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Throughput over the last {escape(window.label)}">'
    )
    axis = (
        f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" '
        f'x2="{WIDTH}" y2="{HEIGHT - BOTTOM}"/>'
    )
    if not buckets or peak == 0:
        empty = (
            f'<text class="empty" x="{(LEFT + WIDTH) / 2:.0f}" y="{HEIGHT / 2:.0f}" '
            f'text-anchor="middle">no runs in the last {escape(window.label)}</text>'
        )
        return Markup(f"{head}{axis}{empty}</svg>")
    slot = (WIDTH - LEFT) / len(buckets)
    scale = (HEIGHT - BOTTOM - TOP) / peak
    bars = "".join(
        _bar(bucket, LEFT + i * slot + slot * 0.1, slot * 0.8, scale, window)
        for i, bucket in enumerate(buckets)
    )
    last = len(buckets) - 1
    anchors = {0: (LEFT, "start"), last // 2: (LEFT + (last // 2 + 0.5) * slot, "middle")}
    anchors[last] = (WIDTH, "end")
    ticks = "".join(
        f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
        f"{escape(_label(buckets[i].start_ms, window))}</text>"
        for i, (x, anchor) in sorted(anchors.items())
    )
    peak_label = (
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end">{peak}</text>'
        f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH}" y2="{TOP}"/>'
    )
    return Markup(f"{head}{axis}{peak_label}{bars}{ticks}</svg>")


def totals(buckets: Sequence[Bucket]) -> dict[str, int]:
    """Each series summed over the window, for the legend."""
    return {
        name: sum(getattr(bucket, name) for bucket in buckets)
        for name in ("succeeded", "retried", "failed", "dead_lettered")
    }


def run_times(points: Sequence[PointLike]) -> list[int]:
    """How many runs of the window took each range of time (``run_ms_buckets`` summed)."""
    sums = [0] * max((len(point.run_ms_buckets) for point in points), default=0)
    for point in points:
        for index, count in enumerate(point.run_ms_buckets):
            sums[index] += count
    return sums


def _bound(ms: int) -> str:
    return f"{ms // 1000} s" if ms >= 1000 else f"{ms} ms"


def run_time_labels(bounds: Sequence[int], count: int) -> list[str]:
    """The range of each run-time bucket: ``<= 10 ms`` ... ``> 300 s``."""
    labels = [f"\u2264 {_bound(ms)}" for ms in bounds]
    labels.append(f"> {_bound(bounds[-1])}")
    return labels[:count]


def run_time_svg(counts: Sequence[int], labels: Sequence[str]) -> Markup:
    """Horizontal bars, one per run-time range, as long as its share of the largest."""
    peak = max(counts, default=0)
    if peak == 0:
        return Markup('<p class="empty">No run ended in this window.</p>')
    row, label_width, width = 18, 70, 420
    rows = []
    for i, (count, label) in enumerate(zip(counts, labels)):
        y = i * row
        length = (width - label_width - 60) * count / peak
        rows.append(
            f'<text class="tick" x="{label_width - 6}" y="{y + 13}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect class="ok" x="{label_width}" y="{y + 3}" width="{length:.1f}" height="12"/>'
            f'<text class="tick" x="{label_width + length + 4:.1f}" y="{y + 13}">{count}</text>'
        )
    height = row * len(rows)
    return Markup(
        f'<svg class="runtimes" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Run times">{"".join(rows)}</svg>'
    )
