"""Every script declares every key it touches in KEYS (issue 13): each call runs as an ACL
user allowed exactly its KEYS (``keychecks.KeyCheckedRedis``), so an undeclared key fails with
NOPERM. Single servers only: ACL users are per node, and a cluster adds nothing to the check.

The scripts that still find keys in data inside Lua run unchecked here and are listed in
``UNDECLARED``; the tests marked ``xfail(strict=True)`` show each of them is still refused when
checked, so the list shrinks only with the code. The claim and the sweeps (promote, reclaim,
parked messages given back) declare what the call before them peeked (``broker/claims.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.exceptions import ResponseError

from alsek.admin import Admin
from alsek.core.broker import Broker, ClaimSource, registry
from alsek.core.limits import BucketRateLimiter, ConcurrentRateLimiter, WindowRateLimiter
from alsek.core.lock import Lock
from alsek.core.message import Message
from alsek.core.status import StatusTracker
from alsek.core.steps.drivers import run as drive
from alsek.core.steps.ops import batched
from alsek.core.task import Task
from alsek.core.workflow import group
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import ResultStore
from tests.engine.keychecks import KeyCheckedRedis
from tests.task.functions import add

pytestmark = pytest.mark.servers("redis", "valkey")

#: Broker scripts that still build keys from data inside Lua (see docs/redis-layout.md).
UNDECLARED: set[str] = set()
OWNER = "lock:test-host:process:1:lease:keys"


class Kit:
    """A checked backend with a broker, a status tracker, a result store and a task."""

    def __init__(self, url: str, namespace: str, unchecked: set[str]) -> None:
        self.client = KeyCheckedRedis(url, unchecked)
        self.backend = RedisBackend(conn=self.client, namespace=namespace)
        self.broker = Broker(self.backend)
        self.tracker = StatusTracker(self.backend)
        self.store = ResultStore(self.backend)
        self.task = Task(
            add, broker=self.broker, queue="q", status_tracker=self.tracker,
            result_store=self.store, max_retries=3,
        )  # fmt: skip

    def claim(self, n: int = 100, queue: str = "q") -> list[Message]:
        return list(self.broker.claim([ClaimSource(queue)], n, OWNER).messages)

    def assert_declared(self) -> None:
        assert self.client.refused == [], self.client.refused


@pytest.fixture
def kit(redis_url: str, namespace: str) -> Iterator[Kit]:
    made = Kit(redis_url, namespace, UNDECLARED)
    yield made
    made.client.close()


@pytest.fixture
def strict_kit(redis_url: str, namespace: str) -> Iterator[Kit]:
    """Every script checked, the unfinished ones too."""
    made = Kit(redis_url, namespace, set())
    yield made
    made.client.close()


def test_the_check_refuses_a_key_the_call_does_not_declare(kit: Kit) -> None:
    """The harness has teeth: a script given only its routing key (as every call was before
    KEYS declared everything) is refused at its first undeclared key."""
    sha = kit.client.script_load("return redis.call('GET', ARGV[1])")
    route = f"{kit.backend.namespace}:queues:{{q}}:tasks"
    kit.client.names[sha] = "probe"
    with pytest.raises(ResponseError):
        kit.client.evalsha(sha, 1, route, f"{kit.backend.namespace}:queues:{{q}}:paused")
    assert [name for name, _, _ in kit.client.refused] == ["probe"]
    assert kit.client.evalsha(sha, 1, route, route) is None  # a declared key is allowed


def test_a_message_life_touches_only_declared_keys(kit: Kit) -> None:
    """Submit (with its SUBMITTED status), claim, renew, retry, release, sync, ack with its
    status and result, fail into the DLQ with its failure record, revoke."""
    first = kit.task.generate(args=(1, 2))
    second, third, fourth = (kit.task.generate(args=(i, i), submit=False) for i in range(3))
    kit.broker.submit_many([second, third, fourth])
    claimed = {m.uuid: m for m in kit.claim()}
    assert sorted(claimed) == sorted(m.uuid for m in (first, second, third, fourth))
    assert kit.broker.renew(list(claimed.values())) == [True] * 4

    done = claimed[first.uuid]
    kit.broker.ack(done, effects=kit.task.success_effects(done, 3))
    assert kit.store.get(first) == 3

    again = claimed[second.uuid]
    kit.broker.retry(again, effects=kit.task.retry_effects(again), delay=0)
    back = claimed[third.uuid]
    kit.broker.release(back)
    failed = claimed[fourth.uuid].update(exception_details={"name": "KeyError", "text": "k"})
    kit.broker.fail(failed, effects=kit.task.failure_effects(failed))
    assert kit.broker.in_dlq(failed)

    [retried, released] = sorted(kit.claim(), key=lambda m: m.uuid != second.uuid)
    kit.broker.sync_to_backend(retried.update(priority=2))
    assert kit.broker.revoke(released)
    kit.broker.remove(retried)
    kit.assert_declared()
    assert {"submit", "renew", "ack", "retry", "release", "fail", "sync_to", "revoke"} <= set(
        kit.client.checked_runs
    )


def test_operator_actions_touch_only_declared_keys(kit: Kit) -> None:
    admin = Admin(kit.broker)
    delayed = kit.task.generate(args=(1, 1), delay=60_000)
    admin.pause("q")
    assert admin.resume("q")
    assert admin.run_now(delayed.uuid)
    for message in kit.claim():
        failed = message.update(exception_details={"name": "KeyError", "text": "k"})
        kit.broker.fail(failed, effects=kit.task.failure_effects(failed))
    assert [letter.uuid for letter in admin.dead("q")] == [delayed.uuid]
    assert admin.requeue_dead("q") == 1
    for message in kit.claim():
        kit.broker.fail(message, effects=kit.task.failure_effects(message))
    assert admin.purge_dead("q", uuids=[delayed.uuid]) == 1
    other = kit.task.generate(args=(2, 2))
    [message] = kit.claim()
    kit.broker.fail(message)
    assert admin.purge_dead("q") == 1
    kit.task.generate(args=(3, 3))
    assert admin.revoke(kit.task.generate(args=(4, 4)).uuid)
    assert other.uuid not in {letter.uuid for letter in admin.dead("q")}
    kit.task.generate(args=(5, 5), delay=60_000)
    [stats] = admin.queues()
    assert (stats.queue, stats.ready, stats.delayed) == ("q", 1, 1)
    assert stats.oldest_ready_ms is not None and stats.oldest_ready_ms >= 0
    assert admin.purge("q", state="all") == 2
    kit.assert_declared()
    assert {
        "resume",
        "run_now",
        "dlq_index",
        "requeue",
        "purge_dead",
        "purge_dlq",
        "purge",
        "stats",
    } <= set(kit.client.checked_runs)


def test_an_empty_queue_is_forgotten_with_declared_keys(kit: Kit) -> None:
    message = kit.task.generate(args=(1, 1))
    [claimed] = kit.claim()
    kit.broker.ack(claimed)
    assert claimed.uuid == message.uuid
    idle = registry.REGISTRY_IDLE_MS
    seen = f"{kit.backend.namespace}:registry:{{queues}}:seen"
    kit.client.zadd(seen, {"q": time.time() * 1000 - idle - 1_000})
    assert drive(kit.broker._queues_steps(), kit.client) == []
    kit.assert_declared()
    assert {"register", "queues", "forget_queue", "unregister"} <= set(kit.client.checked_runs)


def test_locks_and_limiters_touch_only_declared_keys(kit: Kit) -> None:
    lock = Lock("resource", backend=kit.backend, ttl=10_000)
    assert lock.acquire()
    assert lock.release()
    limiters: list[Any] = [
        ConcurrentRateLimiter(key="c", limit=1, backend=kit.backend),
        WindowRateLimiter(key="w", limit=1, window_ms=60_000, backend=kit.backend),
        BucketRateLimiter(key="b", limit=1, bucket_ms=60_000, backend=kit.backend),
    ]
    for limiter in limiters:
        with limiter.acquire() as got:
            assert got
    kit.assert_declared()
    assert len(kit.client.checked_runs) >= 5


def test_claims_and_sweeps_declare_their_keys(kit: Kit) -> None:
    """A first claim (a peek), claims of several tasks with the RUNNING status, a delayed
    message promoted when due, an expired lease reclaimed by a claim and by ``reclaim``."""
    other = Task(add, broker=kit.broker, queue="q", name="other", status_tracker=kit.tracker)
    first = kit.task.generate(args=(1, 1))
    second = other.generate(args=(2, 2))
    status = kit.tracker.claim_status()
    claimed = kit.broker.claim([ClaimSource("q")], 10, OWNER, status=status).messages
    assert sorted(m.uuid for m in claimed) == sorted([first.uuid, second.uuid])
    due = kit.task.generate(args=(3, 3), delay=50)
    short = kit.task.generate(args=(4, 4))
    [leased] = kit.broker.claim([ClaimSource("q", ("add",))], 1, "lock:h:process:2:lease:x",
                                lease_ttl=50).messages  # fmt: skip
    assert leased.uuid == short.uuid
    taken = poll_claims(kit, want={due.uuid, short.uuid})
    assert {m.uuid for m in taken} == {due.uuid, short.uuid}
    again = kit.task.generate(args=(5, 5))
    [leased] = kit.broker.claim([ClaimSource("q")], 1, "lock:h:process:3:lease:y", lease_ttl=50)[0]
    assert leased.uuid == again.uuid
    assert poll(lambda: kit.broker.reclaim_expired(["q"]) == 1)
    assert [m.uuid for m in kit.claim()] == [again.uuid]
    kit.assert_declared()
    assert {"claim", "reclaim"} <= set(kit.client.checked_runs)


def one_trip(request: Any) -> Any:
    """Steps of one round trip carrying ``request``."""
    return (yield batched(request))


def poll(check: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def poll_claims(kit: Kit, want: set[str], timeout: float = 5.0) -> list[Message]:
    """Claim until the messages ``want`` names are taken (a delay or a lease running out)."""
    taken: list[Message] = []

    def all_taken() -> bool:
        taken.extend(kit.claim())
        return want <= {m.uuid for m in taken}

    poll(all_taken, timeout)
    return taken


def test_dead_lettering_unserved_messages_declares_its_keys(kit: Kit) -> None:
    """``expire_unserved`` (a pool's heartbeat) names the tasks and messages it met the call
    before: the message of a task nobody serves is dead-lettered by its second or third call,
    with its FAILED status."""
    ghost = Task(add, broker=kit.broker, queue="q", name="ghost", status_tracker=kit.tracker)
    message = ghost.generate(args=(1, 1))
    status = kit.tracker.claim_status()
    templates = (status.key_template, status.channel_template, status.index_template,
                 status.history_template)  # fmt: skip
    args = (1, 60_000, *templates, status.history_length, status.unserved_payload, status.ttl)
    counts = []
    for _ in range(3):
        poll(lambda: time.time() * 1000 > message.created_at + 2)  # older than the ttl (1 ms)
        [reply] = drive(one_trip(kit.broker._expire_unserved_call("q", *args)), kit.client)
        counts.append(kit.broker._expired_count("q", reply))
    assert sum(counts) == 1 and counts[0] == 0, counts
    assert kit.broker.in_dlq(message)
    assert kit.tracker.get(message).value.name == "FAILED"
    kit.assert_declared()
    assert "expire_unserved" in kit.client.checked_runs


def test_a_group_completion_declares_its_keys(kit: Kit) -> None:
    """The last member's ack submits the callback its members name (they carry its queue,
    task and uuid)."""
    members = [kit.task.generate(args=(i, 1), submit=False) for i in range(2)]
    callback = kit.task.generate(args=(0, 0), submit=False)
    group(members).add_completion_callback(callback).run()
    for message in kit.claim():
        kit.broker.ack(message, effects=kit.task.success_effects(message, 1))
    assert kit.broker.exists(callback)
    kit.assert_declared()


def test_finishing_a_unique_message_declares_the_key_it_releases(kit: Kit) -> None:
    held = kit.task.generate(args=(1, 1), unique_key="report")
    [claimed] = kit.claim()
    kit.broker.ack(claimed, effects=kit.task.success_effects(claimed, 2))
    failing = kit.task.generate(args=(3, 3), unique_key="report")
    assert failing.uuid != held.uuid  # the ack released the key
    [claimed] = kit.claim()
    kit.broker.fail(claimed, effects=kit.task.failure_effects(claimed))
    revoked = kit.task.generate(args=(4, 4), unique_key="report")
    assert kit.broker.revoke(revoked)
    kit.assert_declared()


@pytest.mark.parametrize("mode", ["simple", "debounce"])
def test_a_submit_yielding_its_unique_key_declares_its_keys(kit: Kit, mode: str) -> None:
    kit.task.generate(args=(1, 1), unique_key="d", unique_mode=mode)
    kit.task.generate(args=(2, 2), unique_key="d", unique_mode=mode)
    kit.assert_declared()


def test_a_next_message_debouncing_a_waiting_holder_declares_its_keys(kit: Kit) -> None:
    """The next message an ack submits, whose debounced unique key a waiting message holds:
    its submit names the holder's keys after a WANT reply, then replaces it."""
    kit.task.generate(args=(0, 0))
    [running] = kit.claim()
    waiting = kit.task.generate(args=(1, 1), unique_key="d", unique_mode="debounce")
    after = kit.task.generate(args=(2, 2), unique_key="d", unique_mode="debounce", submit=False)
    assert kit.broker.ack(
        running, then_submit=after, then_submit_effects=kit.task.submit_effects(after)
    )
    assert not kit.broker.exists(waiting)
    assert kit.broker.exists(after)
    # generate (x2), the ack's submit answered WANT, then sent again naming the holder's keys
    assert kit.client.checked_runs.count("submit") >= 4
    kit.assert_declared()


def test_the_end_of_a_limited_messages_lease_declares_its_keys(kit: Kit) -> None:
    limited = Task(
        add, broker=kit.broker, queue="q", concurrency_limit=1,
        concurrency_key=lambda a, b: a,
    )  # fmt: skip
    limited.generate(args=(1, 1))
    parked = limited.generate(args=(1, 2))
    [held] = kit.claim()  # the second one is parked
    kit.broker.ack(held)  # frees the slot, gives the parked one back
    assert [m.uuid for m in kit.claim()] == [parked.uuid]
    kit.assert_declared()
