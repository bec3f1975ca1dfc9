"""The batcher's lone-caller path: sent at once, the lead always given back (on a real Redis)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis

from alsek.core.steps.batching import AsyncCommandBatcher, CommandBatcher, unbatched
from alsek.testing.processes import free_port


def test_a_lone_caller_sends_at_once_and_leaves_nobody_leading(redis_client: Any) -> None:
    batcher = CommandBatcher()
    assert batcher.execute(redis_client, [("PING",), ("ECHO", "hi")]) == [True, "hi"]
    assert batcher._leading is False


def test_a_lone_callers_refused_request_is_raised_and_the_lead_given_back(
    redis_client: Any,
) -> None:
    batcher = CommandBatcher()
    with pytest.raises(redis.ResponseError):
        batcher.execute(redis_client, [("PING",), ("NOT-A-COMMAND",)])
    assert batcher._leading is False
    assert batcher.execute(redis_client, [("ECHO", "after")]) == ["after"]


def test_a_lone_caller_cut_off_gives_the_lead_back() -> None:
    unreachable = redis.Redis(port=free_port(), socket_connect_timeout=1, decode_responses=True)
    batcher = CommandBatcher()
    with pytest.raises(redis.ConnectionError):
        batcher.execute(unreachable, [("PING",)])
    assert batcher._leading is False


def test_a_caller_arriving_while_one_sends_is_queued_and_handed_the_lead(
    redis_client: Any,
) -> None:
    batcher = CommandBatcher()
    assert batcher._lead_alone()  # someone is sending
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(batcher.execute(redis_client, [("PING",)])))
    waiter.start()
    _wait_until(lambda: batcher._pending)
    assert got == []  # queued behind the sender, not sent alone
    with batcher._lock:
        batcher._hand_over()  # the sender is done
    waiter.join(10)
    assert got == [[True]]
    assert batcher._leading is False


def test_an_unbatched_thread_is_not_queued_behind_a_batch_in_flight(redis_client: Any) -> None:
    # A pool's loop sends its claims this way: idle slots wait for them, not for the acks
    # another thread is sending.
    batcher = CommandBatcher()
    assert batcher._lead_alone()  # someone is sending, and stays so during the test
    got: list[Any] = []

    def send() -> None:
        with unbatched():
            got.append(batcher.execute(redis_client, [("ECHO", "now")]))
        got.append(batcher._pending)  # nothing queued by it

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(10)
    assert got == [["now"], []]
    assert batcher._leading is True  # the other sender's lead, untouched
    with batcher._lock:
        batcher._hand_over()
    got.clear()
    # A thread outside such a block queues behind a sender as before.
    assert batcher._lead_alone()
    queued = threading.Thread(target=lambda: got.append(batcher.execute(redis_client, [("PING",)])))
    queued.start()
    _wait_until(lambda: batcher._pending)
    assert got == []
    with batcher._lock:
        batcher._hand_over()
    queued.join(10)
    assert got == [[True]]


async def test_async_lone_and_queued_callers(async_redis_client: Any) -> None:
    batcher = AsyncCommandBatcher()
    assert await batcher.execute(async_redis_client, [("ECHO", "alone")]) == ["alone"]
    assert batcher._leading is False
    assert batcher._lead_alone()  # someone is sending
    queued = asyncio.ensure_future(batcher.execute(async_redis_client, [("ECHO", "queued")]))
    while not batcher._pending:
        await asyncio.sleep(0)
    assert not queued.done()
    batcher._hand_over()
    assert await asyncio.wait_for(queued, 10) == ["queued"]
    assert batcher._leading is False


async def test_async_lone_caller_cut_off_gives_the_lead_back() -> None:
    unreachable = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=1)
    batcher = AsyncCommandBatcher()
    with pytest.raises(redis.ConnectionError):
        await batcher.execute(unreachable, [("PING",)])
    assert batcher._leading is False
    await unreachable.aclose()


def _wait_until(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)
