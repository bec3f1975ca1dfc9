"""``Admin.throughput``: the counters the ack, retry and fail scripts keep, read back exactly."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from alsek.admin import RUN_MS_BUCKETS, Admin, AsyncAdmin, ThroughputPoint
from alsek.core.broker import AsyncBroker, BaseBroker, Broker, ClaimSource
from alsek.core.broker import keys as engine_keys
from alsek.core.message import Message
from alsek.core.run_timing import mark_run_started
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend
from tests.polling import call

OWNER = "lock:test-host:process:1:lease:abc"
BUCKETS = len(RUN_MS_BUCKETS) + 1


class Side:
    """A broker and an admin of one kind (sync or async)."""

    def __init__(self, broker: BaseBroker, admin: Admin | AsyncAdmin) -> None:
        self.broker = broker
        self.admin = admin

    async def run(self, queue: str, task: str, ms: int | None) -> Message:
        """Submit a message of ``task`` and claim it, as having run ``ms`` (``None``: unrun)."""
        message = Message(task, queue=queue)
        await call(self.broker.submit, message)
        claim = await call(self.broker.claim, [ClaimSource(queue)], 1, OWNER)
        [claimed] = claim.messages
        if ms is not None:
            ran_for(claimed, ms)
        return claimed

    async def throughput(self, **options: Any) -> list[ThroughputPoint]:
        return list(await call(self.admin.throughput, **options))


def ran_for(message: Message, ms: int) -> None:
    """Stamp ``message`` as if its run had taken ``ms`` (plus half a ms against rounding)."""
    mark_run_started(message)
    started = message.ephemeral_state["alsek.run.started"]
    message.ephemeral_state["alsek.run.ended"] = started + (ms + 0.5) / 1000


@pytest.fixture(params=["sync", "async"])
async def side(
    request: pytest.FixtureRequest, redis_url: str, namespace: str
) -> AsyncIterator[Side]:
    if request.param == "sync":
        broker = Broker(RedisBackend(redis_url, namespace=namespace), dlq_ttl=60_000)
        yield Side(broker, Admin(broker))
        broker.backend.conn.close()
    else:
        async_broker = AsyncBroker(
            AsyncRedisBackend(redis_url, namespace=namespace), dlq_ttl=60_000
        )
        yield Side(async_broker, AsyncAdmin(async_broker))
        await async_broker.backend.conn.aclose()


def bucket_of(ms: int) -> int:
    return next((i for i, bound in enumerate(RUN_MS_BUCKETS) if ms <= bound), len(RUN_MS_BUCKETS))


def buckets(*runs: int) -> tuple[int, ...]:
    counts = [0] * BUCKETS
    for ms in runs:
        counts[bucket_of(ms)] += 1
    return tuple(counts)


async def test_outcomes_are_read_back_exactly_per_task_queue_and_all(side: Side) -> None:
    broker = side.broker
    await call(broker.ack, await side.run("q1", "a", 5))
    await call(broker.ack, await side.run("q1", "a", 700))
    await call(broker.retry, await side.run("q1", "b", 40))
    await call(broker.fail, await side.run("q1", "b", 3000))
    await call(broker.ack, await side.run("q2", "a", 20))
    await call(broker.fail, await side.run("q2", "c", None))  # failed unrun: no bucket
    # The retried message of b runs again (after its backoff) later; not part of this test.

    [q1_a] = (await side.throughput(queue="q1", task="a"))[-1:]
    assert (q1_a.succeeded, q1_a.failed, q1_a.retried, q1_a.dead_lettered) == (2, 0, 0, 0)
    assert q1_a.run_ms_buckets == buckets(5, 700)
    [q1] = (await side.throughput(queue="q1"))[-1:]
    assert (q1.succeeded, q1.failed, q1.retried, q1.dead_lettered) == (2, 1, 1, 1)
    assert q1.run_ms_buckets == buckets(5, 700, 40, 3000)
    [every] = (await side.throughput())[-1:]
    assert (every.succeeded, every.failed, every.retried, every.dead_lettered) == (3, 2, 1, 2)
    assert every.run_ms_buckets == buckets(5, 700, 40, 3000, 20)
    [a_everywhere] = (await side.throughput(task="a", step="hour"))[-1:]
    assert (a_everywhere.succeeded, a_everywhere.failed) == (3, 0)
    assert a_everywhere.run_ms_buckets == buckets(5, 700, 20)


async def test_a_run_lands_in_the_bucket_of_the_first_bound_it_does_not_exceed(side: Side) -> None:
    runs = [0, RUN_MS_BUCKETS[0], RUN_MS_BUCKETS[0] + 1, RUN_MS_BUCKETS[-1], RUN_MS_BUCKETS[-1] + 1]
    for ms in runs:
        await call(side.broker.ack, await side.run("q", "t", ms))
    [point] = (await side.throughput(queue="q"))[-1:]
    expected = [0] * BUCKETS
    expected[0], expected[1], expected[-2], expected[-1] = 2, 1, 1, 1
    assert point.run_ms_buckets == tuple(expected)


async def test_a_repeated_ack_and_a_remove_are_not_counted(side: Side) -> None:
    message = await side.run("q", "t", 30)
    lease = message.linked_lock
    await call(side.broker.ack, message)
    message.linked_lock = lease
    assert await call(side.broker.ack, message)  # the repeat of a lost reply: ALREADY
    await call(side.broker.remove, await side.run("q", "t", 30))
    [point] = (await side.throughput(queue="q"))[-1:]
    assert point.succeeded == 1


async def test_one_point_per_step_oldest_first_with_zeros(side: Side) -> None:
    await call(side.broker.ack, await side.run("q", "t", 1))
    minutes = await side.throughput(queue="q")
    assert len(minutes) == 60
    assert [b.at_ms - a.at_ms for a, b in itertools.pairwise(minutes)] == [60_000] * 59
    assert all(p.succeeded == 0 and sum(p.run_ms_buckets) == 0 for p in minutes[:-1])
    assert minutes[-1].at_ms % 60_000 == 0
    hours = await side.throughput(queue="q", step="hour", since_ms=0)
    assert len(hours) == 14 * 24  # as far back as hours are kept
    assert hours[-1].at_ms % 3_600_000 == 0 and hours[-1].succeeded == 1
    since = minutes[-3].at_ms + 1
    assert [p.at_ms for p in await side.throughput(queue="q", since_ms=since)] == [
        p.at_ms for p in minutes[-3:]
    ]
    assert await side.throughput(queue="nothing-here", since_ms=minutes[-1].at_ms) == [
        ThroughputPoint(minutes[-1].at_ms, 0, 0, 0, 0, (0,) * BUCKETS)
    ]


async def test_counters_expire_with_their_step(
    side: Side, redis_client: redis.Redis, namespace: str
) -> None:
    await call(side.broker.ack, await side.run("q", "t", 1))
    [point] = (await side.throughput(queue="q"))[-1:]
    [hour] = (await side.throughput(queue="q", step="hour"))[-1:]
    minute_key = f"{namespace}:" + engine_keys.throughput_key("q", "minute", point.at_ms)
    hour_key = f"{namespace}:" + engine_keys.throughput_key("q", "hour", hour.at_ms)
    seconds, micros = redis_client.time()
    server_now = int(seconds) * 1000 + int(micros) // 1000
    # Each hash lives until its step's start plus how long the step is kept: bounded.
    assert abs(redis_client.pttl(minute_key) - (point.at_ms + 48 * 3_600_000 - server_now)) < 1000
    hour_left = hour.at_ms + 14 * 86_400_000 - server_now
    assert abs(redis_client.pttl(hour_key) - hour_left) < 1000


async def test_an_ack_writes_only_task_fields_and_old_totals_are_not_counted_twice(
    side: Side, redis_client: redis.Redis, namespace: str
) -> None:
    # The queue's total is added up by the reader: an ack increments one field per hash (two
    # HINCRBY in all), and a hash of an earlier version, which also kept 'outcome|bucket'
    # totals, reads the same.
    await call(side.broker.ack, await side.run("q", "t", 1))
    await call(side.broker.ack, await side.run("q", "u", 1))
    [point] = (await side.throughput(queue="q"))[-1:]
    minute_key = f"{namespace}:" + engine_keys.throughput_key("q", "minute", point.at_ms)
    assert sorted(redis_client.hgetall(minute_key)) == ["s|0|t", "s|0|u"]
    redis_client.hset(minute_key, "s|0", 2)  # the total an earlier version kept
    [again] = (await side.throughput(queue="q"))[-1:]
    assert (point.succeeded, again.succeeded, again.run_ms_buckets[0]) == (2, 2, 2)
    [only_t] = (await side.throughput(queue="q", task="t"))[-1:]
    assert only_t.succeeded == 1


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"step": "day"}, "step"),
        ({"since_ms": -1}, "since_ms"),
        ({"since_ms": "yesterday"}, "since_ms"),
        ({"queue": ""}, "queue"),
    ],
)
async def test_bad_arguments_are_refused_by_name(
    side: Side, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        await side.throughput(**options)
