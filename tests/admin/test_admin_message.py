"""``message(uuid)``: found by uuid alone in every state, with its status history, result or
error."""

from __future__ import annotations

from types import ModuleType

import pytest
import redis
import states
from opsfixtures import AdminView

from alsek.core.broker import ClaimSource
from alsek.core.message import Message
from alsek.core.status import TaskStatus
from alsek.exceptions import LeaseLostError
from tests.polling import eventually


async def test_an_unknown_uuid_is_none(admin: AdminView) -> None:
    assert await admin.message("no-such-uuid") is None


async def test_ready_delayed_running_and_dead(ops: ModuleType, admin: AdminView) -> None:
    [ready] = states.ready(ops, 1)
    [delayed] = states.delayed(ops, 1)
    [running] = states.running(ops, 1, "sleepy")
    [dead] = states.dead(ops, 1, "boom")
    found = {m.uuid: await admin.message(m.uuid) for m in (ready, delayed, running, dead)}
    assert {uuid: info.state for uuid, info in found.items()} == {
        ready.uuid: "ready",
        delayed.uuid: "delayed",
        running.uuid: "running",
        dead.uuid: "dead",
    }
    info = found[ready.uuid]
    assert (info.queue, info.task, info.data["args"]) == ("ops", "add", [0, 1])
    assert info.status is not None and info.status.value is TaskStatus.SUBMITTED
    assert [h.value for h in found[running.uuid].history] == [
        TaskStatus.SUBMITTED,
        TaskStatus.RUNNING,
    ]
    error = found[dead.uuid].error
    assert error is not None and (error.type, error.message) == ("ValueError", "boom on purpose")
    assert error.traceback == "Traceback: ..."


async def test_done_with_its_result_and_timeline(ops: ModuleType, admin: AdminView) -> None:
    message = ops.add.generate(args=(2, 3))
    claim = ops.broker.claim(
        [ClaimSource("ops", ("add",))], 1, "test-owner", status=ops.tracker.claim_status()
    )
    [claimed] = claim.messages
    ops.broker.ack(claimed, effects=ops.add.success_effects(claimed, 5))
    info = await admin.message(message.uuid)
    assert info is not None
    assert (info.state, info.result, info.data, info.error) == ("done", 5, None, None)
    assert [h.value for h in info.history] == [
        TaskStatus.SUBMITTED,
        TaskStatus.RUNNING,
        TaskStatus.SUCCEEDED,
    ]
    times = [h.at for h in info.history]
    assert times == sorted(times) and None not in times


async def test_unknown_when_only_a_status_is_left(ops: ModuleType, admin: AdminView) -> None:
    [message] = states.ready(ops, 1)
    assert await admin.purge("ops") == 1
    info = await admin.message(message.uuid)
    assert info is not None and (info.state, info.data) == ("unknown", None)
    assert info.status is not None and info.status.value is TaskStatus.SUBMITTED


async def test_a_uuid_record_lives_as_long_as_something_can_be_found(
    ops: ModuleType, redis_client: redis.Redis, namespace: str
) -> None:
    bare = Message("bare", queue="ops")
    ops.broker.submit(bare)
    record = f"{namespace}:uuids:{bare.uuid}"
    assert redis_client.exists(record)
    [claimed] = ops.broker.claim([ClaimSource("ops", ("bare",))], 1, "test-owner").messages
    ops.broker.ack(claimed)  # nothing of it is left: no status, no result
    assert not redis_client.exists(record)
    [done] = states.ready(ops, 1)
    [claimed] = ops.broker.claim([ClaimSource("ops", ("add",))], 1, "test-owner").messages
    ops.broker.ack(claimed, effects=ops.add.success_effects(claimed, 1))
    # The status expires after the tracker's ttl; the result never (result_ttl None).
    assert redis_client.pttl(f"{namespace}:uuids:{done.uuid}") == -1


async def test_on_the_cluster_path_a_refused_finish_leaves_the_record(
    ops: ModuleType, redis_client: redis.Redis, namespace: str
) -> None:
    """With one script per slot (Redis Cluster), the record's retention is sent only after the
    finishing script answered OK: a stale worker's refused ack changes nothing."""
    ops.broker._one_queue_per_call = True
    try:
        message = Message("bare", queue="ops")
        ops.broker.submit(message)
        record = f"{namespace}:uuids:{message.uuid}"
        source = [ClaimSource("ops", ("bare",))]
        [stale] = ops.broker.claim(source, 1, "stale-owner", lease_ttl=50).messages
        [current] = eventually(
            lambda: ops.broker.claim(source, 1, "current-owner").messages,
            10,
            "the expired lease reclaimed",
        )
        with pytest.raises(LeaseLostError):
            ops.broker.ack(stale)
        assert redis_client.exists(record)
        ops.broker.fail(current)
        assert 0 < redis_client.pttl(record) <= (ops.broker.dlq_ttl or 0)
    finally:
        ops.broker._one_queue_per_call = None
