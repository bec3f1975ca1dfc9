"""StatusTracker and AsyncStatusTracker on a real Redis: each body runs sync and async."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from alsek.core.status import (
    TERMINAL_TASK_STATUSES,
    AsyncStatusTracker,
    StatusTracker,
    StatusUpdate,
    TaskStatus,
)
from alsek.core.steps.sending import send
from alsek.exceptions import ValidationError
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend
from tests.polling import call, eventually, until
from tests.pubsub import (
    Spy,
    async_subscriber_count,
    kill_subscriber_connections,
    subscriber_connections,
    subscriber_count,
)
from tests.status.conftest import Kit, close, collect, first, make

# -- types and names ----------------------------------------------------------------------------


def test_status_names_and_terminal_set() -> None:
    assert [s.value for s in TaskStatus] == [0, 1, 2, 3, 4, 5]
    assert TERMINAL_TASK_STATUSES == (TaskStatus.FAILED, TaskStatus.SUCCEEDED)
    update = StatusUpdate(TaskStatus.RUNNING, {"x": 1})
    assert update.as_dict() == {"value": "RUNNING", "details": {"x": 1}}


def test_storage_and_pubsub_names_carry_the_queue_hash_tag() -> None:
    message = make(task="t", queue="q", uuid="u-1")
    assert StatusTracker.get_storage_name(message) == "status:{q}:t:u-1"
    assert StatusTracker.get_pubsub_name(message) == "channel:{q}:t:u-1"


@pytest.mark.parametrize("missing", ["queue", "task_name", "uuid"])
def test_names_need_queue_task_and_uuid(missing: str) -> None:
    parts = {"queue": "q", "task_name": "t", "uuid": "u", missing: ""}
    with pytest.raises(ValidationError, match=missing):
        StatusTracker.get_storage_name(SimpleNamespace(**parts))
    with pytest.raises(ValidationError, match=missing):
        StatusTracker.get_pubsub_name(SimpleNamespace(**parts))


def test_channel_is_namespaced(sync_kit: Kit, namespace: str) -> None:
    message = make()
    assert sync_kit.tracker._channel(message) == f"{namespace}:channel:{{q}}:work:{message.uuid}"


# -- construction -------------------------------------------------------------------------------


class _NoPubSubBackend(RedisBackend):
    SUPPORTS_PUBSUB = False


def test_enable_pubsub_defaults_to_the_backend_and_refuses_a_backend_without_it(
    redis_url: str,
) -> None:
    assert StatusTracker(RedisBackend(redis_url)).enable_pubsub is True
    assert StatusTracker(_NoPubSubBackend(redis_url)).enable_pubsub is False
    with pytest.raises(AssertionError, match="PUBSUB"):
        StatusTracker(_NoPubSubBackend(redis_url), enable_pubsub=True)


def test_backend_kind_is_checked(redis_url: str) -> None:
    with pytest.raises(AssertionError, match="Backend is not async"):
        AsyncStatusTracker(RedisBackend(redis_url))
    with pytest.raises(AssertionError, match="AsyncStatusTracker"):
        StatusTracker(AsyncRedisBackend(redis_url))


@pytest.mark.parametrize("ttl", [0, -5, 1.5, True])
def test_ttl_must_be_positive_ms_or_none(redis_url: str, ttl: Any) -> None:
    with pytest.raises(ValueError, match="ttl"):
        StatusTracker(RedisBackend(redis_url), ttl=ttl)


async def test_serialize_round_trip(kit: Kit) -> None:
    tracker = type(kit.tracker)(kit.backend, ttl=1234, enable_pubsub=False)
    rebuilt = type(kit.tracker).deserialize(tracker.serialize())
    assert type(rebuilt) is type(tracker)
    assert (rebuilt.ttl, rebuilt.enable_pubsub) == (1234, False)
    assert rebuilt.backend.namespace == kit.backend.namespace
    message = make()
    await call(tracker.set, message, TaskStatus.RUNNING)
    assert (await call(rebuilt.get, message)).value is TaskStatus.RUNNING


# -- set / get / exists / delete ----------------------------------------------------------------


async def test_set_then_get_and_exists(kit: Kit) -> None:
    message = make()
    assert await call(kit.tracker.exists, message) is False
    await call(kit.tracker.set, message, TaskStatus.RUNNING, details={"step": 2})
    assert await call(kit.tracker.exists, message) is True
    assert await call(kit.tracker.get, message) == StatusUpdate(TaskStatus.RUNNING, {"step": 2})


async def test_get_of_a_missing_status_raises_key_error(kit: Kit) -> None:
    with pytest.raises(KeyError, match="No status found"):
        await call(kit.tracker.get, make())


async def test_the_stored_value_uses_the_status_name(kit: Kit, redis_client: redis.Redis) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.RETRYING)
    stored = kit.backend.serializer.reverse(redis_client.get(kit.tracker._key(message)))
    assert stored["value"] == "RETRYING" and stored["details"] is None and stored["at"] > 0


async def test_every_write_sets_the_ttl_even_when_the_first_is_not_submitted(
    kit: Kit, redis_client: redis.Redis
) -> None:
    message = make()
    key = kit.tracker._key(message)
    await call(kit.tracker.set, message, TaskStatus.RUNNING)  # a callback's first status
    assert kit.tracker.ttl - 5000 < redis_client.pttl(key) <= kit.tracker.ttl
    redis_client.pexpire(key, 1000)
    await call(kit.tracker.set, message, TaskStatus.SUCCEEDED)
    assert redis_client.pttl(key) > kit.tracker.ttl - 5000  # ttl after the *last* write


async def test_ttl_none_keeps_statuses_forever(kit: Kit, redis_client: redis.Redis) -> None:
    tracker = type(kit.tracker)(kit.backend, ttl=None)
    message = make()
    await call(tracker.set, message, TaskStatus.SUBMITTED)
    redis_client.pexpire(tracker._key(message), 100_000)
    await call(tracker.set, message, TaskStatus.RUNNING)
    assert redis_client.pttl(tracker._key(message)) == -1


async def test_in_flight_statuses_are_indexed_and_others_leave_the_index(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = make()
    index = f"{namespace}:status:{{q}}:live"
    member = f"work:{message.uuid}"
    for status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING, TaskStatus.RETRYING):
        await call(kit.tracker.set, message, status)
        assert redis_client.zscore(index, member) is not None
    await call(kit.tracker.set, message, TaskStatus.FAILED)
    assert redis_client.zscore(index, member) is None


async def test_unserializable_details_raise_type_error_and_write_nothing(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = make()
    with pytest.raises(TypeError, match="cannot be serialized"):
        await call(kit.tracker.set, message, TaskStatus.RUNNING, details=object())
    with pytest.raises(TypeError):
        kit.tracker.effects(message, TaskStatus.RUNNING, details={1, 2})
    assert list(redis_client.scan_iter(match=f"{namespace}:*")) == []


async def test_set_refuses_something_that_is_not_a_status(kit: Kit) -> None:
    with pytest.raises(ValueError, match="TaskStatus"):
        await call(kit.tracker.set, make(), "RUNNING")


async def test_delete_a_terminal_status(kit: Kit, redis_client: redis.Redis) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.SUCCEEDED)
    await call(kit.tracker.delete, message)
    assert await call(kit.tracker.exists, message) is False


async def test_delete_with_check_refuses_a_status_in_flight(kit: Kit) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.RUNNING)
    with pytest.raises(ValidationError, match=r"RUNNING.*not terminal"):
        await call(kit.tracker.delete, message)
    assert await call(kit.tracker.exists, message) is True
    await call(kit.tracker.delete, message, check=False)
    assert await call(kit.tracker.exists, message) is False


async def test_delete_removes_the_index_entry(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.SUBMITTED)
    await call(kit.tracker.delete, message, check=False)
    assert redis_client.zcard(f"{namespace}:status:{{q}}:live") == 0


async def test_delete_of_a_missing_status_raises_key_error(kit: Kit) -> None:
    with pytest.raises(KeyError):
        await call(kit.tracker.delete, make(), check=False)
    with pytest.raises(KeyError):
        await call(kit.tracker.delete, make())


# -- listening ----------------------------------------------------------------------------------


async def test_a_listener_that_starts_after_the_end_still_gets_the_terminal_status(
    kit: Kit,
) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.RUNNING)
    await call(kit.tracker.set, message, TaskStatus.SUCCEEDED, details="done")
    updates = await collect(kit.tracker.listen_to_updates(message))
    assert updates == [StatusUpdate(TaskStatus.SUCCEEDED, "done")]


def test_listener_gets_the_snapshot_then_every_later_update_in_order(sync_kit: Kit) -> None:
    tracker, message = sync_kit.tracker, make()
    tracker.set(message, TaskStatus.SUBMITTED)
    updates = tracker.listen_to_updates(message)
    assert next(updates).value is TaskStatus.SUBMITTED  # subscribed from here on
    for status in (TaskStatus.RUNNING, TaskStatus.RETRYING, TaskStatus.RUNNING):
        tracker.set(message, status)
    tracker.set(message, TaskStatus.FAILED)
    rest = [update.value for update in updates]
    assert rest == [TaskStatus.RUNNING, TaskStatus.RETRYING, TaskStatus.RUNNING, TaskStatus.FAILED]


async def test_async_listener_gets_the_snapshot_then_later_updates(
    redis_url: str, namespace: str
) -> None:
    backend = AsyncRedisBackend(redis_url, namespace=namespace)
    tracker, message = AsyncStatusTracker(backend), make()
    await tracker.set(message, TaskStatus.SUBMITTED)
    updates = tracker.listen_to_updates(message)
    assert (await updates.__anext__()).value is TaskStatus.SUBMITTED
    await tracker.set(message, TaskStatus.RUNNING)
    await tracker.set(message, TaskStatus.SUCCEEDED)
    assert [u.value for u in await collect(updates)] == [TaskStatus.RUNNING, TaskStatus.SUCCEEDED]
    await backend.conn.aclose()


def test_listener_with_no_status_yet_waits_for_the_first_write(sync_kit: Kit) -> None:
    tracker, message = sync_kit.tracker, make()
    got: list[StatusUpdate] = []
    spy = Spy(sync_kit.backend.conn, tracker._channel(message))
    thread = threading.Thread(target=lambda: got.extend(tracker.listen_to_updates(message)))
    thread.start()
    # The listener has read its (empty) snapshot once its sync token is published.
    eventually(lambda: str(spy.next_data(0.1)).startswith("~sync"))
    spy.close()
    tracker.set(message, TaskStatus.RUNNING)
    tracker.set(message, TaskStatus.SUCCEEDED)
    thread.join(10)
    assert [u.value for u in got] == [TaskStatus.RUNNING, TaskStatus.SUCCEEDED]


def test_no_update_is_lost_or_repeated_while_a_listener_starts_mid_stream(
    sync_kit: Kit,
) -> None:
    tracker, message = sync_kit.tracker, make()
    tracker.set(message, TaskStatus.RUNNING, details=0)
    started = threading.Event()

    def writer() -> None:
        for step in range(1, 400):
            tracker.set(message, TaskStatus.RUNNING, details=step)
            if step == 20:
                started.set()
        tracker.set(message, TaskStatus.SUCCEEDED, details=400)

    thread = threading.Thread(target=writer)
    thread.start()
    started.wait(10)
    seen = [update.details for update in tracker.listen_to_updates(message)]
    thread.join(10)
    assert seen[-1] == 400
    assert seen == list(range(seen[0], 401)), "every step exactly once, in order"


async def test_auto_exit_false_keeps_listening_after_a_terminal_status(kit: Kit) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.SUCCEEDED)
    updates = kit.tracker.listen_to_updates(message, auto_exit=False)
    assert (await first(updates)).value is TaskStatus.SUCCEEDED
    await call(kit.tracker.set, message, TaskStatus.RUNNING)  # a redelivery, say
    assert (await first(updates)).value is TaskStatus.RUNNING
    await close(updates)


async def test_publish_update_reaches_listeners_without_storing(kit: Kit) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.RUNNING)
    updates = kit.tracker.listen_to_updates(message)
    assert (await first(updates)).value is TaskStatus.RUNNING
    await call(kit.tracker.publish_update, message, StatusUpdate(TaskStatus.SUCCEEDED, "x"))
    assert await first(updates) == StatusUpdate(TaskStatus.SUCCEEDED, "x")
    assert (await call(kit.tracker.get, message)).value is TaskStatus.RUNNING
    await close(updates)


async def test_listening_needs_pubsub(kit: Kit) -> None:
    tracker = type(kit.tracker)(kit.backend, enable_pubsub=False)
    with pytest.raises(ValueError, match="PUBSUB not enabled"):
        tracker.listen_to_updates(make())


async def test_closing_a_listener_unsubscribes(kit: Kit, redis_client: redis.Redis) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.RUNNING)
    updates = kit.tracker.listen_to_updates(message)
    await first(updates)
    channel = kit.tracker._channel(message)
    assert subscriber_count(redis_client, channel) == 1
    await close(updates)
    await until(lambda: subscriber_count(redis_client, channel) == 0)


def test_a_listener_survives_its_subscriber_connection_being_killed(
    sync_kit: Kit, redis_client: redis.Redis
) -> None:
    tracker, message = sync_kit.tracker, make()
    tracker.set(message, TaskStatus.SUBMITTED)
    updates = tracker.listen_to_updates(message)
    assert next(updates).value is TaskStatus.SUBMITTED
    channel = tracker._channel(message)
    assert kill_subscriber_connections(redis_client) >= 1
    tracker.set(message, TaskStatus.RUNNING)  # may be published while nobody listens
    eventually(lambda: subscriber_count(redis_client, channel) == 1)
    tracker.set(message, TaskStatus.SUCCEEDED)
    rest = [update.value for update in updates]
    assert rest[-1] is TaskStatus.SUCCEEDED
    assert rest in ([TaskStatus.RUNNING, TaskStatus.SUCCEEDED], [TaskStatus.SUCCEEDED])


def test_a_thousand_sync_listeners_share_one_subscriber_connection(
    sync_kit: Kit, redis_client: redis.Redis
) -> None:
    tracker = sync_kit.tracker
    messages = [make() for _ in range(1000)]
    send(redis_client, [c for m in messages for c in _set_commands(tracker, m, SUBMITTED)])
    listeners = [tracker.listen_to_updates(message) for message in messages]
    assert {next(listener).value for listener in listeners} == {TaskStatus.SUBMITTED}
    # One queue: on a cluster too its channels share a slot, so one node, one connection.
    assert [n for n in subscriber_connections(redis_client) if n >= 1000] == [1000]
    send(redis_client, [c for m in messages for c in _set_commands(tracker, m, SUCCEEDED)])
    finals = [[update.value for update in listener] for listener in listeners]
    assert finals == [[TaskStatus.SUCCEEDED]] * 1000


SUBMITTED, SUCCEEDED = TaskStatus.SUBMITTED, TaskStatus.SUCCEEDED


def _set_commands(tracker: Any, message: Any, status: TaskStatus) -> tuple[Any, ...]:
    from alsek.core.broker.effects import effect_commands

    return effect_commands(tracker.effects(message, status))


async def test_a_thousand_async_listeners_on_one_event_loop(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    import asyncio

    backend = AsyncRedisBackend(redis_url, namespace=namespace)
    tracker = AsyncStatusTracker(backend)
    messages = [make() for _ in range(1000)]
    started = 0
    all_started = asyncio.Event()

    async def listen(message: Any) -> list[TaskStatus]:
        nonlocal started
        seen = []
        async for update in tracker.listen_to_updates(message):
            seen.append(update.value)
            if update.value is TaskStatus.SUBMITTED:
                started += 1
                if started == len(messages):
                    all_started.set()
        return seen

    send(redis_client, [c for m in messages for c in _set_commands(tracker, m, SUBMITTED)])
    tasks = [asyncio.create_task(listen(message)) for message in messages]
    await asyncio.wait_for(all_started.wait(), 60)
    assert [n for n in subscriber_connections(redis_client) if n >= 1000] == [1000]
    for message in messages:
        await tracker.set(message, TaskStatus.SUCCEEDED)
    results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert results == [[TaskStatus.SUBMITTED, TaskStatus.SUCCEEDED]] * 1000
    await backend.conn.aclose()


# -- wait_for -----------------------------------------------------------------------------------


async def test_wait_for_returns_the_matching_status(kit: Kit) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.SUCCEEDED)
    assert await call(kit.tracker.wait_for, message, TaskStatus.SUCCEEDED) is TaskStatus.SUCCEEDED
    assert (
        await call(kit.tracker.wait_for, message, [TaskStatus.FAILED, TaskStatus.SUCCEEDED])
        is TaskStatus.SUCCEEDED
    )


async def test_wait_for_rejects_a_target_that_is_not_a_status(kit: Kit) -> None:
    with pytest.raises(ValueError, match="TaskStatus"):
        await call(kit.tracker.wait_for, make(), "SUCCEEDED")


async def test_wait_for_timeout_raises_or_returns_the_last_status(kit: Kit) -> None:
    message = make()
    with pytest.raises(TimeoutError, match="Timeout waiting for"):
        await call(kit.tracker.wait_for, message, TaskStatus.SUCCEEDED, timeout=0.1)
    assert (
        await call(
            kit.tracker.wait_for,
            message,
            TaskStatus.SUCCEEDED,
            timeout=0.1,
            raise_on_timeout=False,
        )
        is TaskStatus.UNKNOWN
    )
    await call(kit.tracker.set, message, TaskStatus.RUNNING)
    last = await call(
        kit.tracker.wait_for, message, TaskStatus.SUCCEEDED, timeout=0.1, raise_on_timeout=False
    )
    assert last is TaskStatus.RUNNING


def test_wait_for_wakes_on_the_write_from_a_non_main_thread(sync_kit: Kit) -> None:
    tracker, message = sync_kit.tracker, make()
    outcome: list[Any] = []

    def waiter() -> None:
        # A poll interval far longer than the timeout: only a pub/sub wake-up can succeed.
        outcome.append(
            tracker.wait_for(message, TaskStatus.SUCCEEDED, timeout=30, poll_interval=3600)
        )

    thread = threading.Thread(target=waiter)
    thread.start()
    eventually(lambda: subscriber_count(sync_kit.backend.conn, tracker._channel(message)))
    tracker.set(message, TaskStatus.RUNNING)
    tracker.set(message, TaskStatus.SUCCEEDED)
    thread.join(30)
    assert outcome == [TaskStatus.SUCCEEDED]


async def test_async_wait_for_wakes_on_the_write(redis_url: str, namespace: str) -> None:
    import asyncio

    backend = AsyncRedisBackend(redis_url, namespace=namespace)
    tracker, message = AsyncStatusTracker(backend), make()
    waiting = asyncio.create_task(
        tracker.wait_for(message, TaskStatus.FAILED, timeout=30, poll_interval=3600)
    )
    await asyncio.sleep(0)
    while not await async_subscriber_count(backend.conn, tracker._channel(message)):
        await asyncio.sleep(0.01)
    await tracker.set(message, TaskStatus.FAILED)
    assert await asyncio.wait_for(waiting, 30) is TaskStatus.FAILED
    await backend.conn.aclose()


async def test_wait_for_polls_when_pubsub_is_off(kit: Kit) -> None:
    tracker = type(kit.tracker)(kit.backend, enable_pubsub=False)
    message = make()
    await call(tracker.set, message, TaskStatus.SUCCEEDED)
    assert await call(tracker.wait_for, message, TaskStatus.SUCCEEDED, timeout=5) is (
        TaskStatus.SUCCEEDED
    )
    with pytest.raises(TimeoutError):
        await call(tracker.wait_for, message, TaskStatus.FAILED, timeout=0.1, poll_interval=0.02)


def _wait_in_child(tracker: StatusTracker, message: Any) -> None:
    import os

    status = tracker.wait_for(message, TaskStatus.SUCCEEDED, timeout=20)
    os._exit(0 if status is TaskStatus.SUCCEEDED else 1)


def test_a_forked_child_gets_its_own_hub(sync_kit: Kit) -> None:
    import multiprocessing

    tracker, message = sync_kit.tracker, make()
    tracker.set(message, TaskStatus.RUNNING)
    parent_listener = tracker.listen_to_updates(message)
    assert next(parent_listener).value is TaskStatus.RUNNING  # the parent's hub is busy
    child = multiprocessing.get_context("fork").Process(
        target=_wait_in_child, args=(tracker, message)
    )
    child.start()
    channel = tracker._channel(message)
    eventually(lambda: subscriber_count(sync_kit.backend.conn, channel) == 2)
    tracker.set(message, TaskStatus.SUCCEEDED)
    child.join(30)
    assert child.exitcode == 0
    assert next(parent_listener).value is TaskStatus.SUCCEEDED
