"""Broker operations on a real Redis, each test run on Broker and AsyncBroker."""

from __future__ import annotations

import time

import pytest
import redis

from alsek.core.backoff import ConstantBackoff
from alsek.core.broker import BaseBroker, ClaimSource
from alsek.core.message import Message
from alsek.core.steps.hub import Published, subscribe
from alsek.defaults import DEFAULT_LEASE_TTL
from alsek.exceptions import (
    LeaseLostError,
    MessageAlreadyExistsError,
    MessageDoesNotExistsError,
)
from tests.engine.conftest import namespace_keys
from tests.polling import call

OWNER = "lock:test-host:process:1:lease:abc"


def make(task: str = "work", queue: str = "q", **kwargs: object) -> Message:
    return Message(
        task, queue=queue, backoff_settings=ConstantBackoff(200, floor=0).settings, **kwargs
    )  # type: ignore[arg-type]


async def claim(broker: BaseBroker, n: int = 10, *sources: ClaimSource, **kwargs: object):
    return await call(broker.claim, list(sources) or [ClaimSource("q")], n, OWNER, **kwargs)


async def claimed_args(broker: BaseBroker, n: int = 100, *sources: ClaimSource) -> list[object]:
    return [message.args[0] for message in (await claim(broker, n, *sources)).messages]


# -- submit ---------------------------------------------------------------------------------


async def test_submit_then_claim_returns_the_same_message(broker: BaseBroker) -> None:
    message = make(args=(1, 2), kwargs={"x": 3}, metadata={"m": 1})
    await call(broker.submit, message)
    [got] = (await claim(broker)).messages
    assert (got.uuid, got.args, got.kwargs, got.metadata) == (
        message.uuid,
        (1, 2),
        {"x": 3},
        {"m": 1},
    )
    assert got.linked_lock is not None and got.linked_lock["owner_id"].startswith(OWNER)


async def test_submit_of_a_different_message_with_an_existing_uuid_writes_nothing(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    first = make(args=(1,))
    await call(broker.submit, first)
    before = namespace_keys(redis_client, namespace)
    with pytest.raises(MessageAlreadyExistsError, match=first.uuid):
        await call(broker.submit, make(args=(2,), uuid=first.uuid))
    assert namespace_keys(redis_client, namespace).keys() == before.keys()
    [got] = (await claim(broker)).messages
    assert got.args == (1,)


async def test_repeating_the_same_submit_is_idempotent(broker: BaseBroker) -> None:
    message = make(args=(1,))
    await call(broker.submit, message)
    await call(broker.submit, message)  # e.g. a client retry after a dropped connection
    assert len((await claim(broker)).messages) == 1


async def test_submit_many_writes_thousands_across_chunks_and_queues(broker: BaseBroker) -> None:
    messages = [make(queue="q" if i % 2 else "r", args=(i,)) for i in range(1300)]
    await call(broker.submit_many, messages)
    got_q = await claimed_args(broker, 2000, ClaimSource("q"))
    got_r = await claimed_args(broker, 2000, ClaimSource("r"))
    assert got_q == [i for i in range(1300) if i % 2]
    assert got_r == [i for i in range(1300) if not i % 2]


async def test_submit_many_writes_the_others_and_names_the_conflicting_uuids(
    broker: BaseBroker,
) -> None:
    existing = make(args=(-1,))
    await call(broker.submit, existing)
    batch = [make(args=(i,)) for i in range(5)]
    batch[2] = make(args=(2,), uuid=existing.uuid)
    with pytest.raises(MessageAlreadyExistsError, match=existing.uuid):
        await call(broker.submit_many, batch)
    assert sorted(await claimed_args(broker)) == [-1, 0, 1, 3, 4]


async def test_submit_many_rejects_a_uuid_given_twice(broker: BaseBroker) -> None:
    message = make()
    with pytest.raises(ValueError, match="same uuid"):
        await call(broker.submit_many, [message, message])


@pytest.mark.parametrize("priority", [2**53, 2**60])
async def test_priority_beyond_score_precision_is_refused(
    broker: BaseBroker, priority: int
) -> None:
    with pytest.raises(ValueError, match="priority"):
        await call(broker.submit, make(priority=priority))


async def test_unserializable_argument_is_refused_naming_the_field(broker: BaseBroker) -> None:
    with pytest.raises(TypeError, match="'args'"):
        await call(broker.submit, make(args=(object(),)))
    assert (await claim(broker)).messages == []


# -- ordering -------------------------------------------------------------------------------


async def test_lower_priority_value_first_and_fifo_within_a_priority(broker: BaseBroker) -> None:
    messages = [make(args=(i,), priority=p) for i, p in enumerate([2, 0, 1, 0, 2, 1, 0])]
    for message in messages:
        await call(broker.submit, message)
    assert await claimed_args(broker) == [1, 3, 6, 2, 5, 0, 4]


async def test_priority_applies_across_the_tasks_of_a_queue(broker: BaseBroker) -> None:
    await call(broker.submit, make("a", args=("a-low",), priority=5))
    await call(broker.submit, make("b", args=("b-high",), priority=1))
    await call(broker.submit, make("a", args=("a-high",), priority=1))
    assert await claimed_args(broker) == ["b-high", "a-high", "a-low"]


async def test_queues_are_drained_in_subset_order(broker: BaseBroker) -> None:
    for queue in ("b", "a", "c"):
        await call(broker.submit, make(queue=queue, args=(queue,)))
    sources = [ClaimSource("c"), ClaimSource("a"), ClaimSource("b")]
    assert await claimed_args(broker, 10, *sources) == ["c", "a", "b"]


async def test_task_specific_sources_drain_tasks_in_list_order(broker: BaseBroker) -> None:
    await call(broker.submit, make("first", args=("first",), priority=9))
    await call(broker.submit, make("second", args=("second",), priority=0))
    await call(broker.submit, make("ignored", args=("ignored",)))
    source = ClaimSource("q", ("first", "second"))
    assert await claimed_args(broker, 10, source) == ["first", "second"]


async def test_claim_takes_at_most_n(broker: BaseBroker) -> None:
    await call(broker.submit_many, [make(args=(i,)) for i in range(10)])
    assert await claimed_args(broker, 3) == [0, 1, 2]
    assert await claimed_args(broker, 3) == [3, 4, 5]


async def test_claim_refuses_no_sources_and_n_below_one(broker: BaseBroker) -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        await call(broker.claim, [ClaimSource("q")], 0, OWNER)
    with pytest.raises(ValueError, match="source"):
        await call(broker.claim, [], 1, OWNER)


# -- delay and backoff ------------------------------------------------------------------------


async def wait_until_claimed(broker: BaseBroker, deadline_seconds: float = 5.0) -> list[Message]:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        messages = (await claim(broker)).messages
        if messages:
            return messages
        time.sleep(0.01)
    raise AssertionError("nothing became claimable")


async def test_delayed_message_is_claimable_only_when_due_and_reports_next_due(
    broker: BaseBroker,
) -> None:
    message = make(delay=300)
    before = int(time.time() * 1000)
    await call(broker.submit, message)
    result = await claim(broker)
    elapsed = int(time.time() * 1000) - before
    assert result.messages == []
    # Redis judges readiness by its clock; the claim translates it to ours, within the time
    # the calls took.
    assert result.next_due is not None
    assert abs(result.next_due - message.ready_at) <= elapsed + 1
    [got] = await wait_until_claimed(broker)
    assert got.uuid == message.uuid
    assert time.time() * 1000 >= message.ready_at


async def test_retry_waits_for_the_backoff_then_comes_back_with_one_more_retry(
    broker: BaseBroker,
) -> None:
    await call(broker.submit, make())
    [message] = (await claim(broker)).messages
    retried_at = int(time.time() * 1000)
    await call(broker.retry, message)
    assert message.retries == 1 and message.linked_lock is None
    assert message.ready_at >= retried_at + 200
    assert (await claim(broker)).messages == []
    [again] = await wait_until_claimed(broker)
    assert again.retries == 1
    assert time.time() * 1000 >= retried_at + 200


async def test_retry_of_a_missing_message_raises(broker: BaseBroker) -> None:
    with pytest.raises(MessageDoesNotExistsError):
        await call(broker.retry, make())


# -- leases -------------------------------------------------------------------------------------


async def test_two_claims_never_return_the_same_message(broker: BaseBroker) -> None:
    await call(broker.submit_many, [make(args=(i,)) for i in range(20)])
    first = await claimed_args(broker, 12)
    second = await claimed_args(broker, 12)
    assert sorted(first + second) == list(range(20))
    assert not set(first) & set(second)


async def test_expired_lease_is_reclaimed_as_a_lost_attempt(broker: BaseBroker) -> None:
    await call(broker.submit, make())
    [first] = (await claim(broker, 1, lease_ttl=150)).messages
    [again] = await wait_until_claimed(broker)
    assert again.uuid == first.uuid
    assert again.retries == first.retries + 1
    assert again.exception_details is not None
    assert again.exception_details.name == "alsek.exceptions.WorkerLostError"
    assert again.linked_lock != first.linked_lock


async def test_stale_worker_is_refused_and_changes_nothing(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    await call(broker.submit, make())
    [stale] = (await claim(broker, 1, lease_ttl=100)).messages
    [current] = await wait_until_claimed(broker)
    before = namespace_keys(redis_client, namespace)
    for operation in (broker.ack, broker.retry, broker.fail):
        with pytest.raises(LeaseLostError, match="lease"):
            await call(operation, stale.clone())
    assert namespace_keys(redis_client, namespace).keys() == before.keys()
    await call(broker.ack, current)
    assert not await call(broker.exists, current)


async def test_renewed_lease_is_not_reclaimed(broker: BaseBroker) -> None:
    await call(broker.submit, make())
    # Renewed four times, 0.6 s apart: the message outlives its first 2 s lease, and a renewal
    # held up by a loaded machine still has 1.4 s of slack.
    [message] = (await claim(broker, 1, lease_ttl=2000)).messages
    for _ in range(4):
        time.sleep(0.6)
        assert await call(broker.renew, [message], 2000) == [True]
        assert (await claim(broker)).messages == []
    await call(broker.ack, message)


QUEUES = [f"spread-{index}" for index in range(6)]


async def test_leases_of_queues_on_every_master_are_renewed_in_one_round_trip(
    broker: BaseBroker,
) -> None:
    """On a cluster one renew call per slot (the queues here live on every master)."""
    await call(broker.submit_many, [make(queue=queue, args=(queue,)) for queue in QUEUES])
    if broker.backend.is_cluster:
        nodes = {broker.backend.conn.get_node_from_key(f"{{{q}}}").name for q in QUEUES}
        assert len(nodes) == 3
    claimed = (await claim(broker, 10, *(ClaimSource(q) for q in QUEUES), lease_ttl=300)).messages
    assert sorted(m.args[0] for m in claimed) == QUEUES
    for _ in range(3):
        time.sleep(0.15)
        assert await call(broker.renew, claimed, 300) == [True] * len(QUEUES)
    assert await call(broker.reclaim_expired, QUEUES) == 0
    await call(broker.ack, claimed[0])
    assert await call(broker.renew, claimed, 300) == [None] + [True] * (len(QUEUES) - 1)
    for message in claimed[1:]:
        await call(broker.ack, message)


async def test_renew_reports_a_lost_lease(broker: BaseBroker) -> None:
    await call(broker.submit, make())
    [message] = (await claim(broker, 1, lease_ttl=100)).messages
    await wait_until_claimed(broker)
    assert await call(broker.renew, [message]) == [False]


async def test_release_gives_the_message_back_without_counting_an_attempt(
    broker: BaseBroker,
) -> None:
    await call(broker.submit, make())
    [message] = (await claim(broker)).messages
    await call(broker.release, message)
    [again] = (await claim(broker)).messages
    assert again.uuid == message.uuid and again.retries == 0 and again.exception_details is None


async def test_operator_ack_without_a_lease_removes_a_queued_message(broker: BaseBroker) -> None:
    message = make()
    await call(broker.submit, message)
    await call(broker.ack, message)
    assert not await call(broker.exists, message)
    assert (await claim(broker)).messages == []


async def test_repeated_claim_request_returns_the_first_answer(broker: BaseBroker) -> None:
    await call(broker.submit_many, [make(args=(i,)) for i in range(4)])
    first = await claim(broker, 2, request_id="r1")
    repeat = await claim(broker, 2, request_id="r1")
    assert [m.uuid for m in repeat.messages] == [m.uuid for m in first.messages]
    rest = await claim(broker, 10, request_id="r2")
    assert sorted(m.args[0] for m in rest.messages) == [2, 3]


# -- failing, DLQ, revocation -------------------------------------------------------------------


async def test_fail_keeps_a_dead_letter_copy_that_can_be_listed_requeued_and_purged(
    broker: BaseBroker,
) -> None:
    await call(broker.submit, make(args=(7,)))
    [message] = (await claim(broker)).messages
    message.update(exception_details={"name": "ValueError", "text": "bad", "traceback": None})
    await call(broker.fail, message)
    assert not await call(broker.exists, message)
    assert await call(broker.in_dlq, message)
    assert await call(broker.dlq_count, "q") == 1
    [dead] = await call(broker.dlq_list, "q")
    assert dead.uuid == message.uuid and dead.reason == "ValueError: bad"
    assert dead.message is not None and dead.message.args == (7,)
    requeued = await call(broker.requeue_from_dlq, dead.message)
    assert requeued.retries == 0
    assert await call(broker.dlq_count) == 0
    [again] = (await claim(broker)).messages
    assert again.uuid == message.uuid
    await call(broker.fail, again)
    assert await call(broker.purge_dlq) == 1
    assert await call(broker.dlq_count, "q") == 0


async def test_revoke_removes_flags_dead_letters_and_announces(
    broker: BaseBroker, redis_client: redis.Redis
) -> None:
    message = make()
    await call(broker.submit, message)
    subscription = subscribe(redis_client, [broker.revocation_channel(message.queue)])
    await call(broker.revoke, message)
    assert await call(broker.is_revoked, message)
    assert not await call(broker.exists, message)
    assert await call(broker.in_dlq, message)
    announcement = subscription.receive(timeout=2)
    subscription.close()
    assert announcement == Published(broker.revocation_channel("q"), message.uuid)


async def test_sync_from_and_to_backend(broker: BaseBroker) -> None:
    message = make(args=(1,))
    await call(broker.submit, message)
    message.update(metadata={"seen": True})
    await call(broker.sync_to_backend, message)
    assert (await call(broker.sync_from_backend, message)).metadata == {"seen": True}
    with pytest.raises(MessageDoesNotExistsError):
        await call(broker.sync_to_backend, make())
    with pytest.raises(KeyError):
        await call(broker.sync_from_backend, make())


# -- bad input in Redis -------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '{"task_name": "work", "bogus": 1}'])
async def test_undecodable_body_goes_to_the_dlq_and_the_claim_continues(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str, body: str
) -> None:
    bad, good = make(args=("bad",)), make(args=("good",))
    await call(broker.submit_many, [bad, good])
    redis_client.hset(f"{namespace}:queues:{{q}}:messages:{bad.uuid}", "data", body)
    result = await claim(broker)
    assert [m.args for m in result.messages] == [("good",)] and result.rejected == 1
    [dead] = await call(broker.dlq_list, "q")
    assert dead.uuid == bad.uuid and dead.message is None and dead.raw == body
    assert "Undecodable message body" in dead.reason


async def test_index_entry_of_an_expired_message_is_dropped(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    gone, kept = make(args=("gone",)), make(args=("kept",))
    await call(broker.submit_many, [gone, kept])
    redis_client.delete(f"{namespace}:queues:{{q}}:messages:{gone.uuid}")
    assert await claimed_args(broker) == ["kept"]
    assert redis_client.zcard(f"{namespace}:queues:{{q}}:tasks:work:ready") == 0


# -- keys, scripts, registry --------------------------------------------------------------------


async def test_nothing_is_left_but_bounded_bookkeeping_after_acking_everything(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    await call(broker.submit_many, [make(args=(i,), delay=i % 2) for i in range(50)])
    time.sleep(0.01)
    for message in (await claim(broker, 100)).messages:
        await call(broker.ack, message)
    left = namespace_keys(redis_client, namespace)
    finish_marks = {key for key in left if key.startswith(f"lock:{namespace}:queues:{{q}}:")}
    assert len(finish_marks) == 50
    # A finish mark keeps the lease's time, and at least 40 s (FINISH_MEMORY_MS, lib_finish.lua).
    assert all(left[key] <= max(DEFAULT_LEASE_TTL, 40_000) for key in finish_marks)
    # The throughput history: one hash per minute and per hour, each with its TTL.
    history = {key for key in left if key.startswith(f"{namespace}:queues:{{q}}:throughput:")}
    assert len(history) in (2, 3, 4)  # unless the acks straddled a minute (or an hour)
    # Nothing of a message acked without a status or result is left to find by uuid.
    assert set(left) - finish_marks - history <= {
        f"{namespace}:registry:{{queues}}",
        f"{namespace}:registry:{{queues}}:seen",
        f"{namespace}:registry:{{queues}}:wake",
        f"{namespace}:queues:{{q}}:requests",
        f"{namespace}:queues:{{q}}:seq",
        f"{namespace}:queues:{{q}}:tasks",
        f"{namespace}:queues:{{q}}:wake",
    }
    assert all(ttl > 0 for ttl in left.values()), left


async def test_every_key_of_a_queue_shares_its_hash_tag(
    broker: BaseBroker, redis_client: redis.Redis, namespace: str
) -> None:
    await call(broker.submit_many, [make(args=(i,), delay=10_000 * (i % 2)) for i in range(4)])
    [message, other] = (await claim(broker, 2)).messages
    await call(broker.fail, message)
    queue_keys = [k for k in namespace_keys(redis_client, namespace) if "queues:{" in k]
    assert queue_keys and all("{q}" in key for key in queue_keys)
    assert redis_client.cluster_keyslot if hasattr(redis_client, "cluster_keyslot") else True
    await call(broker.ack, other)


async def test_scripts_are_reloaded_after_script_flush(
    broker: BaseBroker, redis_client: redis.Redis
) -> None:
    await call(broker.submit, make(args=(1,)))
    redis_client.script_flush()
    await call(broker.submit, make(args=(2,)))
    await call(broker.submit_many, [make(args=(3,)), make(args=(4,))])
    redis_client.script_flush()
    assert await claimed_args(broker) == [1, 2, 3, 4]


async def test_registry_lists_the_queues_submitted_to(broker: BaseBroker) -> None:
    await call(broker.submit, make(queue="beta"))
    await call(broker.submit, make(queue="alpha"))
    assert await call(broker.queues) == ["alpha", "beta"]
    await call(broker.reclaim_expired)  # all registered queues, nothing expired
    assert await call(broker.reclaim_expired) == 0


async def test_ack_submits_the_next_message_in_the_same_call(broker: BaseBroker) -> None:
    await call(broker.submit, make(args=("parent",)))
    [parent] = (await claim(broker)).messages
    child = make("child", queue="other", args=("child",))
    assert await call(broker.ack, parent, then_submit=child) is True
    [got] = (await claim(broker, 10, ClaimSource("other"))).messages
    assert got.uuid == child.uuid
    assert not await call(broker.exists, parent)


async def test_a_repeated_ack_reports_the_first_ones_success(broker: BaseBroker) -> None:
    await call(broker.submit, make())
    [message] = (await claim(broker)).messages
    copy = message.clone()
    assert await call(broker.ack, message) is True
    assert await call(broker.ack, copy) is True  # e.g. a retried ack whose reply was lost


async def test_ack_of_a_message_someone_else_removed_reports_it_gone(broker: BaseBroker) -> None:
    await call(broker.submit, make())
    [message] = (await claim(broker)).messages
    await call(broker.revoke, message.clone())
    assert await call(broker.ack, message) is False


async def test_revoked_checks_many_messages_in_one_call(broker: BaseBroker) -> None:
    kept, revoked = make(), make()
    await call(broker.submit_many, [kept, revoked])
    await call(broker.revoke, revoked)
    assert await call(broker.revoked, [kept, revoked]) == [False, True]
    assert await call(broker.revoked, []) == []


async def test_renew_reports_a_message_finished_meanwhile_as_gone(broker: BaseBroker) -> None:
    await call(broker.submit, make())
    [message] = (await claim(broker)).messages
    stale = message.clone()
    await call(broker.ack, message)
    assert await call(broker.renew, [stale]) == [None]


async def test_claim_of_named_tasks_takes_the_best_across_them_and_leaves_the_others(
    broker: BaseBroker,
) -> None:
    await call(broker.submit, make("mine", args=("mine-5",), priority=5))
    await call(broker.submit, make("theirs", args=("theirs",), priority=0))
    await call(broker.submit, make("also-mine", args=("also-mine-1",), priority=1))
    await call(broker.submit, make("mine", args=("mine-1",), priority=1))
    source = ClaimSource("q", ("mine", "also-mine"), ordered=False)
    assert await claimed_args(broker, 10, source) == ["also-mine-1", "mine-1", "mine-5"]
    assert await claimed_args(broker, 10, ClaimSource("q")) == ["theirs"]


def test_a_claim_source_naming_no_task_is_refused() -> None:
    with pytest.raises(ValueError, match="names no task"):
        ClaimSource("q", ())


@pytest.mark.parametrize("one_queue_per_call", [False, True])
async def test_claims_across_queues_keep_their_order_with_one_call_per_queue(
    broker: BaseBroker, one_queue_per_call: bool
) -> None:
    """The Redis Cluster path (one script call per queue) claims what the single call does."""
    if broker.backend.is_cluster and not one_queue_per_call:
        pytest.skip("a cluster takes one queue per script call")
    broker._one_queue_per_call = one_queue_per_call
    for queue in ("b", "a", "c"):
        await call(broker.submit_many, [make(queue=queue, args=(f"{queue}{i}",)) for i in range(3)])
    await call(broker.submit, make(queue="d", args=("later",), delay=60_000))
    sources = [ClaimSource(q) for q in ("c", "a", "b", "d")]
    assert await claimed_args(broker, 4, *sources) == ["c0", "c1", "c2", "a0"]
    rest = await claim(broker, 10, *sources)
    assert [m.args[0] for m in rest.messages] == ["a1", "a2", "b0", "b1", "b2"]
    assert rest.next_due is not None and rest.next_due > time.time() * 1000
    assert await call(broker.reclaim_expired, ["a", "b", "c", "d"]) == 0
