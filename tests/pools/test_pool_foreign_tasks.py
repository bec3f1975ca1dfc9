"""A pool claims only the messages of the tasks it runs: those of other tasks on its queues
(another mechanism, another pool, another deploy) are left queued."""

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


def test_each_sync_pool_claims_only_the_tasks_of_its_mechanism(broker: Broker) -> None:
    @task(broker, queue="shared", mechanism="thread")
    def in_thread() -> None: ...

    @task(broker, queue="shared", mechanism="process")
    def in_process() -> None: ...

    thread_pool = ThreadWorkerPool(tasks=[in_thread, in_process], n_processes=1)
    process_pool = ProcessWorkerPool(tasks=[in_thread, in_process], n_processes=1)
    assert [(s.queue, s.tasks) for s in thread_pool._sources()] == [("shared", ("in_thread",))]
    assert [(s.queue, s.tasks) for s in process_pool._sources()] == [("shared", ("in_process",))]


def test_a_pool_names_its_tasks_in_every_queue_it_consumes(broker: Broker) -> None:
    @task(broker, queue="a")
    def first() -> None: ...

    @task(broker, queue="b")
    def second() -> None: ...

    pool = ThreadWorkerPool(tasks=[first, second], n_processes=1)
    # A message of ``first`` generated into queue "b" is still claimed there.
    sources = pool._sources()
    assert [(s.queue, s.tasks, s.ordered) for s in sources] == [
        ("a", ("first", "second"), False),
        ("b", ("first", "second"), False),
    ]
