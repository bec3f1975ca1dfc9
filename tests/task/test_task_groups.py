"""Groups against Redis, sync and async: the record counts members down in their acks, and
the ack that reaches 0 submits the completion callback, once."""

from __future__ import annotations

from typing import Any

import pytest

from alsek.core.workflow import group
from alsek.exceptions import TaskFailedError
from tests.polling import call
from tests.task.conftest import Kit


async def _ack(kit: Kit, task: Any, message: Any, result: Any, repeat: bool = False) -> None:
    lease = message.linked_lock
    await call(kit.broker.ack, message, effects=task.success_effects(message, result))
    if repeat:  # the same delivery's ack again (its reply lost): ALREADY, nothing applied
        message.linked_lock = lease
        await call(kit.broker.ack, message, effects=task.success_effects(message, result))


async def test_the_last_members_ack_submits_the_callback_once(kit: Kit) -> None:
    task = kit.task(result_store=kit.store)
    members = [await call(task.generate, args=(i, 1), submit=False) for i in range(3)]
    callback = await call(task.generate, args=(0, 0), submit=False, queue="after")
    flow = group(members).add_completion_callback(callback)
    assert await call(flow.run) is flow
    claimed = {m.uuid: m for m in await kit.claim()}
    assert sorted(claimed) == sorted(m.uuid for m in members)
    for member in members[:2]:
        await _ack(kit, task, claimed[member.uuid], member.args[0] + 1, repeat=True)
    assert not await call(kit.broker.exists, callback)
    assert not await call(flow.completed, kit.store)
    await _ack(kit, task, claimed[members[2].uuid], 3)
    assert await call(kit.broker.exists, callback)
    assert await call(flow.completed, kit.store)
    assert await call(flow.results, kit.store) == [1, 2, 3]
    [queued] = await kit.claim(queue="after")
    assert queued.uuid == callback.uuid and queued.args == (0, 0)


async def test_results_name_the_member_that_failed(kit: Kit) -> None:
    task = kit.task(result_store=kit.store)
    members = [await call(task.generate, args=(i, 1), submit=False) for i in range(2)]
    flow = await call(group(members).run)
    claimed = {m.uuid: m for m in await kit.claim()}
    await _ack(kit, task, claimed[members[0].uuid], 1)  # results are read in order
    failed = claimed[members[1].uuid].update(exception_details={"name": "KeyError", "text": "k"})
    await call(kit.broker.fail, failed, effects=task.failure_effects(failed))
    with pytest.raises(TaskFailedError, match=rf"Member 1 of group {flow.group_id} .*KeyError"):
        await call(flow.results, kit.store, timeout=5_000)


def test_on_redis_cluster_a_group_must_stay_in_one_queue(sync_kit: Kit) -> None:
    task = sync_kit.task()
    sync_kit.broker._one_queue_per_call = True  # the path a Cluster client takes
    members = [task.generate(args=(1, 1), submit=False, queue=q) for q in ("q", "other")]
    with pytest.raises(ValueError, match=r"share one queue .*\['other', 'q'\]"):
        group(members).run()
    assert not any(sync_kit.broker.exists(m) for m in members)
    callback = task.generate(args=(1, 1), submit=False, queue="other")
    single = group([task.generate(args=(1, 1), submit=False)]).add_completion_callback(callback)
    with pytest.raises(ValueError, match="share one queue"):
        single.run()


def test_a_group_refuses_what_it_cannot_run(sync_kit: Kit) -> None:
    task = sync_kit.task()
    message = task.generate(args=(1, 1), submit=False)
    with pytest.raises(ValueError, match="same message twice"):
        group([message, message])
    with pytest.raises(ValueError, match="at least one member"):
        group([])
    flow = group([message]).run()
    with pytest.raises(RuntimeError, match="already ran"):
        flow.add_completion_callback(task.generate(args=(1, 1), submit=False))
