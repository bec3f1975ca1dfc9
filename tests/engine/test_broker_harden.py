"""What real deployments lose or repeat, each shown on a real Redis: re-sent requests, stale
owners, skewed clocks, revocations racing completions, indexes re-created without a TTL, and a
queue registry that only grew. Every body runs on Broker and AsyncBroker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import alsek.utils.temporal as temporal
from alsek.core.broker import BaseBroker, ClaimSource, FollowUp
from alsek.core.broker import keys as broker_keys
from alsek.core.broker.effects import SetEffect
from alsek.core.broker.registry import REGISTRY_IDLE_MS
from alsek.core.message import Message
from alsek.core.steps.ops import RoundTrip, Steps
from alsek.core.steps.sending import send
from alsek.exceptions import LeaseLostError, MessageAlreadyExistsError
from tests.engine.test_broker_protocol import claim, claimed_args, make
from tests.polling import call, until

# -- helpers --------------------------------------------------------------------------------------


def round_trip_of(steps: Steps[Any]) -> RoundTrip:
    """The first round trip an operation asks for: the exact requests it sends."""
    op = next(steps)
    steps.close()
    assert isinstance(op, RoundTrip)
    return op


def resend(client: redis.Redis, op: RoundTrip) -> list[Any]:
    """Send these very requests again, as redis-py does after a lost reply."""
    return send(client, op.requests)


def key(namespace: str, short: str) -> str:
    return f"{namespace}:{short}"


#: A prefix that puts a test's own key in the slot of queue "q" (``make()``'s): effects ride
#: in the broker's scripts, which on a Cluster may only touch keys of their queue's slot.
IN_QUEUE_SLOT = broker_keys.queue_base("q")


class ShiftedClock:
    """``time`` as seen by a host whose clock is ``offset`` seconds off."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def skew(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``skew(seconds)`` shifts this process's alsek clock (0: back to true time)."""

    def shift(seconds: float) -> None:
        monkeypatch.setattr(temporal, "time", ShiftedClock(seconds))

    yield shift


# -- a re-sent submit is a no-op once the message was ever accepted -----------------------------


async def test_a_resent_submit_after_a_claim_changes_nothing(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    message = make()
    status = key(namespace, IN_QUEUE_SLOT + ":status-of-the-test")
    submit = round_trip_of(broker._submit_one_steps(message, 60_000, [SetEffect(status, "SUB")]))
    resend(redis_client, submit)
    [claimed] = (await claim(broker)).messages
    redis_client.set(status, "RUNNING")
    assert resend(redis_client, submit)[0] == ["OK", 1]  # the reply was lost: sent again
    assert redis_client.get(status) == "RUNNING"
    assert (await claim(broker)).messages == []
    assert await call(broker.renew, [claimed]) == [True]


async def test_a_resent_submit_after_an_ack_does_not_run_the_message_again(
    broker: BaseBroker, redis_client: redis.Redis
) -> None:
    message = make()
    submit = round_trip_of(broker._submit_one_steps(message, 60_000, ()))
    resend(redis_client, submit)
    [claimed] = (await claim(broker)).messages
    assert await call(broker.ack, claimed) is True
    resend(redis_client, submit)
    assert not await call(broker.exists, message)
    assert (await claim(broker)).messages == []


async def test_a_resent_ack_with_its_callback_neither_reruns_the_callback_nor_fails(
    broker: BaseBroker, redis_client: redis.Redis
) -> None:
    await call(broker.submit, make(args=("parent",)))
    [parent] = (await claim(broker)).messages
    child = make("child", queue="other", args=("child",))
    ack = round_trip_of(broker._ack_steps(parent, (), "ack", [FollowUp(child)]))
    assert resend(redis_client, ack)[-1] == "OK"
    [got] = (await claim(broker, 10, ClaimSource("other"))).messages
    assert await call(broker.ack, got) is True
    replies = resend(redis_client, ack)  # the pipeline re-sent after a lost reply
    assert replies[0] == ["OK", 1] and replies[-1] == "ALREADY"
    assert (await claim(broker, 10, ClaimSource("other"))).messages == []


async def test_a_new_request_may_run_an_acked_message_again(broker: BaseBroker) -> None:
    message = make()
    await call(broker.submit, message)
    [claimed] = (await claim(broker)).messages
    await call(broker.ack, claimed)
    await call(broker.submit, message)  # a new call: a new request id
    assert [m.uuid for m in (await claim(broker)).messages] == [message.uuid]


async def test_a_repeated_submit_of_a_queued_message_applies_no_effect_again(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    message = make()
    status = key(namespace, IN_QUEUE_SLOT + ":status-of-the-test")
    await call(broker.submit, message, effects=[SetEffect(status, "SUBMITTED")])
    redis_client.set(status, "SOMETHING-LATER")
    await call(broker.submit, message, effects=[SetEffect(status, "SUBMITTED")])  # new request
    assert redis_client.get(status) == "SOMETHING-LATER"


async def test_a_refused_submit_is_not_remembered_as_done(
    broker: BaseBroker, redis_client: redis.Redis
) -> None:
    first = make(args=("first",))
    await call(broker.submit, first)
    rival = first.clone().update(args=("rival",))  # same uuid, another body
    submit = round_trip_of(broker._submit_one_steps(rival, 60_000, ()))
    assert resend(redis_client, submit)[0][0] == "EXISTS"
    [claimed] = (await claim(broker)).messages
    assert await call(broker.ack, claimed) is True
    assert resend(redis_client, submit)[0] == ["OK", 1]  # the same request, now written
    assert await claimed_args(broker) == ["rival"]


async def test_forgotten_request_ids_are_pruned_as_submits_go_on(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    requests = key(namespace, broker_keys.requests_key("q"))
    await call(broker.submit, make())
    redis_client.zadd(requests, {"long-forgotten": 1})  # its memory ran out long ago
    for i in range(64):  # the prune period of the submit script (REQUEST_PRUNE_EVERY)
        await call(broker.submit, make(args=(i,)))
    assert redis_client.zscore(requests, "long-forgotten") is None
    assert redis_client.zcard(requests) == 65


# -- sync_to_backend checks the lease -------------------------------------------------------------


async def test_a_stale_owner_cannot_overwrite_the_body(broker: BaseBroker) -> None:
    await call(broker.submit, make(args=("original",)))
    [stale] = (await claim(broker, 1, lease_ttl=100)).messages
    current = await until(lambda: claim_one(broker), what="the message reclaimed")
    stale.update(args=("stale",))
    with pytest.raises(LeaseLostError):
        await call(broker.sync_to_backend, stale)
    assert (await call(broker.sync_from_backend, current)).args == ("original",)


async def claim_one(broker: BaseBroker) -> Message | None:
    messages = (await claim(broker, 1)).messages
    return messages[0] if messages else None


async def test_the_owner_rewrites_the_body_and_the_index_follows_its_priority(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    await call(broker.submit_many, [make(args=("a",), priority=5), make(args=("b",), priority=3)])
    [b] = (await claim(broker, 1, ClaimSource("q", ("work",)))).messages
    assert b.args == ("b",)
    b.update(priority=9)
    await call(broker.sync_to_backend, b)
    await call(broker.release, b)
    assert await claimed_args(broker) == ["a", "b"]  # released at its new priority, 9 > 5


async def test_an_operator_rewrites_a_queued_message_without_a_lease(broker: BaseBroker) -> None:
    first, second = make(args=("first",), priority=1), make(args=("second",), priority=2)
    await call(broker.submit_many, [first, second])
    second.update(priority=0)
    await call(broker.sync_to_backend, second)  # queued: it moves to its new place
    assert await claimed_args(broker) == ["second", "first"]


# -- Redis decides what time it is --------------------------------------------------------------


async def test_a_fast_consumer_clock_does_not_claim_a_delayed_message_early(
    broker: BaseBroker, skew: Any
) -> None:
    await call(broker.submit, make(delay=60_000))
    skew(61)  # the consumer's host is 61 s fast
    result = await claim(broker)
    assert result.messages == []
    assert result.next_due is not None
    # next_due is on the consumer's clock: about 60 s from its (skewed) now.
    assert 55_000 < result.next_due - temporal.utcnow_timestamp_ms() <= 60_000


async def test_a_slow_consumer_clock_claims_a_due_message_on_time(
    broker: BaseBroker, skew: Any
) -> None:
    await call(broker.submit, make(delay=200))
    skew(-61)  # the consumer's host is 61 s slow
    assert await until(lambda: claim_one(broker), what="the delayed message claimed")


async def test_a_skewed_producer_clock_keeps_the_delay_it_asked_for(
    broker: BaseBroker, skew: Any
) -> None:
    skew(61)  # the producer's host is 61 s fast: its ready_at lies 61 s ahead of Redis's
    message = make(delay=200)
    before = time.monotonic()
    await call(broker.submit, message)
    skew(0)
    assert await until(lambda: claim_one(broker), what="the delayed message claimed")
    assert time.monotonic() - before >= 0.2  # not early either


async def test_a_retry_from_a_skewed_host_waits_its_backoff_by_the_server_clock(
    broker: BaseBroker, skew: Any
) -> None:
    await call(broker.submit, make())  # backoff: 200 ms
    [message] = (await claim(broker)).messages
    skew(-61)
    before = time.monotonic()
    await call(broker.retry, message)
    skew(0)
    assert await until(lambda: claim_one(broker), what="the retried message claimed")
    assert time.monotonic() - before >= 0.2  # its backoff, not 61 s less


async def test_dead_letters_are_pruned_by_the_server_clock(broker: BaseBroker, skew: Any) -> None:
    await call(broker.submit, make())
    [message] = (await claim(broker)).messages
    await call(broker.fail, message)
    skew(8 * 24 * 3600)  # a host a week and a day ahead: its clock says the entry expired
    assert await call(broker.dlq_count, "q") == 1
    assert [d.uuid for d in await call(broker.dlq_list, "q")] == [message.uuid]


# -- revocation ---------------------------------------------------------------------------------


async def test_a_revocation_racing_completion_leaves_the_success_alone(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    status = key(namespace, IN_QUEUE_SLOT + ":status-of-the-test")
    message = make()
    await call(broker.submit, message)
    [running] = (await claim(broker)).messages
    await call(broker.ack, running, effects=[SetEffect(status, "SUCCEEDED")])
    revoked = await call(broker.revoke, message, effects=[SetEffect(status, "FAILED")])
    assert revoked is False
    assert redis_client.get(status) == "SUCCEEDED"
    assert not await call(broker.in_dlq, message)
    assert not await call(broker.is_revoked, message)


async def test_a_revoked_uuid_is_not_submitted_again_until_requeued(broker: BaseBroker) -> None:
    message, other = make(args=("revoked",)), make(args=("other",))
    await call(broker.submit, message)
    assert await call(broker.revoke, message) is True
    with pytest.raises(MessageAlreadyExistsError, match=r"revoked.*duplicate"):
        await call(broker.submit, message)
    with pytest.raises(MessageAlreadyExistsError, match=f"revoked.*{message.uuid}"):
        await call(broker.submit_many, [message, other])
    assert await claimed_args(broker) == ["other"]
    await call(broker.requeue_from_dlq, message)
    assert await claimed_args(broker) == ["revoked"]


# -- index keys never lose their TTL --------------------------------------------------------------


async def test_release_recreates_an_emptied_ready_set_with_a_ttl(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    await call(broker.submit, make())
    ready = key(namespace, broker_keys.ready_key("q", "work"))
    [message] = (await claim(broker)).messages
    assert not redis_client.exists(ready)
    await call(broker.release, message)
    assert redis_client.pttl(ready) > 0


async def test_reclaim_recreates_an_emptied_ready_set_with_a_ttl(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    await call(broker.submit, make())
    ready = key(namespace, broker_keys.ready_key("q", "work"))
    await claim(broker, 1, lease_ttl=50)
    assert not redis_client.exists(ready)
    await until(lambda: call(broker.reclaim_expired, ["q"]), what="the lease reclaimed")
    assert redis_client.pttl(ready) > 0


# -- the queue registry forgets empty queues ------------------------------------------------------


def age_registration(client: redis.Redis, namespace: str, queue: str) -> None:
    """Make ``queue``'s last registration older than any producer keeps it."""
    seen = key(namespace, f"{broker_keys.QUEUE_REGISTRY}:seen")
    client.zadd(seen, {queue: int(time.time() * 1000) - REGISTRY_IDLE_MS - 1})


async def test_a_queue_left_empty_is_forgotten_by_the_next_registry_read(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    await call(broker.submit, make(queue="dynamic-1"))
    await call(broker.submit, make(queue="kept"))
    [message] = (await claim(broker, 1, ClaimSource("dynamic-1"))).messages
    await call(broker.ack, message)
    age_registration(redis_client, namespace, "dynamic-1")
    assert await call(broker.queues) == ["kept"]
    assert not redis_client.sismember(key(namespace, broker_keys.QUEUE_REGISTRY), "dynamic-1")
    assert not redis_client.exists(key(namespace, broker_keys.tasks_key("dynamic-1")))


@pytest.mark.parametrize("holds", ["a delayed message", "a leased message", "a dead letter"])
async def test_a_queue_that_holds_something_stays_registered(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str, holds: str
) -> None:
    message = make(queue="busy", delay=60_000 if holds == "a delayed message" else None)
    await call(broker.submit, message)
    if holds != "a delayed message":
        [claimed] = (await claim(broker, 1, ClaimSource("busy"))).messages
        if holds == "a dead letter":
            await call(broker.fail, claimed)
    age_registration(redis_client, namespace, "busy")
    assert await call(broker.queues) == ["busy"]
    assert await call(broker.queues) == ["busy"]


async def test_an_empty_queue_registered_lately_is_not_forgotten(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    await call(broker.submit, make(queue="again"))
    age_registration(redis_client, namespace, "again")
    broker._registered.clear()  # a producer whose registration expired registers again
    await call(broker.submit, make(queue="again"))
    for message in (await claim(broker, 10, ClaimSource("again"))).messages:
        await call(broker.ack, message)
    # Empty, but a producer registered it lately and may submit again without registering.
    assert await call(broker.queues) == ["again"]


async def test_a_queue_registered_by_an_older_alsek_gets_a_time_and_is_kept(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    redis_client.sadd(key(namespace, broker_keys.QUEUE_REGISTRY), "legacy")
    assert await call(broker.queues) == ["legacy"]
    seen = key(namespace, f"{broker_keys.QUEUE_REGISTRY}:seen")
    assert redis_client.zscore(seen, "legacy") is not None
