"""Revocation: one broker call flags, removes, dead-letters, announces and records FAILED."""

from __future__ import annotations

import pytest
import redis

from alsek.core.status import TaskStatus
from alsek.core.steps.hub import Published, subscribe
from alsek.exceptions import RevokedError, TaskFailedError
from alsek.utils.parsing import get_exception_name
from tests.polling import call
from tests.task.conftest import Kit


async def test_revoking_a_queued_message(kit: Kit, redis_client: redis.Redis) -> None:
    task = kit.task(status_tracker=kit.tracker, result_store=kit.store)
    message = await call(task.generate, args=(1, 2))
    subscription = subscribe(redis_client, [kit.broker.revocation_channel(message.queue)])

    await call(task.revoke, message)

    assert (await call(kit.tracker.get, message)).value is TaskStatus.FAILED
    assert await call(task.is_revoked, message)
    assert redis_client.get(f"{kit.namespace}:{task._make_revoked_key_name(message)}") == "true"
    assert await call(kit.broker.in_dlq, message)
    assert not await call(kit.broker.exists, message)
    assert await kit.claim() == []
    announced = subscription.receive(timeout=5)
    subscription.close()
    assert isinstance(announced, Published) and announced.data == message.uuid
    with pytest.raises(TaskFailedError, match="RevokedError"):
        await call(kit.store.get, message)
    [dead] = await call(kit.broker.dlq_list, "q")
    assert dead.message.exception_details.name == get_exception_name(RevokedError)
    assert "Task Revoked" in dead.reason


async def test_revoke_without_a_tracker(kit: Kit) -> None:
    task = kit.task()
    message = await call(task.generate, args=(1, 2))
    await call(task.revoke, message)
    assert await call(task.is_revoked, message)
    assert await call(kit.broker.in_dlq, message)


async def test_a_message_never_revoked_is_not_revoked(kit: Kit) -> None:
    task = kit.task()
    message = await call(task.generate, args=(1, 2))
    assert not await call(task.is_revoked, message)


@pytest.mark.parametrize("status", [TaskStatus.SUCCEEDED, TaskStatus.FAILED])
async def test_a_message_in_a_terminal_status_is_not_revoked(kit: Kit, status: TaskStatus) -> None:
    task = kit.task(status_tracker=kit.tracker)
    message = await call(task.generate, args=(1, 2))
    await call(task.update_status, message, status)
    await call(task.revoke, message)
    assert not await call(task.is_revoked, message)
    assert await call(kit.broker.exists, message)
    assert (await call(kit.tracker.get, message)).value is status


async def test_a_message_without_a_status_yet_is_revoked(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    message = await call(task.generate, args=(1, 2))
    await call(kit.tracker.delete, message, check=False)
    await call(task.revoke, message)
    assert await call(task.is_revoked, message)
    assert (await call(kit.tracker.get, message)).value is TaskStatus.FAILED


async def test_skip_if_running_needs_a_tracker(kit: Kit) -> None:
    task = kit.task()
    message = await call(task.generate, args=(1, 2))
    with pytest.raises(AttributeError, match="status tracker"):
        await call(task.revoke, message, skip_if_running=True)
    assert not await call(task.is_revoked, message)


async def test_skip_if_running_leaves_a_running_message_alone(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    message = await call(task.generate, args=(1, 2))
    [claimed] = await kit.claim(status=task.running_claim_status())
    assert (await call(kit.tracker.get, message)).value is TaskStatus.RUNNING
    await call(task.revoke, claimed, skip_if_running=True)
    assert not await call(task.is_revoked, message)
    assert (await call(kit.tracker.get, message)).value is TaskStatus.RUNNING


async def test_skip_if_running_still_revokes_a_queued_message(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    message = await call(task.generate, args=(1, 2))
    await call(task.revoke, message, skip_if_running=True)
    assert await call(task.is_revoked, message)


async def test_revoking_a_running_message_without_skip_revokes_it(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    await call(task.generate, args=(1, 2))
    [claimed] = await kit.claim(status=task.running_claim_status())
    await call(task.revoke, claimed)
    assert await call(task.is_revoked, claimed)
    assert (await call(kit.tracker.get, claimed)).value is TaskStatus.FAILED
    assert not await call(kit.broker.exists, claimed)
