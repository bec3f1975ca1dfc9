"""A pool's ``--metrics-port``: what its processes count, scraped over HTTP while it runs, for
every pool kind (a thread pool's process groups, a process pool's warm children, an asyncio
pool), with the names, labels and figures the docs list."""

from __future__ import annotations

import importlib
import signal
from collections.abc import Iterator
from types import ModuleType

import pytest
from opsfixtures import Pools

from alsek.admin import Admin
from alsek.core.message import Message
from tests.metrics.scraping import Samples, announced_url, scrape
from tests.polling import eventually
from tests.subprocesses import SessionProcess


def metrics_url(pool: SessionProcess) -> str:
    """The URL the pool logged when it started serving its metrics."""
    return announced_url(pool, pool.stderr_path)


@pytest.fixture
def work(metrics_env: dict[str, str]) -> Iterator[ModuleType]:
    module = importlib.reload(importlib.import_module("metricswork"))
    yield module
    module.broker.backend.conn.close()


def task_labels(kind: str, name: str) -> tuple[tuple[str, str], ...]:
    return (("queue", kind), ("task", f"{kind}_{name}"))


def value(samples: Samples, name: str, kind: str, task: str, **extra: str) -> float:
    labels = tuple(sorted({**dict(task_labels(kind, task)), **extra}.items()))
    return samples.get((name, labels), 0.0)


def submit(work: ModuleType, kind: str, name: str, *args: object) -> Message:
    """Submit through the sync twin of an async task (its broker is sync here)."""
    task = getattr(work, f"{kind}_{name}")
    if kind == "async":
        backoff = dict(task.backoff.settings)
        message = Message(task.name, queue=kind, args=args, backoff_settings=backoff)
        work.broker.submit(message)
        return message
    return task.generate(args=args)


@pytest.mark.slow  # a pool in a subprocess per kind
@pytest.mark.parametrize("kind", ["thread", "process", "async"])
def test_a_pool_serves_what_its_workers_counted(
    kind: str, work: ModuleType, metrics_env: dict[str, str], pools: Pools
) -> None:
    pool = pools.start(kind, "--metrics-port", "0", package="metricswork")
    url = metrics_url(pool)
    for number in range(3):
        submit(work, kind, "ok", number)
    submit(work, kind, "flaky")
    submit(work, kind, "doomed")

    def all_counted() -> Samples | None:
        # Each process flushes its own counts: in the process pool the flaky message's first
        # attempt (retried) may have run in another child than its second (succeeded), whose
        # flush can come first. A flush writes its outcomes last, so once the retry shows,
        # that attempt's start and timings show too.
        samples = scrape(url)
        done = (
            value(samples, "alsek_tasks_succeeded_total", kind, "ok") == 3
            and value(samples, "alsek_tasks_succeeded_total", kind, "flaky") == 1
            and value(samples, "alsek_tasks_retried_total", kind, "flaky") == 1
            and value(samples, "alsek_tasks_dead_lettered_total", kind, "doomed") == 1
        )
        return samples if done else None

    samples = eventually(all_counted, 60, "every outcome counted")
    assert value(samples, "alsek_tasks_started_total", kind, "ok") == 3
    assert value(samples, "alsek_tasks_started_total", kind, "flaky") == 2
    assert value(samples, "alsek_tasks_failed_total", kind, "doomed", exception="KeyError") == 1
    assert value(samples, "alsek_tasks_failed_total", kind, "flaky", exception="RuntimeError") == 0
    assert value(samples, "alsek_task_duration_seconds_count", kind, "ok") == 3
    assert value(samples, "alsek_task_queue_wait_seconds_count", kind, "flaky") == 2
    longest = value(samples, "alsek_task_queue_wait_seconds_bucket", kind, "ok", le="1800.0")
    assert longest == 3
    assert value(samples, "alsek_tasks_in_progress", kind, "ok") == 0
    # No uuid or argument in any label.
    assert all(
        set(dict(labels)) <= {"queue", "task", "exception", "le"} for _, labels in samples
    ), sorted({tuple(dict(labels)) for _, labels in samples})

    # A run under way is in progress; revoked, it is counted as such and no longer in progress.
    slow = submit(work, kind, "slow")
    eventually(
        lambda: value(scrape(url), "alsek_tasks_in_progress", kind, "slow") == 1,
        30,
        "the slow run in progress",
    )
    assert Admin(work.broker).revoke(slow.uuid)

    def revoked() -> bool:
        samples = scrape(url)
        return (
            value(samples, "alsek_tasks_revoked_total", kind, "slow") == 1
            and value(samples, "alsek_tasks_in_progress", kind, "slow") == 0
        )

    eventually(revoked, 30, "the revoked run counted and no longer in progress")
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0, pool.output()


@pytest.mark.slow  # a pool in a subprocess
def test_a_taken_metrics_port_stops_the_pool_with_one_line(work: ModuleType, pools: Pools) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pool = pools.start("thread", "--metrics-port", str(port), package="metricswork")
        assert pool.wait(30) == 1
    lines = [line for line in pool.stderr().splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and f":{port}" in lines[0] and "metrics port" in lines[0], pool.output()
