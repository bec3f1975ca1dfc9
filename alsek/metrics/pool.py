"""A pool's own Prometheus metrics: ``PrometheusMiddleware`` counts, ``PoolMetricsServer``
serves.

The counting is middleware (``alsek.core.middleware``), so it happens wherever a message runs
and finishes: a thread pool's process groups, a process pool's warm children, an asyncio pool.
Every one of those processes writes its figures into one temporary directory of the pool
(prometheus-client's multiprocess mode: a memory-mapped file per process), and the pool's HTTP
server sums them at each scrape; the directory is removed when the pool stops. A process that
died takes its share of ``alsek_tasks_in_progress`` with it; its counts stay counted.

The middleware holds nothing but settings (it travels to worker processes with the broker):
the metric objects are made once per process, on first use. A run adds to plain numbers,
written to prometheus-client about every second and when the process stops cleanly
(``alsek.metrics.tally``): counting costs the pools little.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import struct
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from alsek.core.message import Message
from alsek.core.middleware import Middleware
from alsek.core.run_timing import run_ms, run_started_at_ms
from alsek.exceptions import RevokedError
from alsek.metrics import require_prometheus
from alsek.metrics.names import (
    DURATION_BUCKETS_SECONDS,
    POOL_METRICS,
    QUEUE_WAIT_BUCKETS_SECONDS,
)
from alsek.metrics.serving import DEFAULT_METRICS_HOST, MetricsServer
from alsek.metrics.tally import DEFAULT_FLUSH_INTERVAL, SeriesTally, Tally

__all__ = ["PoolMetricsServer", "PrometheusMiddleware", "flush"]

log = logging.getLogger(__name__)

#: Where prometheus-client's multiprocess mode keeps the files of every process.
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: ``ephemeral_state`` key: the process that counted a run as in progress (only it uncounts it).
_COUNTED_BY = "alsek.metrics.in_progress_pid"
#: Reads of the processes' files per scrape, should one be in the middle of its creation.
_READ_ATTEMPTS = 5


class _Metrics:
    """The metric objects of one process (``POOL_METRICS``) and its ``Tally`` of them."""

    def __init__(self, flush_interval: float) -> None:
        prometheus = require_prometheus()
        multiprocess = MULTIPROC_DIR_VARIABLE in os.environ
        if multiprocess and not prometheus.values.ValueClass._multiprocess:
            # prometheus-client was imported before the pool set the directory.
            prometheus.values.ValueClass = prometheus.values.MultiProcessValue()
        # In multiprocess mode the pool's server reads the files; else the default registry
        # holds them (made once per interpreter: it refuses a name twice), for an application
        # that serves it itself.
        families = _make_families(prometheus, None) if multiprocess else _default_families()
        self.tally = Tally(families, _BUCKETS, flush_interval)


def _make_families(prometheus: Any, registry: Any) -> dict[str, Any]:
    """The metric objects of ``POOL_METRICS`` by attribute, in ``registry``."""
    families: dict[str, Any] = {}
    for attribute, spec in POOL_METRICS.items():
        name = spec.name.removesuffix("_total")
        options: dict[str, Any] = {"labelnames": spec.labels, "registry": registry}
        if spec.kind == "counter":
            family = prometheus.Counter(name, spec.help, **options)
        elif spec.kind == "gauge":
            family = prometheus.Gauge(name, spec.help, multiprocess_mode="livesum", **options)
        else:
            family = prometheus.Histogram(name, spec.help, buckets=_BUCKETS[attribute], **options)
        families[attribute] = family
    return families


_in_default_registry: dict[str, Any] = {}


def _default_families() -> dict[str, Any]:
    """The metric objects in prometheus-client's default registry (made on first use)."""
    if not _in_default_registry:
        prometheus = require_prometheus()
        _in_default_registry.update(_make_families(prometheus, prometheus.REGISTRY))
    return _in_default_registry


#: The buckets of each histogram of ``POOL_METRICS``.
_BUCKETS = {"duration": DURATION_BUCKETS_SECONDS, "queue_wait": QUEUE_WAIT_BUCKETS_SECONDS}

_by_process: dict[int, _Metrics] = {}
_making = threading.Lock()
#: This process's id, kept here: ``os.getpid()`` is a system call, and a run asked five times.
_pid = os.getpid()


def _in_child() -> None:
    """After a fork: the child's id; and ``_making`` free (a fork while another thread held
    it would leave it held in the child)."""
    global _making, _pid
    _making = threading.Lock()
    _pid = os.getpid()


os.register_at_fork(after_in_child=_in_child)


def _tally(flush_interval: float) -> Tally:
    """This process's tally (the metric objects are made on first use; a forked child makes
    its own)."""
    pid = _pid
    found = _by_process.get(pid)
    if found is None:
        with _making:  # one per process, though its threads start runs at once
            found = _by_process.get(pid)
            if found is None:
                found = _by_process[pid] = _Metrics(flush_interval)
    if flush_interval < found.tally.interval:  # brokers of one process: the shortest wins
        found.tally.interval = flush_interval
    return found.tally


def flush() -> None:
    """Write what this process counted so far to prometheus-client now (tests, a user's own
    ``/metrics`` handler; a pool flushes by itself)."""
    found = _by_process.get(_pid)
    if found is not None:
        found.tally.flush()


def _forget_this_process() -> None:
    """Flush this process's tally and drop its metric objects (the next use makes new ones,
    in the directory then set)."""
    with _making:
        found = _by_process.pop(_pid, None)
    if found is not None:
        found.tally.close()


class PrometheusMiddleware(Middleware):
    """Counts every run of its broker's messages into the pool metrics (``POOL_METRICS``).

    The counts are kept in plain numbers and written to prometheus-client every
    ``flush_interval`` seconds and when the process stops (``alsek.metrics.tally``): what a
    scrape shows lags by that much at most.

    Args:
        keeps_dead_letters: whether the broker keeps dead letters (``dlq_ttl``): a message
            failed for good then also counts in ``alsek_tasks_dead_lettered_total``.
        flush_interval: seconds between two writes of a process's counts (more than 0).

    Raises:
        ValueError: ``flush_interval`` is not a positive number.
    """

    def __init__(
        self, keeps_dead_letters: bool = True, flush_interval: float = DEFAULT_FLUSH_INTERVAL
    ) -> None:
        if (
            isinstance(flush_interval, bool)
            or not isinstance(flush_interval, (int, float))
            or not flush_interval > 0
        ):
            raise ValueError(
                f"flush_interval must be a number of seconds above 0, got {flush_interval!r}"
            )
        self.keeps_dead_letters = keeps_dead_letters
        self.flush_interval = float(flush_interval)

    def _of(self, message: Message) -> SeriesTally:
        return _tally(self.flush_interval).of(message.queue, message.task_name)

    def before_process(self, message: Message) -> None:
        """A run starts: started, in progress, and how long it waited since ready."""
        series = self._of(message)
        started_at = run_started_at_ms(message)
        with series.lock:
            series.counts["started"] += 1
            series.in_progress += 1
            if started_at is not None:
                wait = max(started_at - message.ready_at, 0) / 1000
                series.histograms["queue_wait"].observe(wait)
        message.ephemeral_state[_COUNTED_BY] = _pid

    def after_process(self, message: Message, result: Any, exception: BaseException | None) -> None:
        """A run ended (or was stopped): its duration; no longer in progress."""
        series = self._of(message)
        counted_here = message.ephemeral_state.pop(_COUNTED_BY, None) == _pid
        length = run_ms(message)
        with series.lock:
            if counted_here:
                series.in_progress -= 1
            if length is not None:
                series.histograms["duration"].observe(length / 1000)
            if isinstance(exception, RevokedError):
                series.counts["revoked"] += 1

    def after_ack(self, message: Message) -> None:
        """The message succeeded."""
        series = self._of(message)
        with series.lock:
            series.counts["succeeded"] += 1

    def after_retry(self, message: Message, exception: BaseException) -> None:
        """The attempt failed and another was given."""
        series = self._of(message)
        with series.lock:
            series.counts["retried"] += 1

    def after_dead_letter(self, message: Message, exception: BaseException) -> None:
        """The message failed for good."""
        series = self._of(message)
        kind = type(exception).__name__
        with series.lock:
            series.failed[kind] = series.failed.get(kind, 0) + 1
            if self.keeps_dead_letters:
                series.counts["dead_lettered"] += 1

    def worker_shutdown(self, pool: Any) -> None:
        """The pool stopped: write what this process counted, before its metrics go."""
        flush()


class _PoolCollector:
    """Sums the files of every process of the pool, once those of dead processes' live gauges
    are dropped."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._summed = require_prometheus().multiprocess.MultiProcessCollector(None, directory)

    def collect(self) -> Iterator[Any]:
        """The pool's samples at this scrape.

        A process creating its file at this very moment leaves it empty for an instant, and
        reading it then fails: the read is tried again, a few times.
        """
        self._forget_dead_processes()
        for attempt in range(_READ_ATTEMPTS):
            try:
                return iter(list(self._summed.collect()))
            except (ValueError, RuntimeError, struct.error):
                if attempt == _READ_ATTEMPTS - 1:
                    raise
                time.sleep(0.01)
        raise AssertionError("unreachable")

    def _forget_dead_processes(self) -> None:
        multiprocess = require_prometheus().multiprocess
        for path in glob.glob(os.path.join(self.directory, "gauge_live*_*.db")):
            found = re.search(r"_(\d+)\.db$", path)
            if found and not _alive(int(found.group(1))):
                multiprocess.mark_process_dead(int(found.group(1)), self.directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PoolMetricsServer:
    """Serves a pool's metrics on ``/metrics`` while it runs (``metrics_port``).

    Starting it sets the multiprocess directory (inherited by the pool's processes) and adds
    a ``PrometheusMiddleware`` to each broker that has none; ``close`` stops serving and
    removes the directory.

    Raises:
        OSError: the port cannot be bound, saying which and what to do.
    """

    def __init__(self, port: int, brokers: Iterable[Any], host: str = DEFAULT_METRICS_HOST) -> None:
        prometheus = require_prometheus()
        self.directory = tempfile.mkdtemp(prefix="alsek-metrics-")
        self._previous = os.environ.get(MULTIPROC_DIR_VARIABLE)
        os.environ[MULTIPROC_DIR_VARIABLE] = self.directory
        # Files in this directory from now on, in this process and those it forks.
        prometheus.values.ValueClass = prometheus.values.MultiProcessValue()
        _forget_this_process()
        for broker in brokers:
            if not any(isinstance(m, PrometheusMiddleware) for m in broker.middleware):
                broker.add_middleware(PrometheusMiddleware(bool(broker.dlq_ttl)))
        registry = prometheus.CollectorRegistry(auto_describe=False)
        registry.register(_PoolCollector(self.directory))
        try:
            self._server = MetricsServer(registry, port, host)
        except OSError as error:
            self._remove_directory()
            raise OSError(
                error.errno,
                f"Cannot serve the pool's metrics on {host}:{port}: "
                f"{error.strerror or error}; choose another metrics port",
            ) from error
        log.info("Serving this pool's metrics on %s", self._server.url)

    @property
    def url(self) -> str:
        """Where the metrics are."""
        return self._server.url

    def close(self) -> None:
        """Stop serving and remove the directory."""
        self._server.close()
        self._remove_directory()

    def _remove_directory(self) -> None:
        if self._previous is None:
            os.environ.pop(MULTIPROC_DIR_VARIABLE, None)
        else:
            os.environ[MULTIPROC_DIR_VARIABLE] = self._previous
        _forget_this_process()
        shutil.rmtree(self.directory, ignore_errors=True)
