"""Pause, resume, purge and revoke: a paused queue is claimed by no pool while the others are;
resume wakes them; purge deletes waiting messages; revoke takes a message out by uuid."""

from __future__ import annotations

import signal
from types import ModuleType

import pytest
import states
from opsfixtures import AdminView, Pools

from alsek.core.status import TaskStatus
from tests.polling import until


@pytest.mark.slow  # pools in subprocesses
async def test_a_paused_queue_is_not_claimed_while_a_second_queue_is(
    ops: ModuleType, admin: AdminView, pools: Pools
) -> None:
    await admin.pause("ops")
    pool = pools.start("thread")
    held = ops.add.generate(args=(1, 1))
    served = ops.side.generate(args=(7,))
    assert ops.store.get(served, timeout=30_000) == 7
    # The pool claimed from "side" after "add" was queued: it skipped the paused queue.
    [stats] = [q for q in await admin.queues() if q.queue == "ops"]
    assert (stats.paused, stats.ready) == (True, 1)
    assert ops.tracker.get(held).value is TaskStatus.SUBMITTED
    assert await admin.resume("ops") is True
    assert ops.store.get(held, timeout=30_000) == 2
    assert await admin.resume("ops") is False
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0, pool.output()


@pytest.mark.slow  # pools in subprocesses
async def test_a_pause_outlives_the_pools(ops: ModuleType, admin: AdminView, pools: Pools) -> None:
    await admin.pause("ops")
    first = pools.start("thread")
    await until(lambda: _has_workers(admin), 30, "the first pool registered")
    first.signal(signal.SIGTERM)
    assert first.wait(30) == 0, first.output()
    held = ops.add.generate(args=(2, 2))
    pools.start("thread")
    served = ops.side.generate(args=(1,))
    assert ops.store.get(served, timeout=30_000) == 1
    assert ops.tracker.get(held).value is TaskStatus.SUBMITTED
    await admin.resume("ops")
    assert ops.store.get(held, timeout=30_000) == 4


async def test_purge_deletes_waiting_messages_not_running_ones(
    ops: ModuleType, admin: AdminView
) -> None:
    states.ready(ops, 3)
    states.delayed(ops, 2)
    [running] = states.running(ops, 1, "sleepy")
    assert await admin.purge("ops") == 3
    [stats] = await admin.queues()
    assert (stats.ready, stats.delayed, stats.running) == (0, 2, 1)
    states.ready(ops, 2)
    assert await admin.purge("ops", state="all") == 4
    [stats] = await admin.queues()
    assert (stats.ready, stats.delayed, stats.running) == (0, 0, 1)
    assert [t.delayed for t in stats.tasks] == [0, 0]
    assert (await admin.message(running.uuid)).state == "running"
    with pytest.raises(ValueError, match="state must be one of"):
        await admin.purge("ops", state="running")


async def test_purge_goes_beyond_one_batch(
    ops: ModuleType, admin: AdminView, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alsek.admin import manage

    monkeypatch.setattr(manage, "PURGE_PER_CALL", 4)
    ops.add.generate_many(args_list=[(i, i) for i in range(10)])
    assert await admin.purge("ops") == 10
    assert await admin.messages("ops") == []


async def test_revoke_by_uuid_dead_letters_a_queued_message(
    ops: ModuleType, admin: AdminView
) -> None:
    [message, other] = states.ready(ops, 2)
    assert await admin.revoke(message.uuid) is True
    info = await admin.message(message.uuid)
    assert info is not None and info.state == "dead"
    assert info.error is not None and info.error.type.endswith("RevokedError")
    assert ops.tracker.get(message).value is TaskStatus.FAILED
    assert [m.uuid for m in await admin.messages("ops")] == [other.uuid]
    assert await admin.revoke(message.uuid) is False
    assert await admin.revoke("no-such-uuid") is False


@pytest.mark.slow  # pools in subprocesses
async def test_revoke_stops_a_running_message(
    ops: ModuleType, admin: AdminView, pools: Pools
) -> None:
    pools.start("thread")
    message = ops.sleepy.generate(args=(60,))

    async def running() -> bool:
        return (await admin.message(message.uuid)).state == "running"

    await until(running, 30, "the message runs")
    assert await admin.revoke(message.uuid) is True

    async def freed() -> bool:
        workers = await admin.workers()
        return (
            bool(workers)
            and workers[0].busy == 0
            and not await admin.messages("ops", state="running")
        )

    await until(freed, 30, "the revoked message stopped and its slot freed")
    assert ops.tracker.get(message).value is TaskStatus.FAILED


async def _has_workers(admin: AdminView) -> bool:
    return bool(await admin.workers())
