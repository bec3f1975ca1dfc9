"""Consumers on a real Redis: streaming, wake-ups, concurrency, outages and bad subsets."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import pytest
import redis

from alsek.core.backoff import LinearBackoff
from alsek.core.broker import AsyncBroker, Broker, ClaimSource
from alsek.core.consumer import AsyncConsumer, Consumer, dedup_messages
from alsek.core.message import Message
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.testing import RedisServer

#: An idle consumer with this backoff would sleep 10 s between passes without wake-ups.
SLOW_BACKOFF = LinearBackoff(10_000, floor=10_000, ceiling=10_000, zero_override=False)


@pytest.fixture
def sync_broker(redis_url: str, namespace: str) -> Broker:
    return Broker(RedisBackend(redis_url, namespace=namespace))


def ack_until_done(broker: Broker, message: Message) -> None:
    """Ack, trying again after a dropped connection (a repeated ack is harmless)."""
    for _ in range(100):
        try:
            broker.ack(message)
            return
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(0.01)
    raise AssertionError("could not ack")


def stream_in_thread(consumer: Consumer, sink: list[Message]) -> threading.Thread:
    def run() -> None:
        for message in consumer.stream():
            sink.append(message)
            ack_until_done(consumer.broker, message)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_idle_consumer_is_woken_by_a_submit_not_by_its_backoff(sync_broker: Broker) -> None:
    consumer = Consumer(sync_broker, subset=["q"], backoff=SLOW_BACKOFF)
    sink: list[Message] = []
    thread = stream_in_thread(consumer, sink)
    time.sleep(0.2)  # let it go idle and block on Redis
    started = time.monotonic()
    sync_broker.submit(Message("work", queue="q"))
    wait_for(lambda: len(sink) == 1, timeout=5.0)
    assert time.monotonic() - started < 5.0  # far below the 10 s backoff
    consumer.stop_signal.exit_event.set()
    thread.join(timeout=3)
    assert not thread.is_alive()


def test_idle_consumer_wakes_when_a_delayed_message_is_due(sync_broker: Broker) -> None:
    consumer = Consumer(sync_broker, subset=["q"], backoff=SLOW_BACKOFF)
    message = Message("work", queue="q", delay=400)
    sync_broker.submit(message)
    sink: list[Message] = []
    thread = stream_in_thread(consumer, sink)
    wait_for(lambda: len(sink) == 1, timeout=5.0)
    assert time.time() * 1000 >= message.ready_at
    consumer.stop_signal.exit_event.set()
    thread.join(timeout=3)


def test_all_queues_consumer_picks_up_a_queue_created_after_it_started(sync_broker: Broker) -> None:
    consumer = Consumer(sync_broker, subset=None, backoff=SLOW_BACKOFF)
    sink: list[Message] = []
    thread = stream_in_thread(consumer, sink)
    time.sleep(0.2)
    sync_broker.submit(Message("work", queue="brand_new"))
    wait_for(lambda: len(sink) == 1, timeout=8.0)
    assert sink[0].queue == "brand_new"
    consumer.stop_signal.exit_event.set()
    thread.join(timeout=3)


def test_eight_concurrent_consumers_claim_each_of_5000_messages_exactly_once(
    redis_url: str, namespace: str
) -> None:
    producer = Broker(RedisBackend(redis_url, namespace=namespace))
    producer.submit_many([Message("work", queue="q", args=(i,)) for i in range(5000)])
    consumers = [
        Consumer(Broker(RedisBackend(redis_url, namespace=namespace)), subset=["q"])
        for _ in range(8)
    ]
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(consumer: Consumer) -> None:
        while True:
            messages = consumer.claim(7).messages
            if not messages:
                return
            for message in messages:
                consumer.broker.ack(message)
            with lock:
                claimed.extend(message.uuid for message in messages)

    threads = [threading.Thread(target=drain, args=(c,)) for c in consumers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    counts = Counter(claimed)
    assert len(counts) == 5000
    assert max(counts.values()) == 1


async def test_eight_concurrent_async_consumers_claim_each_message_exactly_once(
    redis_url: str, namespace: str
) -> None:
    backend = AsyncRedisBackend(redis_url, namespace=namespace)
    broker = AsyncBroker(backend)
    await broker.submit_many([Message("work", queue="q", args=(i,)) for i in range(2000)])
    claimed: list[str] = []

    async def drain() -> None:
        consumer = AsyncConsumer(broker, subset=["q"])
        while messages := (await consumer.claim(5)).messages:
            for message in messages:
                await broker.ack(message)
            claimed.extend(message.uuid for message in messages)

    await asyncio.gather(*(drain() for _ in range(8)))
    await backend.conn.aclose()
    counts = Counter(claimed)
    assert len(counts) == 2000 and max(counts.values()) == 1


async def test_async_stream_yields_and_is_woken_by_a_submit(redis_url: str, namespace: str) -> None:
    backend = AsyncRedisBackend(redis_url, namespace=namespace)
    broker = AsyncBroker(backend)
    consumer = AsyncConsumer(broker, subset=["q"], backoff=SLOW_BACKOFF)
    received: list[Message] = []

    async def consume() -> None:
        async for message in consumer.stream():
            received.append(message)
            await broker.ack(message)
            if len(received) == 2:
                consumer.stop_signal.exit_event.set()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    await broker.submit(Message("work", queue="q", args=(1,)))
    await broker.submit(Message("work", queue="q", args=(2,)))
    await asyncio.wait_for(task, timeout=5)
    assert [m.args for m in received] == [(1,), (2,)]
    await backend.conn.aclose()


def test_stream_survives_connections_being_killed(
    sync_broker: Broker, redis_client: redis.Redis
) -> None:
    total = 600
    sync_broker.submit_many([Message("work", queue="q", args=(i,)) for i in range(total)])
    consumer = Consumer(sync_broker, subset=["q"])
    sink: list[Message] = []
    thread = stream_in_thread(consumer, sink)
    deadline = time.monotonic() + 30
    while len(sink) < total and time.monotonic() < deadline:
        redis_client.client_kill_filter(_type="normal", skipme=True)
        time.sleep(0.02)
    wait_for(lambda: len(sink) >= total, timeout=30)
    consumer.stop_signal.exit_event.set()
    thread.join(timeout=5)
    counts = Counter(message.uuid for message in sink)
    assert len(counts) == total
    assert max(counts.values()) == 1
    assert sync_broker.dlq_count("q") == 0


@pytest.mark.slow
def test_stream_rides_out_a_redis_restart(caplog: pytest.LogCaptureFixture) -> None:
    with RedisServer(extra_args=("--appendonly", "yes", "--appendfsync", "always")) as server:
        broker = Broker(RedisBackend(server.url, namespace="outage"))
        consumer = Consumer(broker, subset=["q"], backoff=SLOW_BACKOFF)
        sink: list[Message] = []
        thread = stream_in_thread(consumer, sink)
        broker.submit(Message("work", queue="q", args=(1,)))
        wait_for(lambda: len(sink) == 1)
        server.kill()
        time.sleep(0.5)
        server.start()
        broker.submit(Message("work", queue="q", args=(2,)))
        wait_for(lambda: len(sink) == 2, timeout=20)
        consumer.stop_signal.exit_event.set()
        thread.join(timeout=5)
    assert [m.args for m in sink] == [(1,), (2,)]
    outage_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage_lines) <= 1


@pytest.mark.parametrize(
    ("subset", "error", "match"),
    [
        (["ok", "bad:name"], ValueError, "':'"),
        ([""], ValueError, "queue"),
        (["a", "a"], ValueError, "more than once"),
        ({"q": []}, ValueError, "non-empty list"),
        ({"q": ["t{x}"]}, ValueError, "'{'"),
        ("q", TypeError, "subset must be"),
    ],
)
def test_invalid_subsets_are_refused_at_construction(
    sync_broker: Broker, subset: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Consumer(sync_broker, subset=subset)  # type: ignore[arg-type]


def test_subnamespaces_follow_the_subset(sync_broker: Broker) -> None:
    assert Consumer(sync_broker)._get_subnamespaces() == ["queues"]
    assert Consumer(sync_broker, subset=["b", "a"])._get_subnamespaces() == [
        "queues:b",
        "queues:a",
    ]
    assert Consumer(sync_broker, subset={"q": ["t2", "t1"]})._get_subnamespaces() == [
        "queues:q:tasks:t2",
        "queues:q:tasks:t1",
    ]


def test_dedup_messages_keeps_first_occurrences_in_order() -> None:
    a, b = Message("t"), Message("t")
    assert dedup_messages([a, b, a, b]) == [a, b]


def test_consumer_given_task_names_claims_only_theirs_best_priority_first(
    sync_broker: Broker,
) -> None:
    theirs = Message("theirs", queue="q", priority=0)
    mine_low, mine_high = Message("a", queue="q", priority=5), Message("b", queue="q", priority=1)
    for message in (theirs, mine_low, mine_high):
        sync_broker.submit(message)
    consumer = Consumer(sync_broker, subset=["q"], task_names=["a", "b"])
    assert [m.uuid for m in consumer.claim(10).messages] == [mine_high.uuid, mine_low.uuid]
    assert consumer.claim(10).messages == []
    assert sync_broker.exists(theirs)  # left queued for whoever serves it


def test_consumer_refuses_an_empty_list_of_task_names(sync_broker: Broker) -> None:
    with pytest.raises(ValueError, match="task_names is empty"):
        Consumer(sync_broker, subset=["q"], task_names=[])


def test_a_claim_whose_reply_was_lost_is_sent_again_while_redis_keeps_its_reply(
    sync_broker: Broker,
) -> None:
    """Issue 13: Redis keeps a claim's reply for one lease. A consumer whose claim ran but whose
    reply was lost (a master killed, a connection cut) re-sends it with the same request id; it
    must do so within that lease however long the outage, or the claimed messages stay leased
    to nobody and are later counted as lost attempts that never started."""
    consumer = Consumer(sync_broker, subset=["lost-reply"], lease_ttl=2_000)
    submitted = [Message("work", queue="lost-reply", args=(i,)) for i in range(3)]
    sync_broker.submit_many(submitted)
    # The first attempt: Redis ran it under the consumer's request id; its reply never came.
    request_id = consumer._next_request_id()
    ran = sync_broker.claim(
        [ClaimSource("lost-reply")],
        3,
        consumer.owner_id,
        lease_ttl=consumer.lease_ttl,
        request_id=request_id,
    )
    assert len(ran.messages) == 3
    # A long outage: however many attempts fail, the consumer never waits longer than a
    # quarter of its lease before the next one.
    outage = redis.ConnectionError("Connection closed by server.")
    pauses = [consumer._outage.failed(outage, consumer.lease_ttl) for _ in range(12)]
    assert max(pauses) <= consumer.lease_ttl // 4, pauses
    # The re-sent claim gets the first attempt's messages, not a lost attempt on them.
    again = consumer.claim(3)
    assert [m.uuid for m in again.messages] == [m.uuid for m in ran.messages]
    assert all(m.retries == 0 and m.exception_details is None for m in again.messages)
