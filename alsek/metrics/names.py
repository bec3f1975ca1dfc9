"""Every Prometheus metric alsek exposes: its name, type, help and labels, in one place.

Labels are bounded: queue and task names, exception types (``exception``, the class name), a
pool's kind, a live worker's id; never a uuid or an argument.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DURATION_BUCKETS_SECONDS",
    "EXPORTER_METRICS",
    "POOL_METRICS",
    "QUEUE_WAIT_BUCKETS_SECONDS",
    "MetricSpec",
]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``kind`` is ``counter``, ``gauge`` or ``histogram``."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...]


#: Buckets (seconds) of ``alsek_task_duration_seconds``: 5 ms to 10 min.
DURATION_BUCKETS_SECONDS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0
)  # fmt: skip
#: Buckets (seconds) of ``alsek_task_queue_wait_seconds``: 5 ms to 30 min.
QUEUE_WAIT_BUCKETS_SECONDS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
    1800.0,
)  # fmt: skip

_TASK = ("queue", "task")

#: What a pool counts (``--metrics-port``), by the attribute that holds it.
POOL_METRICS = {
    "started": MetricSpec(
        "alsek_tasks_started_total", "counter", "Runs started by this pool.", _TASK
    ),
    "succeeded": MetricSpec(
        "alsek_tasks_succeeded_total", "counter", "Runs that succeeded (acked).", _TASK
    ),
    "failed": MetricSpec(
        "alsek_tasks_failed_total",
        "counter",
        "Messages failed for good (dead-lettered), by exception type.",
        (*_TASK, "exception"),
    ),
    "retried": MetricSpec(
        "alsek_tasks_retried_total", "counter", "Failed runs given another attempt.", _TASK
    ),
    "dead_lettered": MetricSpec(
        "alsek_tasks_dead_lettered_total",
        "counter",
        "Messages that went to the dead-letter queue.",
        _TASK,
    ),
    "revoked": MetricSpec(
        "alsek_tasks_revoked_total",
        "counter",
        "Runs that ended because their message was revoked.",
        _TASK,
    ),
    "in_progress": MetricSpec(
        "alsek_tasks_in_progress", "gauge", "Runs under way in this pool.", _TASK
    ),
    "duration": MetricSpec(
        "alsek_task_duration_seconds", "histogram", "How long runs took.", _TASK
    ),
    "queue_wait": MetricSpec(
        "alsek_task_queue_wait_seconds",
        "histogram",
        "From a message's ready time to the start of its run.",
        _TASK,
    ),
}

#: What ``alsek metrics`` reads from Redis at each scrape.
EXPORTER_METRICS = {
    "messages": MetricSpec(
        "alsek_queue_messages",
        "gauge",
        "Messages per queue and state (ready, delayed, running, dead).",
        ("queue", "state"),
    ),
    "paused": MetricSpec(
        "alsek_queue_paused", "gauge", "Whether the queue is paused (1) or not (0).", ("queue",)
    ),
    "oldest_ready": MetricSpec(
        "alsek_queue_oldest_ready_seconds",
        "gauge",
        "How long the oldest ready message of the queue has waited (0: none ready).",
        ("queue",),
    ),
    "workers": MetricSpec(
        "alsek_workers", "gauge", "Live worker pools by kind (thread, process, async).", ("kind",)
    ),
    "slots": MetricSpec(
        "alsek_worker_slots",
        "gauge",
        "Slots of each live worker pool, busy or idle (at its last heartbeat).",
        ("worker", "state"),
    ),
    "up": MetricSpec(
        "alsek_redis_up",
        "gauge",
        "Whether the last scrape could read Redis (1) or not (0).",
        (),
    ),
}
