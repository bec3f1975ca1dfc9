"""A hot concurrency key cannot block the other keys of its task: a message refused because its
key is full is parked (out of the ready set) until a slot of its key frees, on real Redis
through the broker's own claim.

Each test starts from the same scene: key "a" and key "b" each hold their one slot, and more
messages of "a" than the old claim looked past (100) are queued ahead of two of "b" and one of
the free key "c". Settling claims must reach "c" (without parking they never did: the scene
fails on a claim that only steps over full keys). Then every path that frees "b"'s slot, or
takes a parked message away, must leave the next message of "b" claimable: no path strands a
parked message. The pools' side is in tests/pools/test_pool_task_limits.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from alsek.admin import Admin
from alsek.core.broker import Broker, ClaimSource, keys
from alsek.core.broker.registry import REGISTRY_IDLE_MS
from alsek.core.message import Message
from alsek.core.steps.drivers import run
from alsek.core.steps.ops import Steps, call
from alsek.core.task import Task
from alsek.testing.backlog import backlog_steps
from tests.faults.keyspace import audit
from tests.polling import eventually

#: The limits' keys live in their queue's slot: the same claims on a cluster.
pytestmark = pytest.mark.servers("redis", "cluster")

QUEUE = "parking"
OWNER = "test-owner"
#: Messages of the hot key "a" queued ahead of the others: more than the old look-ahead (100).
HOT = 150
#: Claims a scene may take to settle: each parks at most 100 messages per task.
SETTLE_CLAIMS = 10
#: Lease of a holder whose worker "dies" in a test (ms): long enough that the scene is set
#: before it ends on a loaded machine (the scene asserts the holder still holds its slot).
SHORT_LEASE_MS = 5_000


def work(account: str = "a", n: int = 0) -> int:
    return n


def other(n: int = 0) -> int:
    return n


def claim(broker: Broker, n: int = 10, lease_ttl: int = 30_000) -> list[Message]:
    return list(broker.claim([ClaimSource(QUEUE)], n, OWNER, lease_ttl=lease_ttl).messages)


def uuids(messages: list[Message]) -> list[str]:
    return [m.uuid for m in messages]


def full_key(broker: Broker, key: str) -> str:
    return broker.backend.full_name(key)


@dataclass
class Scene:
    limited: Task[Any, Any]
    holder_a: Message  # leased
    holder_b: Message  # leased (lease ``b_lease`` ms)
    hot: list[Message]  # parked, key "a"
    b1: Message  # parked
    b2: Message  # parked
    c: Message  # claimed by the settling claims


def keyed_task(broker: Broker) -> Task[Any, Any]:
    """``work``, one running at a time per account."""
    return Task(
        work,
        broker=broker,
        queue=QUEUE,
        max_retries=0,
        backoff=None,
        concurrency_limit=1,
        concurrency_key=lambda account, n: account,
    )


def scene(broker: Broker, b_lease: int = 30_000) -> Scene:
    """Fill "a" and "b", queue HOT messages of "a", two of "b" and one of "c", and claim until
    nothing is ready (every message of a full key parked): "c" must have been claimed."""
    limited = keyed_task(broker)
    holder_a = limited.generate(kwargs={"account": "a", "n": -1})
    holder_b = limited.generate(kwargs={"account": "b", "n": -1})
    [leased_a] = claim(broker, 1)
    [leased_b] = claim(broker, 1, lease_ttl=b_lease)
    assert uuids([leased_a, leased_b]) == uuids([holder_a, holder_b])
    hot = limited.generate_many(kwargs_list=[{"account": "a", "n": i} for i in range(HOT)])
    b1 = limited.generate(kwargs={"account": "b", "n": 1})
    b2 = limited.generate(kwargs={"account": "b", "n": 2})
    c = limited.generate(kwargs={"account": "c", "n": 0})
    taken: list[Message] = []
    for _ in range(SETTLE_CLAIMS):
        taken += claim(broker)
        if c.uuid in uuids(taken):
            break
    assert uuids(taken) == [c.uuid], "the free key's message was not reached"
    return Scene(limited, leased_a, leased_b, hot, b1, b2, c)


def next_claim(
    broker: Broker, timeout: float = SHORT_LEASE_MS / 1000 + 15, **options: Any
) -> list[Message]:
    """The next non-empty claim (the paths that free a slot by time are waited for)."""
    return eventually(lambda: claim(broker, **options), timeout=timeout, what="a claim")


def parked_keys(client: redis.Redis, broker: Broker) -> list[str]:
    """Every parked set of the queue, and its recheck index."""
    pattern = full_key(broker, keys.queue_base(QUEUE)).replace("{", "\\{").replace("}", "\\}")
    found = [
        *client.scan_iter(match=f"{pattern}:*parked*"),
        *client.scan_iter(match=f"{pattern}:*rechecks"),
    ]
    return sorted(found)


def is_parked(client: redis.Redis, broker: Broker, message: Message) -> bool:
    members = client.zrange(full_key(broker, keys.task_parked_key(QUEUE, "work")), 0, -1)
    return any(member.endswith(":" + message.uuid) for member in members)


def assert_clean(client: redis.Redis, broker: Broker) -> None:
    """The keyspace audit: every message in exactly one place (parked is one), no orphan."""
    report = audit(client, broker.backend.namespace)
    assert report.violations == []
    assert report.kinds["unknown"] == 0


def vanish(client: redis.Redis, broker: Broker, message: Message) -> None:
    """Message's body and lease disappear with no script ending them (its TTL passed)."""
    body = full_key(broker, keys.message_key(QUEUE, message.uuid))
    client.delete(body, f"lock:{body}")
    client.zrem(full_key(broker, keys.leases_key(QUEUE)), message.uuid)


# -- the scene itself ------------------------------------------------------------------------------


def test_a_hot_keys_backlog_is_parked_and_the_other_keys_run(
    broker: Broker, client: redis.Redis
) -> None:
    s = scene(broker)
    parked = client.zcard(full_key(broker, keys.task_parked_key(QUEUE, "work")))
    assert parked == HOT + 2
    assert client.zcard(full_key(broker, keys.ready_key(QUEUE, "work"))) == 0
    assert_clean(client, broker)
    # priorities and order within a key: the first of "b" comes back first
    broker.ack(s.holder_b)
    assert uuids(next_claim(broker)) == [s.b1.uuid]
    # then an idle pool is not told to come back at once (no spinning on parked messages)
    idle = broker.claim([ClaimSource(QUEUE)], 10, OWNER)
    assert idle.messages == [] and idle.next_due is not None
    assert idle.next_due - int(client.time()[0]) * 1000 > 10_000  # the holders' leases: 30 s


@pytest.mark.parametrize("ordered", [False, True], ids=["best-first", "in-order"])
def test_a_claim_naming_several_tasks_parks_too(broker: Broker, ordered: bool) -> None:
    """The claim of a pool serving several tasks (heads read per task) parks as well."""
    options: dict[str, Any] = {"max_retries": 0, "backoff": None, "queue": QUEUE}
    limited = Task(
        work, broker=broker, concurrency_limit=1,
        concurrency_key=lambda account, n: account, **options,
    )  # fmt: skip
    plain = Task(other, broker=broker, **options)
    source = [ClaimSource(QUEUE, tasks=("work", "other"), ordered=ordered)]
    holder = limited.generate(kwargs={"account": "hot", "n": -1})
    assert uuids(list(broker.claim(source, 1, OWNER).messages)) == [holder.uuid]
    limited.generate_many(kwargs_list=[{"account": "hot", "n": i} for i in range(HOT)])
    cold = limited.generate(kwargs={"account": "cold", "n": 0})
    later = plain.generate(kwargs={"n": 1})
    taken: list[Message] = []
    for _ in range(SETTLE_CLAIMS):
        taken += broker.claim(source, 1, OWNER).messages
        if {cold.uuid, later.uuid} <= set(uuids(taken)):
            break
    assert sorted(uuids(taken)) == sorted([cold.uuid, later.uuid])


def _commands(client: redis.Redis) -> int:
    """Commands the server ran so far (scripts' own calls included), INFO itself left out."""
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


@pytest.mark.servers("redis")
def test_a_claims_work_does_not_grow_with_a_hot_keys_backlog(
    broker: Broker, client: redis.Redis
) -> None:
    limited = keyed_task(broker)
    most: dict[int, int] = {}
    idle: dict[int, int] = {}
    for backlog_size in (300, 1200):
        limited.generate(kwargs={"account": "hot", "n": -1})
        [holder] = claim(broker, 1)
        limited.generate_many(kwargs_list=[{"account": "hot", "n": i} for i in range(backlog_size)])
        cold = limited.generate(kwargs={"account": "cold", "n": 0})
        costs, taken = [], []
        while cold.uuid not in uuids(taken):
            assert len(costs) < backlog_size, "the cold message was never claimed"
            before = _commands(client)
            taken = claim(broker, 1)
            costs.append(_commands(client) - before - 1)  # the claim's own commands
        most[backlog_size] = max(costs)
        before = _commands(client)
        assert claim(broker, 1) == []  # the hot key is still full: nothing to take
        idle[backlog_size] = _commands(client) - before - 1
        print(
            f"backlog {backlog_size}: {len(costs)} claims to the cold one, at most"
            f" {most[backlog_size]} commands each; then {idle[backlog_size]} per idle claim"
        )
        Admin(broker).purge(QUEUE)
        broker.ack(holder)
        broker.ack(taken[0])
    # The claim that parks is bounded (100 messages), whatever the backlog; once parked, a hot
    # key's backlog costs a claim nothing.
    assert most[1200] <= most[300] + 10
    assert idle[1200] <= idle[300] + 2 and idle[300] < 60


# -- every path that frees "b"'s slot gives its parked message back -------------------------------


@pytest.mark.parametrize("end", ["ack", "fail", "retry", "release", "revoke"])
def test_every_end_of_the_holders_lease_gives_a_parked_message_back(
    broker: Broker, client: redis.Redis, end: str
) -> None:
    s = scene(broker)
    if end == "revoke":
        s.limited.revoke(s.holder_b)
    elif end == "retry":
        broker.retry(s.holder_b, delay=200)
    else:
        getattr(broker, end)(s.holder_b)
    [b1] = next_claim(broker)
    if end == "release":  # given back in its old place, ahead of b1: it runs again first
        assert b1.uuid == s.holder_b.uuid
        broker.ack(b1)
        [b1] = next_claim(broker)
    assert b1.uuid == s.b1.uuid
    if end == "retry":
        # once due, the retried holder is parked too (behind b2: a retry takes a new place)
        eventually(
            lambda: claim(broker) == [] and is_parked(client, broker, s.holder_b),
            what="the retry promoted and parked",
        )
        broker.ack(b1)
        [b2] = next_claim(broker)
        assert b2.uuid == s.b2.uuid
        broker.ack(b2)
        assert uuids(next_claim(broker)) == [s.holder_b.uuid]
    assert_clean(client, broker)


def test_a_holders_expired_lease_gives_a_parked_message_back(broker: Broker) -> None:
    s = scene(broker, b_lease=SHORT_LEASE_MS)  # its worker "dies": never acked
    [again] = next_claim(broker)  # reclaimed: its slot freed, and it takes it again first
    assert again.uuid == s.holder_b.uuid and again.retries == 1
    broker.ack(again)
    assert uuids(next_claim(broker)) == [s.b1.uuid]


def test_a_holder_that_vanished_frees_its_slot_by_its_deadline(
    broker: Broker, client: redis.Redis
) -> None:
    lease = SHORT_LEASE_MS  # the claim below comes before its deadline
    s = scene(broker, b_lease=lease)
    vanish(client, broker, s.holder_b)  # no script ends its lease: the recheck finds it gone
    # an idle pool is told to come back by then, not at the next lease's deadline (30 s)
    result = broker.claim([ClaimSource(QUEUE)], 10, OWNER)
    assert result.messages == [] and result.next_due is not None
    assert result.next_due - s.holder_b.updated_at < lease + 5_000
    assert uuids(next_claim(broker)) == [s.b1.uuid]


def test_a_holder_dead_lettered_and_requeued_waits_for_the_parked_one(broker: Broker) -> None:
    s = scene(broker)
    broker.fail(s.holder_b)
    [b1] = next_claim(broker)
    assert b1.uuid == s.b1.uuid
    broker.requeue_from_dlq(s.holder_b)
    assert claim(broker) == []  # "b" is full again: the requeued one is parked
    broker.ack(b1)
    [b2] = next_claim(broker)
    assert b2.uuid == s.b2.uuid  # b2 was parked first
    broker.ack(b2)
    assert uuids(next_claim(broker)) == [s.holder_b.uuid]


def test_a_paused_queue_keeps_the_given_back_message_for_its_resume(broker: Broker) -> None:
    s = scene(broker)
    admin = Admin(broker)
    admin.pause(QUEUE)
    broker.ack(s.holder_b)
    assert claim(broker) == []
    assert admin.resume(QUEUE)
    assert uuids(next_claim(broker)) == [s.b1.uuid]


# -- a parked message taken away strands nothing -------------------------------------------------


@pytest.mark.parametrize("how", ["revoked", "expired", "removed"])
def test_a_parked_message_taken_away_leaves_the_next_one_claimable(
    broker: Broker, client: redis.Redis, how: str
) -> None:
    s = scene(broker)
    if how == "revoked":
        s.limited.revoke(s.b1)
    elif how == "expired":
        body = full_key(broker, keys.message_key(QUEUE, s.b1.uuid))
        client.delete(body)
    else:
        broker.remove(s.b1)
    if how != "expired":  # taken out of the parked sets at once (an expired one: when met)
        assert_clean(client, broker)
    broker.ack(s.holder_b)
    assert uuids(next_claim(broker)) == [s.b2.uuid]
    assert_clean(client, broker)  # an expired one's entries were dropped on the way


def test_a_purge_deletes_parked_messages_and_their_sets(
    broker: Broker, client: redis.Redis
) -> None:
    s = scene(broker)
    assert Admin(broker).purge(QUEUE) == HOT + 2
    assert parked_keys(client, broker) == []
    broker.ack(s.holder_a)
    broker.ack(s.holder_b)
    broker.ack(s.c)
    assert claim(broker) == []
    assert parked_keys(client, broker) == []
    assert_clean(client, broker)


def test_a_queue_holding_only_parked_messages_is_not_forgotten(
    broker: Broker, client: redis.Redis
) -> None:
    s = scene(broker, b_lease=SHORT_LEASE_MS)
    for holder in (s.holder_a, s.holder_b, s.c):
        vanish(client, broker, holder)
    seen = full_key(broker, keys.QUEUE_REGISTRY_SEEN)
    client.zadd(seen, {QUEUE: int(time.time() * 1000) - REGISTRY_IDLE_MS - 1})
    assert broker.queues() == [QUEUE]
    taken = next_claim(broker)
    assert s.b1.uuid in uuids(taken)


def test_unserved_expiry_dead_letters_parked_messages_too(
    broker: Broker, client: redis.Redis
) -> None:
    scene(broker)

    def expire() -> Steps[int]:
        # each call names the tasks and messages the one before it met (declared keys): a
        # page of messages first met is expired by the third call after (bodies, then the
        # limit sets their bodies name)
        request = broker._expire_unserved_call(QUEUE, 0, 60_000, "", "", "", "", 0, "", 0)
        [reply] = yield call(request)
        return broker._expired_count(QUEUE, reply)

    expired = [run(expire(), broker.backend.conn) for _ in range(10)]
    assert sum(expired) == HOT + 2 and expired[-1] == 0, expired
    assert parked_keys(client, broker) == []
    assert len(broker.dlq_list(QUEUE)) == HOT + 2
    assert_clean(client, broker)


# -- what operators see ------------------------------------------------------------------------


def test_parked_messages_are_counted_and_listed_as_ready(broker: Broker) -> None:
    s = scene(broker)
    admin = Admin(broker)
    [stats] = admin.queues()
    assert (stats.ready, stats.running) == (HOT + 2, 3)
    listed = admin.messages(QUEUE, state="ready", limit=HOT + 10)
    assert [m.uuid for m in listed] == [*uuids(s.hot), s.b1.uuid, s.b2.uuid]
    [left] = run(backlog_steps(broker.backend, [QUEUE], ["work"]), broker.backend.conn)
    assert left.ready == {"work": HOT + 2}
