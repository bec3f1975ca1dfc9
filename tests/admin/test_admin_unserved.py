"""Messages of tasks no live worker serves: visible as unserved, kept by default, dead-lettered
after ``unknown_task_ttl`` by the pools of their queue; a served task's messages never."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import redis
from opsfixtures import AdminView, Pools

from alsek import task
from alsek.core.status import TaskStatus
from tests.polling import until

pytestmark = pytest.mark.slow  # pools in subprocesses


def ghost_task(ops: ModuleType) -> Any:
    """A task of queue ``ops`` that no pool of these tests serves."""

    @task(ops.broker, name="ghost", queue="ops", status_tracker=ops.tracker, max_retries=0)
    def ghost() -> None:
        raise AssertionError("never runs")

    return ghost


async def beats_after(admin: AdminView, pid: int, count: int) -> None:
    """Wait until the pool ``pid`` has beaten ``count`` more times."""
    [worker] = await until(lambda: _listed(admin, pid), 30, "the pool registered")
    first = worker.last_beat_at

    async def beaten() -> bool:
        [again] = await _listed(admin, pid)
        return again.last_beat_at >= first + count * 300

    await until(beaten, 30, f"{count} more beats")


async def _listed(admin: AdminView, pid: int) -> list[Any]:
    return [worker for worker in await admin.workers() if worker.pid == pid]


async def test_an_unserved_task_waits_visibly_by_default(
    ops: ModuleType, admin: AdminView, pools: Pools
) -> None:
    message = ghost_task(ops).generate()
    served = ops.add.generate(args=(1, 2))
    pool = pools.start("thread")
    assert ops.store.get(served, timeout=30_000) == 3
    await beats_after(admin, pool.pid, 4)
    [stats] = [q for q in await admin.queues() if q.queue == "ops"]
    [ghost] = [t for t in stats.tasks if t.task == "ghost"]
    assert (ghost.ready, ghost.served) == (1, False)
    assert {t.task for t in stats.tasks if t.served} == {"add", "boom", "side", "sleepy"}
    found = await admin.message(message.uuid)
    assert found is not None and found.state == "ready"


async def test_after_unknown_task_ttl_the_pools_dead_letter_it(
    ops: ModuleType, admin: AdminView, pools: Pools
) -> None:
    message = ghost_task(ops).generate()
    pools.start("thread", "--unknown-task-ttl", "600")

    async def dead() -> Any:
        return await admin.dead(task="ghost")

    [letter] = await until(dead, 30, "the unserved message dead-lettered")
    assert letter.uuid == message.uuid
    assert letter.error is not None
    assert "no worker serves task ghost" in f"{letter.error.type}: {letter.error.message}"
    assert ops.tracker.get(message).value is TaskStatus.FAILED
    history = [update.value for update in ops.tracker.history(message)]
    assert history == [TaskStatus.SUBMITTED, TaskStatus.FAILED]


async def test_a_task_served_elsewhere_is_never_dead_lettered(
    ops: ModuleType,
    admin: AdminView,
    pools: Pools,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    message = ghost_task(ops).generate()
    # Another pool (not running here) serves ghost for the next minute, as its beats say.
    [[seconds, micros]] = [redis_client.time()]
    until_ms = seconds * 1000 + micros // 1000 + 60_000
    redis_client.zadd(f"{namespace}:queues:{{ops}}:tasks:ghost:served", {"elsewhere": until_ms})
    pool = pools.start("thread", "--unknown-task-ttl", "300")
    await beats_after(admin, pool.pid, 4)
    found = await admin.message(message.uuid)
    assert found is not None and found.state == "ready"
    assert await admin.dead() == []
