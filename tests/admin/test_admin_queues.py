"""``queues()``: every queue's counts and its tasks', from the indexes, and which tasks a live
worker serves."""

from __future__ import annotations

import time
from types import ModuleType

import pytest
import redis
import states
from opsfixtures import AdminView, Pools

from alsek.admin import QueueStats, TaskStats
from alsek.core.broker import ClaimSource
from tests.polling import until


def by_name(queues: list[QueueStats]) -> dict[str, QueueStats]:
    return {stats.queue: stats for stats in queues}


def task_of(stats: QueueStats, name: str) -> TaskStats:
    [found] = [task for task in stats.tasks if task.task == name]
    return found


async def test_counts_match_what_was_submitted_claimed_delayed_and_dead_lettered(
    ops: ModuleType, admin: AdminView
) -> None:
    states.ready(ops, 4)
    states.delayed(ops, 2)
    states.running(ops, 3, "sleepy")
    states.dead(ops, 1, "boom")
    ops.side.generate(args=(1,))
    queues = by_name(await admin.queues())
    assert sorted(queues) == ["ops", "side"]
    main = queues["ops"]
    assert (main.ready, main.delayed, main.running, main.dead, main.paused) == (4, 2, 3, 1, False)
    assert [t.task for t in main.tasks] == ["add", "boom", "sleepy"]
    assert task_of(main, "add") == TaskStats("add", 4, 2, 0, 0, served=False)
    assert task_of(main, "sleepy") == TaskStats("sleepy", 0, 0, 3, 0, served=False)
    assert task_of(main, "boom") == TaskStats("boom", 0, 0, 0, 1, served=False)
    assert (queues["side"].ready, queues["side"].tasks[0].task) == (1, "side")


async def test_oldest_ready_is_the_age_of_the_longest_waiting_head(
    ops: ModuleType, admin: AdminView
) -> None:
    assert (await admin.queues()) == []
    states.ready(ops, 1)
    started = time.monotonic()

    async def age() -> int:
        oldest = by_name(await admin.queues())["ops"].oldest_ready_ms
        assert oldest is not None
        return oldest

    first = await age()
    assert first >= 0

    async def grown() -> int | None:
        later = await age()
        return later if later >= first + 50 else None

    later = await until(grown, 10, "the age of the oldest ready message grows")
    assert later <= (time.monotonic() - started) * 1000 + 50  # the server's clock, roughly ours
    ops.broker.claim([ClaimSource("ops", ("add",))], 1, owner_id="test-owner")
    assert by_name(await admin.queues())["ops"].oldest_ready_ms is None


async def test_dead_letters_stop_counting_once_expired(
    ops: ModuleType, admin: AdminView, redis_client: redis.Redis, namespace: str
) -> None:
    states.dead(ops, 2, "boom")
    index = f"{namespace}:queues:{{ops}}:tasks:boom:dlq"
    [(uuid, _)] = redis_client.zrange(index, 0, 0, withscores=True)
    for key in (index, f"{namespace}:queues:{{ops}}:dlq"):
        redis_client.zadd(key, {uuid: 1})  # expired long ago
    main = by_name(await admin.queues())["ops"]
    assert (main.dead, task_of(main, "boom").dead) == (1, 1)


@pytest.mark.slow  # a pool in a subprocess
async def test_served_says_whether_a_live_worker_serves_the_task(
    ops: ModuleType, admin: AdminView, pools: Pools
) -> None:
    states.running(ops, 1, "sleepy")
    ops.crunch.generate(args=(1,), delay=600_000)  # waits, so crunch stays listed
    pool = pools.start("process")

    async def crunch_served() -> bool:
        return task_of(by_name(await admin.queues())["ops"], "crunch").served

    await until(crunch_served, 30, "crunch served by the process pool")
    main = by_name(await admin.queues())["ops"]
    assert not task_of(main, "sleepy").served  # the thread pool would serve it: none runs
    pool.signal(15)
    assert pool.wait(30) == 0, pool.output()
    main = by_name(await admin.queues())["ops"]
    assert not task_of(main, "crunch").served
