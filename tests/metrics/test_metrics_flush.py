"""``PrometheusMiddleware`` counts in plain numbers and writes them to prometheus-client every
``flush_interval`` and when a pool stops: what a scrape of the default registry (an
application's own ``/metrics``) shows after an interval, and at once after a clean stop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alsek import Broker, task
from alsek.metrics import pool as pool_metrics
from alsek.metrics.pool import PrometheusMiddleware
from alsek.storage.backends import RedisBackend
from alsek.testing import InProcessWorker
from tests.polling import eventually

#: Messages each test runs.
RUNS = 5
#: How long a test waits for what happens within a second on a healthy machine.
PATIENCE_SECONDS = 30


def scrape(queue: str) -> dict[str, float]:
    """The default registry as a scrape sees it: ``name`` -> value, for ``queue``'s series."""
    text = generate_latest(REGISTRY).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("queue") == queue and sample.labels.get("le") in (None, "+Inf")
    }


@pytest.fixture
def fresh_tally() -> Iterator[None]:
    """This process's tally made anew (with the flush interval of the test's middleware)."""
    pool_metrics._forget_this_process()
    yield
    pool_metrics._forget_this_process()


def counted(queue: str) -> dict[str, float]:
    found = scrape(queue)
    return {
        name: found.get(name, 0.0)
        for name in (
            "alsek_tasks_started_total",
            "alsek_tasks_succeeded_total",
            "alsek_task_duration_seconds_count",
            "alsek_task_queue_wait_seconds_count",
            "alsek_tasks_in_progress",
        )
    }


EXPECTED = {
    "alsek_tasks_started_total": RUNS,
    "alsek_tasks_succeeded_total": RUNS,
    "alsek_task_duration_seconds_count": RUNS,
    "alsek_task_queue_wait_seconds_count": RUNS,
    "alsek_tasks_in_progress": 0,
}


def counting_broker(redis_url: str, namespace: str, flush_interval: float) -> Broker:
    broker = Broker(RedisBackend(redis_url, namespace=namespace))
    broker.add_middleware(PrometheusMiddleware(flush_interval=flush_interval))
    return broker


@contextmanager
def ran_messages(broker: Broker) -> Iterator[str]:
    """Run ``RUNS`` messages of a task of its own queue in an in-process pool; yields the queue
    while the pool still runs (it stops when the block ends)."""
    queue = f"flush-{uuid.uuid4().hex[:8]}"

    @task(broker, queue=queue, max_retries=0)
    def ok(x: int) -> int:
        return x

    with InProcessWorker(ok) as worker:
        for number in range(RUNS):
            ok.generate(args=(number,))
        worker.join()
        yield queue


def test_a_scrape_shows_the_counts_after_a_flush_interval(
    redis_url: str, namespace: str, fresh_tally: None
) -> None:
    broker = counting_broker(redis_url, namespace, flush_interval=0.2)
    with ran_messages(broker) as queue:
        # The pool still runs: only the flush thread writes the counts.
        eventually(lambda: counted(queue) == EXPECTED, PATIENCE_SECONDS, "the counts flushed")
    broker.backend.conn.close()


def test_a_clean_stop_writes_every_count(redis_url: str, namespace: str, fresh_tally: None) -> None:
    broker = counting_broker(redis_url, namespace, flush_interval=3600)
    with ran_messages(broker) as queue:
        # Counted, not yet written: the interval is an hour.
        assert counted(queue)["alsek_tasks_succeeded_total"] == 0
    # Stopped: worker_shutdown wrote what was counted, with no wait.
    assert counted(queue) == EXPECTED
    broker.backend.conn.close()


@pytest.mark.parametrize("interval", [0, -1, "1", True, float("nan")])
def test_a_flush_interval_must_be_a_positive_number(interval: object) -> None:
    with pytest.raises(ValueError, match="flush_interval must be a number of seconds above 0"):
        PrometheusMiddleware(flush_interval=interval)  # type: ignore[arg-type]
