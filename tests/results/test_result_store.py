"""ResultStore and AsyncResultStore on a real Redis: each body runs sync and async."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from alsek.core.broker import ClaimSource
from alsek.core.broker.effects import effect_commands
from alsek.core.message import Message
from alsek.exceptions import TaskFailedError
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import AsyncResultStore, ResultStore
from tests.polling import call, eventually, until
from tests.pubsub import async_subscriber_count, subscriber_count
from tests.status.conftest import Kit, make

OWNER = "lock:test-host:process:1:lease:abc"


def apply(client: redis.Redis, effects: list[Any]) -> None:
    """Apply effects the way a broker script would (here: one transaction)."""
    pipe = client.pipeline()
    for command in effect_commands(effects):
        pipe.execute_command(*command)
    pipe.execute()


def chain() -> tuple[Message, Message, Message]:
    """A root message whose callback chain is two more messages, in other queues."""
    last = make(task="c", queue="q3")
    middle = make(task="b", queue="q2", callback_message_data=last.data)
    root = make(task="a", queue="q1", callback_message_data=middle.data)
    return root, middle, last


def next_in_chain(parent: Message, result: Any) -> Message:
    """The message a worker submits when ``parent`` succeeds (spec §13.5)."""
    assert parent.callback_message_data is not None
    return Message(
        **{
            **parent.callback_message_data,
            "previous_result": result,
            "progenitor_uuid": parent.progenitor_uuid or parent.uuid,
            "previous_message_uuid": parent.uuid,
        }
    )


# -- names and construction ---------------------------------------------------------------------


def test_storage_names_carry_the_queue_hash_tag() -> None:
    root = make(queue="q1", uuid="r")
    child = make(queue="q2", uuid="c", progenitor_uuid="r")
    assert ResultStore.get_storage_name(root) == "results:{q1}:r"
    assert ResultStore.get_storage_name(child) == "results:{q2}:r:descendants:c"
    assert ResultStore._extract_uuid("results:{q2}:r:descendants:c") == "c"


def test_a_message_without_uuid_is_refused() -> None:
    with pytest.raises(ValueError, match="uuid"):
        ResultStore.get_storage_name(SimpleNamespace(uuid=None, queue="q"))


def test_backend_kind_is_checked(redis_url: str) -> None:
    with pytest.raises(AssertionError, match="Backend is not async"):
        AsyncResultStore(RedisBackend(redis_url))
    with pytest.raises(AssertionError, match="AsyncResultStore"):
        ResultStore(AsyncRedisBackend(redis_url))


async def test_serialize_round_trip(kit: Kit) -> None:
    rebuilt = type(kit.store).deserialize(kit.store.serialize())
    assert type(rebuilt) is type(kit.store)
    message = make()
    await call(kit.store.set, message, [1, 2])
    assert await call(rebuilt.get, message) == [1, 2]


# -- set / get / exists -------------------------------------------------------------------------


async def test_set_then_get_exists_and_metadata(kit: Kit) -> None:
    message = make()
    assert await call(kit.store.exists, message) is False
    await call(kit.store.set, message, {"answer": 42})
    assert await call(kit.store.exists, message) is True
    assert await call(kit.store.get, message) == {"answer": 42}
    record = await call(kit.store.get, message, with_metadata=True)
    assert record["result"] == {"answer": 42} and record["uuid"] == message.uuid
    assert record["timestamp"] > 0


async def test_results_honour_result_ttl_and_none_keeps_them(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    timed, kept = make(result_ttl=5_000), make(result_ttl=None)
    await call(kit.store.set, timed, 1)
    await call(kit.store.set, kept, 2)
    assert 4_000 < redis_client.pttl(f"{namespace}:{kit.store.get_storage_name(timed)}") <= 5_000
    assert redis_client.pttl(f"{namespace}:{kit.store.get_storage_name(kept)}") == -1


async def test_set_nx_keeps_the_first_result(kit: Kit) -> None:
    message = make()
    await call(kit.store.set, message, "first")
    with pytest.raises(KeyError, match="already exists"):
        await call(kit.store.set, message, "second")
    assert await call(kit.store.get, message) == "first"
    await call(kit.store.set, message, "third", nx=False)
    assert await call(kit.store.get, message) == "third"


async def test_an_unserializable_result_raises_type_error_and_writes_nothing(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = make()
    with pytest.raises(TypeError, match=f"result of message {message.uuid}"):
        await call(kit.store.set, message, object())
    with pytest.raises(TypeError):
        kit.store.effects(message, {1, 2})
    assert list(redis_client.scan_iter(match=f"{namespace}:*")) == []


async def test_get_without_a_result(kit: Kit) -> None:
    message = make()
    with pytest.raises(KeyError, match=f"No results for {message.uuid}"):
        await call(kit.store.get, message)
    with pytest.raises(TimeoutError, match=message.uuid):
        await call(kit.store.get, message, timeout=100)


async def test_get_keep_false_deletes_after_reading(kit: Kit) -> None:
    message = make()
    await call(kit.store.set, message, 7)
    assert await call(kit.store.get, message, keep=False) == 7
    assert await call(kit.store.exists, message) is False


def test_get_with_timeout_wakes_on_arrival_from_a_non_main_thread(sync_kit: Kit) -> None:
    store, message = sync_kit.store, make()
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(store.get(message, timeout=30_000)))
    thread.start()
    channel = store._channel(store.get_storage_name(message))
    eventually(lambda: subscriber_count(sync_kit.backend.conn, channel) == 1)
    store.set(message, "arrived")
    thread.join(30)
    assert got == ["arrived"]


async def test_async_get_with_timeout_wakes_on_arrival(redis_url: str, namespace: str) -> None:
    backend = AsyncRedisBackend(redis_url, namespace=namespace)
    store, message = AsyncResultStore(backend), make()
    waiting = asyncio.create_task(store.get(message, timeout=30_000))
    channel = store._channel(store.get_storage_name(message))
    await until(lambda: _subscribed(backend, channel))
    await store.set(message, "arrived")
    assert await asyncio.wait_for(waiting, 30) == "arrived"
    await backend.conn.aclose()


async def _subscribed(backend: AsyncRedisBackend, channel: str) -> bool:
    return bool(await async_subscriber_count(backend.conn, channel))


@pytest.mark.timeout(240)
async def test_a_thousand_async_waiters_all_wake(redis_url: str, namespace: str) -> None:
    # Bounds for a loaded machine: on a cluster the thousand subscriptions alone take ~15 s.
    backend = AsyncRedisBackend(redis_url, namespace=namespace)
    store = AsyncResultStore(backend)
    messages = [make() for _ in range(1_000)]
    waiting = [asyncio.create_task(store.get(m, timeout=180_000)) for m in messages]
    for index, message in enumerate(messages):
        await store.set(message, index)
    assert await asyncio.wait_for(asyncio.gather(*waiting), 200) == list(range(1_000))
    await backend.conn.aclose()


# -- chains -------------------------------------------------------------------------------------


async def test_a_three_step_chain_written_by_acks_comes_back_in_chain_order(
    kit: Kit, redis_client: redis.Redis
) -> None:
    root, _, _ = chain()
    current: Message | None = root
    for step in range(3):
        assert current is not None
        await call(kit.broker.submit, current)
        [claimed] = (await call(kit.broker.claim, [ClaimSource(current.queue)], 1, OWNER)).messages
        await call(kit.broker.ack, claimed, effects=kit.store.effects(claimed, f"r{step}"))
        current = next_in_chain(claimed, f"r{step}") if claimed.callback_message_data else None
    scans_before = _scan_calls(redis_client)
    assert await call(kit.store.get, root, descendants=True) == ["r0", "r1", "r2"]
    assert await call(kit.store.exists, root, descendants=True) is True
    assert _scan_calls(redis_client) == scans_before, "the known chain needs no SCAN"


def _scan_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


async def test_chain_descendants_are_found_by_scan_when_the_chain_is_unknown(
    kit: Kit,
) -> None:
    root, _, _ = chain()
    middle = next_in_chain(root, "r0")
    last = next_in_chain(middle, "r1")
    for message, result in ((root, "r0"), (middle, "r1"), (last, "r2")):
        await call(kit.store.set, message, result)
    bare_root = Message(**{**root.data, "callback_message_data": None})
    records = await call(kit.store.get, bare_root, descendants=True, with_metadata=True)
    assert [record["result"] for record in records] == ["r0", "r1", "r2"]
    assert [r["timestamp"] for r in records] == sorted(r["timestamp"] for r in records)
    assert [record["uuid"] for record in records] == [root.uuid, middle.uuid, last.uuid]


async def test_exists_with_descendants_is_false_until_every_result_is_there(kit: Kit) -> None:
    root, _, _ = chain()
    bare = make()
    assert await call(kit.store.exists, bare, descendants=True) is False  # nothing found
    assert await call(kit.store.exists, root, descendants=True) is False
    await call(kit.store.set, root, "r0")
    assert await call(kit.store.exists, root, descendants=True) is False
    middle = next_in_chain(root, "r0")
    await call(kit.store.set, middle, "r1")
    await call(kit.store.set, next_in_chain(middle, "r1"), "r2")
    assert await call(kit.store.exists, root, descendants=True) is True


async def test_get_with_descendants_waits_for_the_whole_chain(kit: Kit) -> None:
    root, _, _ = chain()
    middle = next_in_chain(root, "r0")
    last = next_in_chain(middle, "r1")
    await call(kit.store.set, root, "r0")
    await call(kit.store.set, middle, "r1")
    with pytest.raises(TimeoutError):
        await call(kit.store.get, root, descendants=True, timeout=100)
    await call(kit.store.set, last, "r2")
    assert await call(kit.store.get, root, descendants=True, timeout=100) == ["r0", "r1", "r2"]


async def test_a_chain_whose_middle_failed_for_good_raises_task_failed(
    kit: Kit, redis_client: redis.Redis
) -> None:
    root, _, _ = chain()
    await call(kit.store.set, root, "r0")
    middle = next_in_chain(root, "r0")
    middle.update(exception_details={"name": "KeyError", "text": "'missing'"})
    apply(redis_client, kit.store.failure_effects(middle))
    with pytest.raises(TaskFailedError, match=rf"{middle.uuid}.*KeyError: 'missing'"):
        await call(kit.store.get, root, descendants=True, timeout=10_000)


async def test_a_result_written_after_a_failure_wins(kit: Kit, redis_client: redis.Redis) -> None:
    message = make()
    message.update(exception_details={"name": "ValueError", "text": "first try"})
    apply(redis_client, kit.store.failure_effects(message))
    with pytest.raises(TaskFailedError):
        await call(kit.store.get, message)
    apply(redis_client, kit.store.effects(message, "requeued and done"))
    assert await call(kit.store.get, message) == "requeued and done"


# -- delete -------------------------------------------------------------------------------------


async def test_delete_returns_how_many_names_it_processed(kit: Kit) -> None:
    root, _, _ = chain()
    middle = next_in_chain(root, "r0")
    for message, result in ((root, "r0"), (middle, "r1"), (next_in_chain(middle, "r1"), "r2")):
        await call(kit.store.set, message, result)
    assert await call(kit.store.delete, root) == 3  # descendants by default
    assert await call(kit.store.exists, root) is False
    assert await call(kit.store.exists, middle) is False


async def test_delete_of_missing_results(kit: Kit) -> None:
    message = make()
    with pytest.raises(KeyError, match=message.uuid):
        await call(kit.store.delete, message, descendants=False)
    assert await call(kit.store.delete, message, descendants=False, missing_ok=True) == 1


async def test_delete_removes_a_failure_record_too(kit: Kit, redis_client: redis.Redis) -> None:
    message = make()
    apply(redis_client, kit.store.failure_effects(message))
    assert await call(kit.store.delete, message, descendants=False) == 1
    with pytest.raises(KeyError):
        await call(kit.store.get, message)


class _NoPubSubBackend(RedisBackend):
    SUPPORTS_PUBSUB = False


def test_get_with_timeout_polls_a_backend_without_pubsub(redis_url: str, namespace: str) -> None:
    store, message = ResultStore(_NoPubSubBackend(redis_url, namespace=namespace)), make()
    writer = threading.Timer(0.2, store.set, (message, "polled"))
    writer.start()
    assert store.get(message, timeout=10_000) == "polled"
    writer.join()
