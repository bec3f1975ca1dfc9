"""The dead-letter queue through the admin: list, requeue and purge by queue, task or uuid."""

from __future__ import annotations

from types import ModuleType

import states
from opsfixtures import AdminView


async def test_dead_lists_failures_oldest_first_with_their_error(
    ops: ModuleType, admin: AdminView
) -> None:
    failed = states.dead(ops, 3)
    listed = await admin.dead()
    assert [m.uuid for m in listed] == [m.uuid for m in failed]
    first = listed[0]
    assert (first.queue, first.task, first.state) == ("ops", "boom", "dead")
    assert first.error is not None
    assert (first.error.type, first.error.message) == ("ValueError", "boom on purpose")
    assert first.data is not None and first.data["uuid"] == first.uuid
    assert [m.uuid for m in await admin.dead(limit=2)] == [m.uuid for m in failed[:2]]


async def test_dead_filters_by_queue_and_task(ops: ModuleType, admin: AdminView) -> None:
    booms = states.dead(ops, 2, "boom")
    sleeps = states.dead(ops, 1, "sleepy")
    assert {m.uuid for m in await admin.dead(task="sleepy")} == {m.uuid for m in sleeps}
    assert {m.uuid for m in await admin.dead(queue="ops", task="boom")} == {m.uuid for m in booms}
    assert await admin.dead(queue="elsewhere") == []


async def test_requeue_dead_round_trips_to_the_ready_queue(
    ops: ModuleType, admin: AdminView
) -> None:
    failed = states.dead(ops, 3)
    assert await admin.requeue_dead(uuids=[failed[0].uuid]) == 1
    assert [m.uuid for m in await admin.dead()] == [m.uuid for m in failed[1:]]
    ready = await admin.messages("ops", task="boom")
    assert [m.uuid for m in ready] == [failed[0].uuid]
    assert ready[0].data is not None and ready[0].data["retries"] == 0
    assert await admin.requeue_dead(queue="ops", task="boom") == 2
    assert await admin.dead() == []
    assert len(await admin.messages("ops", task="boom")) == 3


async def test_purge_dead_by_uuid_task_or_all(ops: ModuleType, admin: AdminView) -> None:
    booms = states.dead(ops, 3, "boom")
    states.dead(ops, 2, "sleepy")
    assert await admin.purge_dead(uuids=[booms[0].uuid]) == 1
    assert await admin.purge_dead(task="boom") == 2
    assert {m.task for m in await admin.dead()} == {"sleepy"}
    assert await admin.purge_dead() == 2
    assert await admin.dead() == []
    assert await admin.purge_dead() == 0
