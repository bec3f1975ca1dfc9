"""A pool leaves alone the messages of tasks that other pools serve on its queues."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alsek.core.broker import Broker
from alsek.core.task import task
from alsek.core.worker import ProcessWorkerPool, ThreadWorkerPool
from alsek.storage.backends.redis.sync import RedisBackend

#: Pool behaviour that depends on the server: on Redis 6.2, Valkey 8.1 and a cluster.
pytestmark = pytest.mark.servers("redis", "valkey", "cluster")


@pytest.fixture
def broker(redis_url: str, namespace: str, signal_handlers: None) -> Iterator[Broker]:
    yield Broker(RedisBackend(redis_url, namespace=namespace))


def test_each_sync_pool_leaves_the_tasks_of_the_other_mechanism(broker: Broker) -> None:
    @task(broker, queue="shared", mechanism="thread")
    def in_thread() -> None: ...

    @task(broker, queue="shared", mechanism="process")
    def in_process() -> None: ...

    thread_pool = ThreadWorkerPool(tasks=[in_thread, in_process], n_processes=1)
    process_pool = ProcessWorkerPool(tasks=[in_thread, in_process], n_processes=1)
    assert thread_pool.exclude_tasks == ("in_process",)
    assert process_pool.exclude_tasks == ("in_thread",)


def test_named_foreign_tasks_are_left_too_but_not_the_pools_own(broker: Broker) -> None:
    @task(broker, queue="shared")
    def mine() -> None: ...

    pool = ThreadWorkerPool(tasks=[mine], n_processes=1, foreign_tasks=["async_one", "mine"])
    assert pool.exclude_tasks == ("async_one",)
