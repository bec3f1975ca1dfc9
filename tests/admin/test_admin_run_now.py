"""Run a delayed message now, and act on dead letters by uuid without listing the DLQ."""

from __future__ import annotations

from types import ModuleType

import states
from opsfixtures import AdminView

from alsek.core.broker import ClaimSource, keys
from alsek.utils.temporal import utcnow_timestamp_ms


async def test_run_now_makes_a_delayed_message_ready_at_once(
    ops: ModuleType, admin: AdminView
) -> None:
    first, second = states.delayed(ops, 2)
    assert await admin.run_now(second.uuid) is True
    [stats] = await admin.queues()
    assert (stats.ready, stats.delayed) == (1, 1)
    info = await admin.message(second.uuid)
    assert info is not None and info.state == "ready"
    assert info.data is not None and info.data["ready_at"] <= utcnow_timestamp_ms()
    claim = ops.broker.claim([ClaimSource(ops.QUEUE)], 5, owner_id="test-owner")
    assert [m.uuid for m in claim.messages] == [second.uuid]
    assert [m.uuid for m in await admin.messages("ops", "delayed")] == [first.uuid]


async def test_run_now_refuses_what_is_not_delayed(ops: ModuleType, admin: AdminView) -> None:
    [ready] = states.ready(ops, 1)
    [dead] = states.dead(ops, 1)
    assert await admin.run_now(ready.uuid) is False
    assert await admin.run_now(dead.uuid) is False
    assert await admin.run_now("no-such-uuid") is False
    [stats] = await admin.queues()
    assert (stats.ready, stats.delayed, stats.dead) == (1, 0, 1)


async def test_dead_letters_are_found_by_uuid_without_their_uuid_record(
    ops: ModuleType, admin: AdminView
) -> None:
    failed = states.dead(ops, 3)
    # A dead letter whose uuid record is gone is still found (the DLQ is listed instead).
    ops.broker.backend.conn.delete(
        f"{ops.broker.backend.namespace}:{keys.uuid_key(failed[2].uuid)}"
    )
    wanted = [failed[2].uuid, failed[0].uuid]
    assert await admin.requeue_dead(uuids=wanted) == 2
    assert [m.uuid for m in await admin.dead()] == [failed[1].uuid]
    assert await admin.purge_dead(queue="ops", uuids=[failed[1].uuid, "no-such-uuid"]) == 1
    assert await admin.dead() == []
