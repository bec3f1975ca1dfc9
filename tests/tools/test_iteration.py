"""ResultPool on a real Redis: woken by arrivals, never sleeping ``wait``."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from alsek.core.broker.effects import effect_commands
from alsek.core.message import Message
from alsek.exceptions import TaskFailedError, ValidationError
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.result import AsyncResultStore
from alsek.tools import ResultPool
from alsek.utils.system import clear_stop_request
from tests.polling import eventually
from tests.pubsub import subscriber_count
from tests.status.conftest import Kit, make

#: Far longer than the test timeout: a pool that slept ``wait`` instead of waking would hang.
NEVER = 10 * 60 * 1000


def subscribed(kit: Kit, messages: list[Message]) -> bool:
    channels = [kit.store._channel(kit.store.get_storage_name(m)) for m in messages]
    return all(subscriber_count(kit.backend.conn, channel) for channel in channels)


def write_when_subscribed(
    kit: Kit, order: list[Message], turns: list[threading.Event] | None = None
) -> threading.Thread:
    """Write ``order``'s results (value = uuid) from a thread, each after its turn comes."""

    def writer() -> None:
        eventually(lambda: subscribed(kit, order))
        for index, message in enumerate(order):
            if turns is not None and index > 0:
                turns[index - 1].wait(30)
            kit.store.set(message, message.uuid)

    thread = threading.Thread(target=writer)
    thread.start()
    return thread


def test_duplicate_messages_are_refused(sync_kit: Kit) -> None:
    message = make()
    pool = ResultPool(sync_kit.store)
    with pytest.raises(ValidationError, match="Duplicate messages detected"):
        pool.istream(message, Message(**message.data))
    with pytest.raises(ValidationError):
        pool.stream(message, message)


def test_an_async_store_is_refused(redis_url: str) -> None:
    with pytest.raises(TypeError, match="ResultStore"):
        ResultPool(AsyncResultStore(AsyncRedisBackend(redis_url)))  # type: ignore[arg-type]


def test_istream_yields_results_as_they_arrive(sync_kit: Kit) -> None:
    messages = [make() for _ in range(4)]
    arrival = list(reversed(messages))
    turns = [threading.Event() for _ in messages]
    writer = write_when_subscribed(sync_kit, arrival, turns)
    got = []
    for index, (message, result) in enumerate(
        ResultPool(sync_kit.store).istream(*messages, wait=NEVER)
    ):
        assert result == message.uuid
        got.append(message)
        turns[index].set()
    writer.join(30)
    assert [m.uuid for m in got] == [m.uuid for m in arrival]


def test_stream_yields_results_in_input_order(sync_kit: Kit) -> None:
    messages = [make() for _ in range(5)]
    writer = write_when_subscribed(sync_kit, list(reversed(messages)))
    got = list(ResultPool(sync_kit.store).stream(*messages, wait=NEVER))
    writer.join(30)
    assert [(m.uuid, r) for m, r in got] == [(m.uuid, m.uuid) for m in messages]


def test_results_already_there_are_yielded_at_once(sync_kit: Kit) -> None:
    messages = [make() for _ in range(3)]
    for message in messages:
        sync_kit.store.set(message, message.uuid)
    got = list(ResultPool(sync_kit.store).istream(*messages, wait=NEVER, keep=False))
    assert sorted(r for _, r in got) == sorted(m.uuid for m in messages)
    assert not any(sync_kit.store.exists(m) for m in messages)  # keep=False reached get()


def test_a_pool_built_outside_the_main_thread_installs_no_handler(sync_kit: Kit) -> None:
    message = make()
    sync_kit.store.set(message, "from a thread")
    outcome: list[Any] = []

    def worker() -> None:
        pool = ResultPool(sync_kit.store)
        outcome.append(pool.stop_signal)
        outcome.extend(r for _, r in pool.stream(message))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert outcome == [None, "from a thread"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_descendants_are_collected_per_message(sync_kit: Kit) -> None:
    last = make(task="c", queue="q3")
    middle = make(task="b", queue="q2", callback_message_data=last.data)
    root = make(task="a", queue="q1", callback_message_data=middle.data)
    writes = [
        (root, "r0"),
        (Message(**{**middle.data, "progenitor_uuid": root.uuid}), "r1"),
        (Message(**{**last.data, "progenitor_uuid": root.uuid}), "r2"),
    ]

    def writer() -> None:
        eventually(lambda: subscribed(sync_kit, [root]))
        for message, result in writes:
            sync_kit.store.set(message, result)

    thread = threading.Thread(target=writer)
    thread.start()
    [(message, results)] = ResultPool(sync_kit.store).stream(root, descendants=True, wait=NEVER)
    thread.join(30)
    assert message is root and results == ["r0", "r1", "r2"]


def test_a_message_that_failed_for_good_ends_the_stream_with_its_error(
    sync_kit: Kit, redis_client: redis.Redis
) -> None:
    message = make()
    message.update(exception_details={"name": "ZeroDivisionError", "text": "division by zero"})
    for command in effect_commands(sync_kit.store.failure_effects(message)):
        redis_client.execute_command(*command)
    with pytest.raises(TaskFailedError, match="ZeroDivisionError"):
        list(ResultPool(sync_kit.store).istream(message, wait=NEVER))


@pytest.fixture
def restore_stop_handlers() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    clear_stop_request()


def test_a_stop_signal_ends_the_stream(sync_kit: Kit, restore_stop_handlers: None) -> None:
    done, pending = make(), make()
    sync_kit.store.set(done, "done")
    pool = ResultPool(sync_kit.store)  # main thread: listens for SIGTERM
    assert pool.stop_signal is not None
    stream = pool.istream(done, pending, wait=NEVER)
    assert next(stream)[1] == "done"
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
    assert list(stream) == []  # ended by the signal, not by the missing result
    assert pool.stop_signal.received
