"""A finish (ack, remove, fail, retry) applies its effects once: a finish sent without a lease
changes nothing on a message that is already gone, and a delivery's repeat of its own finish
(its reply was lost, or its replicas fell short) answers as the first did, applying nothing
again, for as long as a pool may send it (longer than a short lease)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from alsek.core.broker import BaseBroker, ClaimSource
from alsek.core.broker.effects import SetEffect
from alsek.core.message import Message
from alsek.defaults import DEFAULT_LEASE_TTL
from tests.engine.conftest import namespace_keys
from tests.polling import call, until

OWNER = "lock:test-host:process:1:lease:once"


def probe(namespace: str) -> SetEffect:
    """An effect whose key shows whether a finish applied its effects."""
    return SetEffect(f"{namespace}:queues:{{q}}:probe", "applied", ttl=60_000)


async def claimed(broker: BaseBroker, lease_ttl: int | None = None) -> Message:
    await call(broker.submit, Message("work", queue="q"))
    claim = await call(broker.claim, [ClaimSource("q")], 1, OWNER, lease_ttl=lease_ttl)
    [message] = claim.messages
    return message


async def finish(broker: BaseBroker, operation: str, message: Message, effect: SetEffect) -> Any:
    if operation == "remove":
        return await call(broker.remove, message)
    if operation == "retry":
        return await call(broker.retry, message, effects=[effect], delay=0)
    return await call(getattr(broker, operation), message, effects=[effect])


@pytest.mark.parametrize("operation", ["ack", "remove", "fail"])
async def test_a_finish_without_a_lease_changes_nothing_on_a_message_already_gone(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str, operation: str
) -> None:
    message = await claimed(broker)
    producers_copy = message.clone().update(linked_lock=None)
    assert await call(broker.ack, message)  # its worker finished it
    before = namespace_keys(redis_client, namespace)
    outcome = await finish(broker, operation, producers_copy, probe(namespace))
    assert outcome in (False, None)  # ack: "already gone"
    assert set(namespace_keys(redis_client, namespace)) == set(before)  # no effect, no letter
    assert not await call(broker.in_dlq, producers_copy)


@pytest.mark.parametrize("operation", ["ack", "fail", "retry"])
async def test_a_repeat_of_a_deliverys_own_finish_after_its_lease_applies_nothing_again(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str, operation: str
) -> None:
    lease_ttl = 1_000  # the first finish comes well within it, even on a loaded machine
    claimed_at = time.monotonic()
    message = await claimed(broker, lease_ttl=lease_ttl)
    repeat = message.clone()
    effect = probe(namespace)
    assert await finish(broker, operation, message, effect) in (True, None)
    redis_client.delete(effect.key)
    lease_key = f"lock:{namespace}:queues:{{q}}:messages:{message.uuid}"
    if operation != "retry":  # the finish mark outlives the lease, as long as pools repeat
        assert redis_client.pttl(lease_key) > DEFAULT_LEASE_TTL - 5_000
    await until(lambda: time.monotonic() > claimed_at + 2 * lease_ttl / 1000, what="the lease")
    assert await finish(broker, operation, repeat, effect) in (True, None)
    assert not redis_client.exists(effect.key)
    if operation == "retry":
        [again] = (await call(broker.claim, [ClaimSource("q")], 1, OWNER)).messages
        assert again.retries == 1  # retried once, not twice
