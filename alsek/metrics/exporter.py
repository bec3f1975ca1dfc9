"""``alsek metrics``: a Prometheus exporter that reads Redis at scrape time.

Each scrape asks ``alsek.admin`` for the queues' counts and the live workers (a few pipelined
round trips, never a SCAN, whatever the backlog) and turns them into gauges. A Redis that cannot
be read gives ``alsek_redis_up 0`` and no other sample, rather than a failed scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from alsek.admin.types import QueueStats, WorkerInfo
from alsek.metrics import require_prometheus
from alsek.metrics.names import EXPORTER_METRICS, MetricSpec

__all__ = ["WORKER_KINDS", "RedisCollector"]

log = logging.getLogger(__name__)

#: The kinds of worker pools, each reported even when none is alive (0).
WORKER_KINDS = ("thread", "process", "async")
#: The states ``alsek_queue_messages`` reports.
MESSAGE_STATES = ("ready", "delayed", "running", "dead")


def _family(spec: MetricSpec) -> Any:
    metrics_core = require_prometheus().metrics_core
    return metrics_core.GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


class RedisCollector:
    """A prometheus-client collector whose samples are read from Redis when scraped.

    Args:
        read: calls an ``Admin`` method by name and returns its answer (``Connection.call`` of
            the CLI; an async admin's call is run to completion there).
    """

    def __init__(self, read: Callable[[str], Any]) -> None:
        self._read = read
        self._lock = threading.Lock()  # scrapes may overlap; one admin reads at a time

    def describe(self) -> list[Any]:
        """Nothing to describe in advance: registering must not read Redis."""
        return []

    def collect(self) -> Iterator[Any]:
        """The samples of this scrape."""
        up = _family(EXPORTER_METRICS["up"])
        try:
            with self._lock:
                queues: list[QueueStats] = self._read("queues")
                workers: list[WorkerInfo] = self._read("workers")
        except Exception as error:  # any failure to read is reported as "down", then logged
            log.warning("Cannot read Redis for this scrape: %s: %s", type(error).__name__, error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from queue_families(queues)
        yield from worker_families(workers)


def queue_families(queues: list[QueueStats]) -> Iterator[Any]:
    """``alsek_queue_messages``, ``alsek_queue_paused`` and ``alsek_queue_oldest_ready_seconds``."""
    messages = _family(EXPORTER_METRICS["messages"])
    paused = _family(EXPORTER_METRICS["paused"])
    oldest = _family(EXPORTER_METRICS["oldest_ready"])
    for stats in queues:
        for state in MESSAGE_STATES:
            messages.add_metric([stats.queue, state], getattr(stats, state))
        paused.add_metric([stats.queue], int(stats.paused))
        oldest.add_metric([stats.queue], (stats.oldest_ready_ms or 0) / 1000)
    yield from (messages, paused, oldest)


def worker_families(workers: list[WorkerInfo]) -> Iterator[Any]:
    """``alsek_workers`` (live pools by kind) and ``alsek_worker_slots`` (busy, idle)."""
    alive = [worker for worker in workers if worker.alive]
    kinds = _family(EXPORTER_METRICS["workers"])
    for kind in sorted({*WORKER_KINDS, *(worker.kind for worker in alive)}):
        kinds.add_metric([kind], sum(1 for worker in alive if worker.kind == kind))
    slots = _family(EXPORTER_METRICS["slots"])
    for worker in alive:
        busy = min(worker.busy, worker.slots)
        slots.add_metric([worker.id, "busy"], busy)
        slots.add_metric([worker.id, "idle"], worker.slots - busy)
    yield from (kinds, slots)
