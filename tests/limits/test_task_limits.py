"""Task limits (``concurrency_limit``, ``concurrency_key``, ``rate_limit``) in the claim script,
on real Redis through the broker's own claim: what a claim takes and leaves, that a message held
back is no attempt, that every end of a lease gives its slot back (and wakes an idle pool), and
the refusals of bad options. The pools' side is in tests/pools/test_pool_task_limits.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from alsek.core.broker import Broker, ClaimSource, keys
from alsek.core.message import Message
from alsek.core.task import Task, task
from alsek.core.task_limits import RateLimit, parse_rate_limit
from alsek.core.workflow import group
from alsek.testing.worker import InProcessWorker
from tests.polling import eventually

#: The limits' keys live in their queue's slot: the same claims on a cluster.
pytestmark = pytest.mark.servers("redis", "cluster")

QUEUE = "limited"
OWNER = "test-owner"


def work(account: str = "a", n: int = 0) -> int:
    return n


def other(n: int = 0) -> int:
    return n


def make(broker: Broker, function: Any = work, **options: Any) -> Task[Any, Any]:
    return Task(function, broker=broker, queue=QUEUE, max_retries=0, backoff=None, **options)


def claim(broker: Broker, n: int = 10, lease_ttl: int = 30_000, **source: Any) -> Any:
    return broker.claim([ClaimSource(QUEUE, **source)], n, OWNER, lease_ttl=lease_ttl)


def full_key(broker: Broker, key: str) -> str:
    return broker.backend.full_name(key)


def deliveries(client: redis.Redis, broker: Broker, message: Message) -> int:
    key = full_key(broker, keys.message_key(QUEUE, message.uuid))
    return int(client.hget(key, "deliveries") or 0)


# -- concurrency --------------------------------------------------------------------------------


@pytest.mark.parametrize("tasks", [None, ("work", "other")], ids=["one-task", "two-tasks"])
def test_a_claim_takes_no_more_than_the_concurrency_limit(
    broker: Broker, client: redis.Redis, tasks: Any
) -> None:
    limited = make(broker, concurrency_limit=2)
    make(broker, other).generate(kwargs={"n": 1})  # a second task, for the multi-task path
    messages = [limited.generate(kwargs={"n": i}) for i in range(5)]
    taken = claim(broker, tasks=tasks, ordered=False).messages
    mine = [m for m in taken if m.task_name == "work"]
    assert [m.uuid for m in mine] == [m.uuid for m in messages[:2]]
    assert claim(broker, tasks=tasks, ordered=False).messages == []
    # held back, not leased: no delivery counted (no attempt)
    assert [deliveries(client, broker, m) for m in messages[2:]] == [0, 0, 0]
    broker.ack(mine[0])
    [next_one] = claim(broker, tasks=tasks, ordered=False).messages
    assert next_one.uuid == messages[2].uuid and next_one.retries == 0


PATHS = pytest.mark.parametrize("tasks", [None, ("work", "other")], ids=["one-task", "two-tasks"])


@PATHS
def test_a_per_key_limit_steps_over_a_full_key_keeping_order(broker: Broker, tasks: Any) -> None:
    limited = make(broker, concurrency_limit=1, concurrency_key=lambda account, n: account)
    a1, a2, b1, a3, b2, c1 = (
        limited.generate(kwargs={"account": account, "n": i}) for i, account in enumerate("aababc")
    )
    taken = claim(broker, tasks=tasks, ordered=False).messages
    assert [m.uuid for m in taken] == [a1.uuid, b1.uuid, c1.uuid]
    broker.ack(taken[0])
    assert [m.uuid for m in claim(broker, tasks=tasks, ordered=False).messages] == [a2.uuid]
    broker.ack(taken[1])
    assert [m.uuid for m in claim(broker, tasks=tasks, ordered=False).messages] == [b2.uuid]
    assert claim(broker, tasks=tasks, ordered=False).messages == []
    assert a3.uuid  # still queued behind a2


@pytest.mark.parametrize("end", ["ack", "fail", "retry", "release", "revoke"])
def test_every_end_of_a_lease_gives_the_slot_back(
    broker: Broker, client: redis.Redis, end: str
) -> None:
    limited = make(broker, concurrency_limit=1)
    first, second = limited.generate(), limited.generate()
    [running] = claim(broker).messages
    assert running.uuid == first.uuid
    running_key = full_key(broker, keys.running_key(QUEUE, "work"))
    assert client.zcard(running_key) == 1
    client.delete(full_key(broker, keys.wake_key(QUEUE)))
    if end == "revoke":
        limited.revoke(running)
    else:
        getattr(broker, end)(running)
    assert client.zcard(running_key) == 0
    # the freed slot wakes an idle pool, as a new message does
    assert client.llen(full_key(broker, keys.wake_key(QUEUE))) == 1
    taken = [m.uuid for m in claim(broker).messages]
    # one runs again (a release keeps its place, so it is the first again)
    assert taken == [first.uuid if end == "release" else second.uuid]


def test_an_expired_lease_gives_the_slot_back_when_reclaimed(
    broker: Broker, client: redis.Redis
) -> None:
    limited = make(broker, concurrency_limit=1)
    first, second = limited.generate(), limited.generate()
    [held] = claim(broker, lease_ttl=200).messages  # its worker "dies": never acked
    assert held.uuid == first.uuid
    assert claim(broker).messages == []
    taken = eventually(lambda: claim(broker).messages, what="the slot freed by the reclaim")
    assert [m.uuid for m in taken] == [first.uuid]  # reclaimed first: its old place
    assert taken[0].retries == 1  # the lost attempt counts, as any lost lease
    assert client.zcard(full_key(broker, keys.running_key(QUEUE, "work"))) == 1
    assert second.uuid


def test_a_slot_of_a_message_gone_while_running_is_freed_at_the_next_full_claim(
    broker: Broker, client: redis.Redis
) -> None:
    limited = make(broker, concurrency_limit=1)
    first, second = limited.generate(), limited.generate()
    [held] = claim(broker, lease_ttl=200).messages
    # its body and lease vanish together (expired): nothing ends the lease
    body = full_key(broker, keys.message_key(QUEUE, first.uuid))
    client.delete(body, f"lock:{body}")
    client.zrem(full_key(broker, keys.leases_key(QUEUE)), first.uuid)
    taken = eventually(lambda: claim(broker).messages, what="the stale slot pruned")
    assert [m.uuid for m in taken] == [second.uuid]
    assert held.uuid == first.uuid


# -- rate -----------------------------------------------------------------------------------------


@PATHS
def test_a_rate_limit_holds_back_the_rest_and_says_when_a_slot_frees(
    broker: Broker, client: redis.Redis, tasks: Any
) -> None:
    limited = make(broker, rate_limit=RateLimit(3, 60_000))
    messages = [limited.generate(kwargs={"n": i}) for i in range(5)]
    first = claim(broker, tasks=tasks, ordered=False)
    assert [m.uuid for m in first.messages] == [m.uuid for m in messages[:3]]
    for message in first.messages:
        broker.ack(message)
    second = claim(broker, tasks=tasks, ordered=False)
    assert second.messages == []
    # the pool is told to come back when the oldest use leaves the window, not before
    assert second.next_due is not None
    assert 50_000 < second.next_due - first.messages[0].updated_at < 70_000
    assert [deliveries(client, broker, m) for m in messages[3:]] == [0, 0]


def test_a_ready_set_a_refused_claim_puts_back_keeps_its_ttl(
    broker: Broker, client: redis.Redis
) -> None:
    # The claim pops the only message, its rate refuses it and it goes back: the set it
    # re-creates must expire like the message, not live forever.
    limited = make(broker, rate_limit=RateLimit(1, 60_000))
    limited.generate(kwargs={"n": 1})
    assert len(claim(broker).messages) == 1
    held = limited.generate(kwargs={"n": 2})
    assert claim(broker).messages == []
    ready = full_key(broker, keys.ready_key(QUEUE, limited.name))
    assert client.zcard(ready) == 1
    message_ttl = client.pttl(full_key(broker, keys.message_key(QUEUE, held.uuid)))
    assert client.pttl(ready) >= message_ttl > 0


def test_a_rate_window_slides(broker: Broker) -> None:
    limited = make(broker, rate_limit="2/300ms")
    messages = [limited.generate(kwargs={"n": i}) for i in range(4)]
    assert len(claim(broker).messages) == 2
    taken = eventually(lambda: claim(broker).messages, what="the window to slide")
    assert [m.uuid for m in taken] == [m.uuid for m in messages[2:]]


def test_limits_travel_with_a_dead_letter_requeued(broker: Broker, client: redis.Redis) -> None:
    limited = make(broker, concurrency_limit=1)
    first, second = limited.generate(), limited.generate()
    [running] = claim(broker).messages
    broker.fail(running)
    broker.requeue_from_dlq(first)
    taken = claim(broker).messages
    assert len(taken) == 1 and taken[0].uuid in {first.uuid, second.uuid}
    assert claim(broker).messages == []


def test_a_groups_completion_callback_carries_its_limits(
    broker: Broker, client: redis.Redis
) -> None:
    plain, limited = make(broker, other), make(broker, concurrency_limit=1)
    members = [plain.generate(kwargs={"n": i}, submit=False) for i in range(2)]
    callback = limited.generate(kwargs={"n": 9}, submit=False)
    body = full_key(broker, keys.message_key(QUEUE, callback.uuid))
    with InProcessWorker(plain):  # runs the members only: the callback stays queued
        group(members).add_completion_callback(callback).run()
        eventually(lambda: client.exists(body), what="the callback submitted by the last ack")
    assert (client.hget(body, "climit"), client.hget(body, "ckey")) == ("1", "")


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/m", (100, 60_000)),
        ("50/s", (50, 1_000)),
        ("10/5s", (10, 5_000)),
        ("1/d", (1, 86_400_000)),
    ],
)
def test_rate_limits_parse(text: str, expected: tuple[int, int]) -> None:
    assert parse_rate_limit(text) == RateLimit(*expected)


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"rate_limit": "abc"}, ValueError, "rate_limit must be 'N/unit'"),
        ({"rate_limit": "0/s"}, ValueError, "positive int"),
        ({"rate_limit": RateLimit(5, 0)}, ValueError, "window_ms"),
        ({"concurrency_limit": 0}, ValueError, "concurrency_limit must be a positive int"),
        ({"concurrency_limit": -1}, ValueError, "concurrency_limit must be a positive int"),
        ({"concurrency_limit": 2, "concurrency_key": "account"}, TypeError, "callable"),
        ({"concurrency_key": lambda account: account}, ValueError, "needs a concurrency_limit"),
    ],
)
def test_bad_limits_are_refused_at_construction(
    broker: Broker, options: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(")):
        make(broker, **options)
    with pytest.raises(error, match=words.replace("(", r"\(")):
        task(broker, **options)


def test_a_concurrency_key_must_give_a_key(broker: Broker) -> None:
    limited = make(broker, concurrency_limit=1, concurrency_key=lambda account, n: None)
    with pytest.raises(ValueError, match="concurrency_key must return"):
        limited.generate(kwargs={"account": "a", "n": 1})
