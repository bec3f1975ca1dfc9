"""Throughput charts: points summed into the window's buckets, drawn as SVG bars."""

from __future__ import annotations

import re
from typing import NamedTuple

from alsek.web.charts import (
    HOUR_MS,
    MINUTE_MS,
    WINDOWS,
    bucketize,
    run_time_labels,
    run_time_svg,
    run_times,
    throughput_svg,
    totals,
)

NOW = 1_765_000_000_000 // MINUTE_MS * MINUTE_MS + 25_000  # 25 s into a minute


class Point(NamedTuple):
    """A ``ThroughputPoint`` as the metrics branch defines it."""

    at_ms: int
    succeeded: int
    failed: int
    retried: int
    dead_lettered: int
    run_ms_buckets: tuple[int, ...] = ()


def test_an_hour_is_sixty_minute_buckets_ending_with_the_current_one() -> None:
    minute = NOW // MINUTE_MS * MINUTE_MS
    points = [
        Point(minute, 3, 1, 0, 1),
        Point(minute - 59 * MINUTE_MS, 2, 0, 1, 0),
        Point(minute - 60 * MINUTE_MS, 100, 0, 0, 0),  # outside the hour: dropped
    ]
    buckets = bucketize(points, WINDOWS["1h"], NOW)
    assert len(buckets) == 60
    assert (buckets[0].start_ms, buckets[-1].start_ms) == (minute - 59 * MINUTE_MS, minute)
    assert (buckets[-1].succeeded, buckets[-1].failed, buckets[-1].dead_lettered) == (3, 1, 1)
    assert (buckets[0].succeeded, buckets[0].retried) == (2, 1)
    assert totals(buckets) == {"succeeded": 5, "retried": 1, "failed": 1, "dead_lettered": 1}


def test_minutes_are_summed_into_wider_buckets() -> None:
    minute = NOW // MINUTE_MS * MINUTE_MS
    points = [Point(minute - i * MINUTE_MS, 1, 0, 0, 0) for i in range(30)]
    day = bucketize(points, WINDOWS["24h"], NOW)
    assert len(day) == 24
    assert sum(b.succeeded for b in day) == 30
    assert all(b.start_ms % HOUR_MS == 0 for b in day)
    fortnight = bucketize([Point(NOW // HOUR_MS * HOUR_MS, 7, 0, 0, 0)], WINDOWS["14d"], NOW)
    assert len(fortnight) == 56 and fortnight[-1].succeeded == 7


def test_bars_are_stacked_and_scaled_to_the_busiest_bucket() -> None:
    minute = NOW // MINUTE_MS * MINUTE_MS
    buckets = bucketize(
        [Point(minute, 6, 2, 2, 0), Point(minute - MINUTE_MS, 5, 0, 0, 0)], WINDOWS["1h"], NOW
    )
    svg = str(throughput_svg(buckets, WINDOWS["1h"]))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    last = svg.rsplit("<g>", 1)[1]
    heights = dict(re.findall(r'<rect class="(\w+)"[^>]*height="([\d.]+)"', last))
    # The last bucket (10 runs) fills the 150 px plot: 6, 2 and 2 parts of it.
    assert heights == {"ok": "90.0", "retry": "30.0", "fail": "30.0"}
    assert re.search(r">10</text>", svg)  # the y axis names the peak
    assert "6 succeeded, 2 retried, 2 failed" in svg
    assert svg.count("<g>") == 2


def test_an_idle_window_says_so() -> None:
    svg = str(throughput_svg(bucketize([], WINDOWS["24h"], NOW), WINDOWS["24h"]))
    assert "no runs in the last 24 hours" in svg
    assert "<rect" not in svg


def test_run_times_are_summed_over_the_window_and_drawn_per_range() -> None:
    points = [Point(0, 3, 0, 0, 0, (1, 2, 0)), Point(MINUTE_MS, 2, 0, 0, 0, (0, 1, 1))]
    counts = run_times(points)
    assert counts == [1, 3, 1]
    labels = run_time_labels((10, 1000), len(counts))
    assert labels == ["\u2264 10 ms", "\u2264 1 s", "> 1 s"]
    svg = str(run_time_svg(counts, labels))
    widths = [float(w) for w in re.findall(r'<rect class="ok"[^>]*width="([\d.]+)"', svg)]
    assert widths == [96.7, 290.0, 96.7]  # a third of the longest, for a third of its runs
    assert "&gt; 1 s" in svg
    assert "No run ended" in str(run_time_svg([0, 0], labels))
