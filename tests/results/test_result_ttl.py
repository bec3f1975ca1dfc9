"""How long results are kept: the message's ``result_ttl`` (its own, else its task's
``default_result_ttl``), then the store's ``default_ttl``; with none of them, forever."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from alsek.core.broker import Broker
from alsek.core.task import Task
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import ResultStore
from tests.polling import call
from tests.results.test_result_store import apply
from tests.status.conftest import Kit, make

STORE_TTL = 5_000


def with_default(kit: Kit) -> Any:
    """The kit's store kind on its backend, with ``default_ttl=STORE_TTL``."""
    return type(kit.store)(kit.backend, default_ttl=STORE_TTL)


def pttl(client: redis.Redis, namespace: str, name: str) -> int:
    return int(client.pttl(f"{namespace}:{name}"))


def add(a: int, b: int) -> int:
    return a + b


async def test_the_store_default_bounds_results_that_have_no_ttl(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    store, message = with_default(kit), make(result_ttl=None)
    await call(store.set, message, 1)
    left = pttl(redis_client, namespace, store.get_storage_name(message))
    assert STORE_TTL - 1_000 < left <= STORE_TTL


async def test_the_messages_own_ttl_wins_over_the_store_default(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    store, message = with_default(kit), make(result_ttl=60_000)
    await call(store.set, message, 1)
    assert pttl(redis_client, namespace, store.get_storage_name(message)) > STORE_TTL


def test_the_tasks_default_result_ttl_wins_over_the_store_default(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    backend = RedisBackend(redis_url, namespace=namespace)
    store = ResultStore(backend, default_ttl=STORE_TTL)
    task = Task(add, broker=Broker(backend), result_store=store, default_result_ttl=60_000)
    message = task.generate(args=(1, 2), submit=False)
    store.set(message, 3)
    assert pttl(redis_client, namespace, store.get_storage_name(message)) > STORE_TTL
    generous = task.generate(args=(1, 2), result_ttl=90_000, submit=False)
    assert store.ttl_for(generous) == 90_000


async def test_failure_records_follow_the_same_ttl(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    store, message = with_default(kit), make(result_ttl=None)
    apply(redis_client, store.failure_effects(message))
    name = "failures:" + store.get_storage_name(message).removeprefix("results:")
    assert STORE_TTL - 1_000 < pttl(redis_client, namespace, name) <= STORE_TTL


async def test_without_any_ttl_results_are_kept_forever(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = make(result_ttl=None)
    await call(kit.store.set, message, 1)
    assert kit.store.default_ttl is None
    assert pttl(redis_client, namespace, kit.store.get_storage_name(message)) == -1


async def test_the_default_travels_with_the_store(kit: Kit) -> None:
    store = with_default(kit)
    assert type(store).deserialize(store.serialize()).default_ttl == STORE_TTL
    settings = store.serialize()
    del settings["default_ttl"]  # written by an older alsek
    assert type(store).deserialize(settings).default_ttl is None
    assert f"default_ttl={STORE_TTL}" in repr(store)


def test_a_task_carries_its_stores_default_to_the_worker(redis_url: str, namespace: str) -> None:
    backend = RedisBackend(redis_url, namespace=namespace)
    store = ResultStore(backend, default_ttl=STORE_TTL)
    task = Task(add, broker=Broker(backend), result_store=store)
    rebuilt = Task.deserialize(task.serialize())
    assert rebuilt.result_store is not None and rebuilt.result_store.default_ttl == STORE_TTL


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "60000"])
def test_a_bad_default_ttl_is_refused(kit: Kit, bad: object) -> None:
    with pytest.raises(ValueError, match=r"default_ttl must be a number of ms >= 1.*got"):
        type(kit.store)(kit.backend, default_ttl=bad)
