"""What one process counted since its last flush, in plain numbers, written to prometheus-client
every ``flush_interval`` seconds and when the process stops cleanly.

Why: in multiprocess mode every ``inc`` or ``observe`` of prometheus-client takes a lock and
writes a memory-mapped file; a run touched seven values, which cost the pools more than a tenth
of their throughput. Here a run adds to a few integers under one lock, and a flush writes each
series once per interval (an ``in_progress`` that went up and down again writes nothing).

A flush runs on a daemon thread of the process (started on first use, in a forked child too),
at ``worker_shutdown``, and at exit (``atexit`` for a main process, a ``multiprocessing``
finalizer for a pool's child, which ends without running ``atexit``). A process killed with
SIGKILL loses what it counted since its last flush: at most one interval.
"""

from __future__ import annotations

import atexit
import bisect
import os
import threading
from collections.abc import Sequence
from multiprocessing import util as multiprocessing_util
from typing import Any

__all__ = ["DEFAULT_FLUSH_INTERVAL", "SeriesTally", "Tally"]

#: Seconds between two flushes of a process's counts (a scrape lags at most this much).
DEFAULT_FLUSH_INTERVAL = 1.0
#: Counters of ``POOL_METRICS`` by attribute, counted per (queue, task).
#: In the order a flush writes them: the outcomes last (see ``Tally._write``).
_COUNTERS = ("started", "retried", "revoked", "succeeded", "dead_lettered")
#: Histograms of ``POOL_METRICS`` by attribute.
_HISTOGRAMS = ("duration", "queue_wait")
#: Runs ``multiprocessing``'s finalizers before its own (priority: higher runs first).
_FINALIZER_PRIORITY = 100


class _Histogram:
    """Observations of one histogram series, bucketed as prometheus-client does (a value goes
    to the first bucket whose bound is >= it)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = list(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value


class SeriesTally:
    """What a process counted for one (queue, task) since its last flush; change it only under
    ``lock`` (the ``Tally``'s)."""

    def __init__(self, labels: tuple[str, str], lock: threading.Lock, bounds: dict[str, Any]):
        self.labels = labels
        self.lock = lock
        self.bounds = bounds
        self.counts = dict.fromkeys(_COUNTERS, 0)
        self.in_progress = 0
        self.failed: dict[str, int] = {}
        self.histograms = {name: _Histogram(bounds[name]) for name in _HISTOGRAMS}

    def take(self) -> SeriesTally:
        """A copy of the counts, which are reset (call under ``lock``)."""
        taken = SeriesTally(self.labels, self.lock, self.bounds)
        taken.counts, self.counts = self.counts, dict.fromkeys(_COUNTERS, 0)
        taken.in_progress, self.in_progress = self.in_progress, 0
        taken.failed, self.failed = self.failed, {}
        taken.histograms, self.histograms = self.histograms, taken.histograms
        return taken


def _write_histogram(child: Any, tally: _Histogram) -> None:
    """Add ``tally`` to a prometheus-client histogram child: each bucket and the sum once.

    prometheus-client has no public call adding many observations at once; its values
    (``_buckets``, ``_sum``) are used when they are there, else each bucket's count is
    observed at its bound (the counts are exact, the sum then approximate)."""
    if not any(tally.counts):
        return
    buckets, total = getattr(child, "_buckets", None), getattr(child, "_sum", None)
    if isinstance(buckets, list) and len(buckets) == len(tally.counts) and total is not None:
        for value, count in zip(buckets, tally.counts):
            if count:
                value.inc(count)
        total.inc(tally.total)
        return
    beyond = tally.bounds[-1] * 2 if tally.bounds else 1.0  # pragma: no cover
    for bound, count in zip([*tally.bounds, beyond], tally.counts):  # pragma: no cover
        for _ in range(count):
            child.observe(bound)


class Tally:
    """One process's tallies by (queue, task), and their flushes into ``families`` (the
    prometheus-client metric objects by ``POOL_METRICS`` attribute).

    Args:
        families: the metric objects.
        bounds: the buckets of each histogram attribute.
        interval: seconds between two flushes.
    """

    def __init__(self, families: dict[str, Any], bounds: dict[str, Any], interval: float) -> None:
        self.families = families
        self.bounds = bounds
        self.interval = interval
        self.lock = threading.Lock()
        self._pid = os.getpid()
        self._flush_lock = threading.Lock()
        self._series: dict[tuple[str, str], SeriesTally] = {}
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flush_often, name="alsek-metrics-flush")
        self._thread.daemon = True
        self._thread.start()
        atexit.register(self.flush)
        multiprocessing_util.Finalize(None, self.flush, exitpriority=_FINALIZER_PRIORITY)

    def of(self, queue: str, task: str) -> SeriesTally:
        """The tally of ``queue`` and ``task``."""
        key = (queue, task)
        found = self._series.get(key)
        if found is None:
            with self.lock:
                found = self._series.setdefault(key, SeriesTally(key, self.lock, self.bounds))
        return found

    def flush(self) -> None:
        """Write what was counted since the last flush (one flush at a time; in the process
        that counted it only, not in a fork that inherited the counts)."""
        if os.getpid() != self._pid:
            return
        with self._flush_lock:
            with self.lock:
                taken = [series.take() for series in list(self._series.values())]
            for series in taken:
                self._write(series)

    def close(self) -> None:
        """Flush a last time and stop flushing on the thread."""
        self._stop.set()
        self.flush()

    def _flush_often(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def _child(self, attribute: str, labels: tuple[str, ...]) -> Any:
        key = (attribute, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = self.families[attribute].labels(*labels)
        return found

    def _write(self, series: SeriesTally) -> None:
        # A scrape may read between two writes of a flush: the outcomes go last, so a scrape
        # that sees a run's outcome also sees its start, its timings and its failure class.
        for attribute, histogram in series.histograms.items():
            _write_histogram(self._child(attribute, series.labels), histogram)
        if series.in_progress:
            self._child("in_progress", series.labels).inc(series.in_progress)
        for exception, count in series.failed.items():
            self._child("failed", (*series.labels, exception)).inc(count)
        for attribute, count in series.counts.items():
            if count:
                self._child(attribute, series.labels).inc(count)
