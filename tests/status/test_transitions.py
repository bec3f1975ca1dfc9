"""Status and result writes riding in broker operations: one call each, nothing when refused."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from alsek.core.broker import ClaimSource
from alsek.core.message import Message
from alsek.core.status import TaskStatus
from alsek.exceptions import LeaseLostError, MessageAlreadyExistsError, TaskFailedError
from tests.polling import call, until
from tests.status.conftest import Kit, close, first, make

OWNER = "lock:test-host:process:1:lease:abc"


async def claim_one(kit: Kit, owner: str = OWNER, **kwargs: Any) -> Message:
    claimed = await call(kit.broker.claim, [ClaimSource("q")], 1, owner, **kwargs)
    [message] = claimed.messages
    return message


async def submitted(kit: Kit, **fields: Any) -> Message:
    message = make(result_ttl=60_000, **fields)
    effects = kit.tracker.effects(message, TaskStatus.SUBMITTED)
    await call(kit.broker.submit, message, effects=effects)
    return message


async def running(kit: Kit) -> Message:
    await submitted(kit)
    return await claim_one(kit, status=kit.tracker.claim_status())


def stolen(message: Message) -> Message:
    """The message as seen by a worker whose lease was taken over by another."""
    assert message.linked_lock is not None
    message.linked_lock = {"name": message.linked_lock["name"], "owner_id": "someone-else:1"}
    return message


async def status_of(kit: Kit, message: Message) -> TaskStatus:
    return (await call(kit.tracker.get, message)).value  # type: ignore[no-any-return]


def live_members(client: redis.Redis, namespace: str) -> list[str]:
    return list(client.zrange(f"{namespace}:status:{{q}}:live", 0, -1))


# -- submit -------------------------------------------------------------------------------------


async def test_submit_writes_submitted_in_the_same_call(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = await submitted(kit)
    assert await status_of(kit, message) is TaskStatus.SUBMITTED
    assert redis_client.pttl(kit.tracker._key(message)) > kit.tracker.ttl - 5000
    assert live_members(redis_client, namespace) == [f"work:{message.uuid}"]


async def test_a_refused_submit_writes_no_status(kit: Kit) -> None:
    original = make(args=(1,))
    await call(kit.broker.submit, original)
    clash = make(args=(2,), uuid=original.uuid)
    effects = kit.tracker.effects(clash, TaskStatus.SUBMITTED)
    with pytest.raises(MessageAlreadyExistsError):
        await call(kit.broker.submit, clash, effects=effects)
    assert await call(kit.tracker.exists, original) is False


async def test_submit_many_writes_each_message_status(kit: Kit) -> None:
    messages = [make() for _ in range(3)]
    effects = [kit.tracker.effects(m, TaskStatus.SUBMITTED) for m in messages]
    await call(kit.broker.submit_many, messages, effects=effects)
    assert [await status_of(kit, m) for m in messages] == [TaskStatus.SUBMITTED] * 3


# -- claim --------------------------------------------------------------------------------------


async def test_claim_writes_running_for_what_it_claims(kit: Kit, redis_client: redis.Redis) -> None:
    message = await submitted(kit)
    updates = kit.tracker.listen_to_updates(message)
    assert (await first(updates)).value is TaskStatus.SUBMITTED
    claimed = await claim_one(kit, status=kit.tracker.claim_status())
    assert claimed.uuid == message.uuid
    assert await status_of(kit, message) is TaskStatus.RUNNING
    assert redis_client.pttl(kit.tracker._key(message)) > kit.tracker.ttl - 5000
    assert (await first(updates)).value is TaskStatus.RUNNING  # published by the claim
    await close(updates)


async def test_claim_status_can_be_limited_to_some_tasks(kit: Kit) -> None:
    message = await submitted(kit)
    await claim_one(kit, status=kit.tracker.claim_status(tasks={"another-task"}))
    assert await status_of(kit, message) is TaskStatus.SUBMITTED


async def test_a_claim_that_finds_nothing_writes_nothing(kit: Kit) -> None:
    claimed = await call(
        kit.broker.claim, [ClaimSource("q")], 1, OWNER, status=kit.tracker.claim_status()
    )
    assert claimed.messages == []


# -- retry --------------------------------------------------------------------------------------


async def test_retry_writes_retrying_in_the_same_call(kit: Kit) -> None:
    message = await running(kit)
    await call(kit.broker.retry, message, effects=kit.tracker.effects(message, TaskStatus.RETRYING))
    assert await status_of(kit, message) is TaskStatus.RETRYING


async def test_a_refused_retry_writes_no_status(kit: Kit) -> None:
    message = stolen(await running(kit))
    with pytest.raises(LeaseLostError):
        await call(
            kit.broker.retry, message, effects=kit.tracker.effects(message, TaskStatus.RETRYING)
        )
    assert await status_of(kit, message) is TaskStatus.RUNNING


# -- fail ---------------------------------------------------------------------------------------


def _failure_effects(kit: Kit, message: Message) -> list[Any]:
    message.update(exception_details={"name": "ValueError", "text": "bad input 7"})
    return [
        *kit.tracker.effects(message, TaskStatus.FAILED),
        *kit.store.failure_effects(message),
    ]


async def test_fail_writes_failed_and_a_failure_record_in_the_same_call(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = await running(kit)
    await call(kit.broker.fail, message, effects=_failure_effects(kit, message))
    assert await status_of(kit, message) is TaskStatus.FAILED
    assert live_members(redis_client, namespace) == []
    with pytest.raises(TaskFailedError, match=r"ValueError: bad input 7"):
        await call(kit.store.get, message)
    with pytest.raises(TaskFailedError, match="ValueError"):
        await call(kit.store.get, message, timeout=5000)  # no waiting for what never comes
    assert await call(kit.store.exists, message) is False


async def test_a_refused_fail_writes_nothing(kit: Kit) -> None:
    message = stolen(await running(kit))
    with pytest.raises(LeaseLostError):
        await call(kit.broker.fail, message, effects=_failure_effects(kit, message))
    assert await status_of(kit, message) is TaskStatus.RUNNING
    with pytest.raises(KeyError):
        await call(kit.store.get, message)


async def test_revoke_writes_failed_in_the_same_call(kit: Kit) -> None:
    message = await submitted(kit)
    await call(kit.broker.revoke, message, effects=kit.tracker.effects(message, TaskStatus.FAILED))
    assert await status_of(kit, message) is TaskStatus.FAILED


# -- ack ----------------------------------------------------------------------------------------


def _success_effects(kit: Kit, message: Message, result: Any) -> list[Any]:
    return [
        *kit.store.effects(message, result),
        *kit.tracker.effects(message, TaskStatus.SUCCEEDED),
    ]


async def test_ack_writes_the_result_and_succeeded_in_the_same_call(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = await running(kit)
    await call(kit.broker.ack, message, effects=_success_effects(kit, message, {"sum": 3}))
    assert await call(kit.store.get, message) == {"sum": 3}
    assert await status_of(kit, message) is TaskStatus.SUCCEEDED
    result_key = f"{namespace}:{kit.store.get_storage_name(message)}"
    assert 55_000 < redis_client.pttl(result_key) <= 60_000
    assert live_members(redis_client, namespace) == []


async def test_a_refused_ack_writes_no_result_and_no_status(kit: Kit) -> None:
    message = stolen(await running(kit))
    with pytest.raises(LeaseLostError):
        await call(kit.broker.ack, message, effects=_success_effects(kit, message, 1))
    assert await call(kit.store.exists, message) is False
    assert await status_of(kit, message) is TaskStatus.RUNNING


async def test_an_expired_lease_refuses_the_late_ack_and_its_writes(
    kit: Kit, redis_client: redis.Redis
) -> None:
    await submitted(kit)
    late = await claim_one(kit, lease_ttl=50, status=kit.tracker.claim_status())
    await until(lambda: redis_client.pttl(kit.broker.lease_key(late)) == -2)
    again = await claim_one(kit, owner="lock:other:process:2:lease:x")
    assert again.uuid == late.uuid
    with pytest.raises(LeaseLostError):
        await call(kit.broker.ack, late, effects=_success_effects(kit, late, "late"))
    assert await call(kit.store.exists, late) is False
    assert await status_of(kit, late) is TaskStatus.RUNNING


async def test_a_redelivered_result_keeps_the_first_and_the_ack_succeeds(kit: Kit) -> None:
    message = await running(kit)
    await call(kit.store.set, message, "first delivery")
    await call(kit.broker.ack, message, effects=_success_effects(kit, message, "second"))
    assert await call(kit.store.get, message) == "first delivery"
    assert await status_of(kit, message) is TaskStatus.SUCCEEDED
