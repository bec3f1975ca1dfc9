"""``ProcessWorkerPool`` runs messages in warm children: reused, recycled after
``max_tasks_per_child`` messages, killed and replaced to stop a run, replaced when they die.

The pid each run recorded (``lab.attempts``) tells which child ran it.
"""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import redis.sentinel
from poolharness import IDLE_BACKOFF, KINDS, STOP_AFTER_MS, Lab, ThreadedPool, eventually
from poolwork import probe

from alsek.core.broker import Broker
from alsek.core.message import Message
from alsek.core.status import TaskStatus
from alsek.core.task import Task
from alsek.core.worker import ProcessWorkerPool
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import ResultStore
from alsek.testing import SentinelServers

WORKER_LOST = "alsek.exceptions.WorkerLostError"


@pytest.fixture
def lab(make_lab: Callable[..., Lab]) -> Lab:
    """A lab running process pools."""
    return make_lab(KINDS["process"])


def pids(lab: Lab, messages: Sequence[Message]) -> list[int]:
    """The pid of each message's first run, in message order."""
    return [lab.attempts(message)[0]["pid"] for message in messages]


def gone(pid: int) -> bool:
    """Whether the process ``pid`` has ended and been reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def both_children_run(lab: Lab, held: Any, gate: str) -> set[int]:
    """Run two ``held`` messages at once on a pool of two children (each holds its child until
    the gate opens); the pids of those children."""
    pair = [held.generate(args=(gate,)) for _ in range(2)]
    eventually(lambda: all(lab.last_beat(m) for m in pair), what="two runs at once")
    probe.client().set(probe.key("gate", gate), 1)
    for message in pair:
        lab.store.get(message, timeout=10_000)
    return set(pids(lab, pair))


def test_one_child_runs_message_after_message(lab: Lab) -> None:
    add = lab.task("add")
    messages = [add.generate(args=(i, i)) for i in range(20)]
    with lab.pool(capacity=1):
        assert [lab.store.get(m, timeout=10_000) for m in messages] == [2 * i for i in range(20)]
    ran_in = set(pids(lab, messages))
    assert len(ran_in) == 1, f"one warm child expected, got {ran_in}"
    assert os.getpid() not in ran_in


@pytest.mark.parametrize("limit", [1, 3])
def test_a_child_is_replaced_after_max_tasks_per_child_messages(lab: Lab, limit: int) -> None:
    add = lab.task("add")
    messages = [add.generate(args=(i, 0)) for i in range(3 * limit)]
    with lab.pool(capacity=1, max_tasks_per_child=limit):
        for message in messages:
            lab.store.get(message, timeout=10_000)
    ran_in = pids(lab, messages)  # capacity 1: in submission order, one child at a time
    runs = [(pid, len(list(group))) for pid, group in itertools.groupby(ran_in)]
    assert [count for _, count in runs] == [limit] * 3, ran_in
    assert len({pid for pid, _ in runs}) == 3, ran_in
    eventually(lambda: all(gone(pid) for pid, _ in runs[:-1]), what="retired children reaped")


def test_a_timed_out_run_kills_its_child_and_a_fresh_child_takes_over(lab: Lab) -> None:
    sleepy, add = lab.task("sleepy", timeout=STOP_AFTER_MS), lab.task("add")
    stuck = sleepy.generate(args=(30,))
    with lab.pool(capacity=1):
        assert lab.tracker.wait_for(stuck, TaskStatus.FAILED, timeout=30) is TaskStatus.FAILED
        killed = pids(lab, [stuck])[0]
        eventually(lambda: gone(killed), what="the timed-out child gone")
        after = [add.generate(args=(1, 2)), add.generate(args=(3, 4))]
        assert [lab.store.get(m, timeout=10_000) for m in after] == [3, 7]
    assert "TimeoutError" in lab.dead_letters()[stuck.uuid].reason
    fresh = pids(lab, after)
    assert fresh[0] == fresh[1] != killed  # the replacement is warm too


def test_revoking_a_run_kills_only_its_child(lab: Lab) -> None:
    sleepy, held = lab.task("sleepy"), lab.task("held")
    victim = sleepy.generate(args=(30,))
    neighbour = sleepy.generate(args=(1.5,))
    with lab.pool(capacity=2):
        eventually(lambda: lab.last_beat(victim) and lab.last_beat(neighbour), what="both run")
        sleepy.revoke(victim)
        eventually(lambda: gone(pids(lab, [victim])[0]), what="the revoked run's child gone")
        assert lab.store.get(neighbour, timeout=10_000) == 1.5
        later = both_children_run(lab, held, "later")
    assert pids(lab, [neighbour])[0] in later  # its child lives on, warm
    assert "RevokedError" in lab.dead_letters()[victim.uuid].reason
    assert (lab.starts(neighbour), lab.done(neighbour)) == (1, 1)
    assert lab.hook("on_revocation", victim) == "RevokedError"


def test_a_child_killed_from_outside_fails_only_its_message_as_an_attempt(lab: Lab) -> None:
    slow_first, sleepy = lab.task("slow_first", max_retries=1), lab.task("sleepy")
    held = lab.task("held")
    victim = slow_first.generate(args=(30,))
    neighbour = sleepy.generate(args=(1.0,))
    with lab.pool(capacity=2) as running:
        eventually(lambda: lab.last_beat(victim) and lab.last_beat(neighbour), what="both run")
        os.kill(pids(lab, [victim])[0], signal.SIGKILL)  # as the OOM killer would
        assert lab.store.get(victim, timeout=10_000) == "done after 1 retries"
        assert lab.store.get(neighbour, timeout=10_000) == 1.0
        later = both_children_run(lab, held, "later")
        assert running.alive
    assert pids(lab, [neighbour])[0] in later  # its child lives on, warm
    first, second = lab.attempts(victim)
    assert (second["retries"], second["error"]) == (1, WORKER_LOST)
    assert second["pid"] != first["pid"]
    assert (lab.starts(neighbour), lab.done(neighbour)) == (1, 1)


def test_a_message_whose_child_is_killed_every_time_ends_in_the_dlq(lab: Lab) -> None:
    """The OOM killer in a loop: every attempt is counted, then the message is failed."""
    sleepy, add = lab.task("sleepy", max_retries=2), lab.task("add")
    poison = sleepy.generate(args=(30,))
    with lab.pool(capacity=1) as running:
        for attempt in range(3):
            record = eventually(
                lambda n=attempt: len(lab.attempts(poison)) > n and lab.attempts(poison)[n],
                what=f"attempt {attempt + 1}",
            )
            os.kill(record["pid"], signal.SIGKILL)
        assert lab.tracker.wait_for(poison, TaskStatus.FAILED, timeout=10) is TaskStatus.FAILED
        after = [add.generate(args=(2, 2)), add.generate(args=(3, 3))]
        assert [lab.store.get(m, timeout=10_000) for m in after] == [4, 6]
        assert running.alive
    replacement = pids(lab, after)
    assert replacement[0] == replacement[1]  # the pool serves on with a warm child
    attempts = lab.attempts(poison)
    assert [a["retries"] for a in attempts] == [0, 1, 2]
    assert [a["error"] for a in attempts] == [None, WORKER_LOST, WORKER_LOST]
    dead = lab.dead_letters()[poison.uuid]
    assert "WorkerLostError" in dead.reason
    assert dead.message is not None and dead.message.retries == 2


def test_a_child_that_dies_while_idle_is_replaced(lab: Lab) -> None:
    add = lab.task("add")
    first = add.generate(args=(1, 1))
    with lab.pool(capacity=1):
        assert lab.store.get(first, timeout=10_000) == 2
        idle = pids(lab, [first])[0]
        os.kill(idle, signal.SIGKILL)
        eventually(lambda: gone(idle), what="the idle child reaped")
        after = [add.generate(args=(2, 2)), add.generate(args=(3, 3))]
        assert [lab.store.get(m, timeout=10_000) for m in after] == [4, 6]
    replacement = pids(lab, after)
    assert replacement[0] == replacement[1] != idle


def test_stopping_the_pool_ends_every_child(lab: Lab) -> None:
    add = lab.task("add")
    messages = [add.generate(args=(i, 1)) for i in range(4)]
    with lab.pool(capacity=2):
        for message in messages:
            lab.store.get(message, timeout=10_000)
        children = set(pids(lab, messages))
        assert not any(gone(pid) for pid in children)
    assert all(gone(pid) for pid in children)


@pytest.mark.parametrize("limit", [0, -3])
def test_max_tasks_per_child_below_one_is_refused(lab: Lab, limit: int) -> None:
    lab.task("add")
    with pytest.raises(ValueError, match=f"max_tasks_per_child must be 1 or more.*{limit}"):
        ProcessWorkerPool(tasks=lab.worker_tasks, max_tasks_per_child=limit)


def _pid(message: Message) -> int:
    return os.getpid()


def test_children_serve_a_sentinel_managed_backend_with_clients_of_their_own(
    sentinel_servers: SentinelServers, namespace: str, signal_handlers: None
) -> None:
    sentinel = redis.sentinel.Sentinel(sentinel_servers.sentinel_addresses, socket_timeout=5)
    master = sentinel.master_for(sentinel_servers.master_name, decode_responses=True)
    backend = RedisBackend(master, namespace=namespace)
    broker, store = Broker(backend), ResultStore(backend)
    task = Task(_pid, broker=broker, result_store=store, mechanism="process", max_retries=0)
    messages = [task.generate() for _ in range(5)]
    pool = ThreadedPool(ProcessWorkerPool(tasks=[task], n_processes=1, backoff=IDLE_BACKOFF))
    try:
        pool.start()
        ran_in = {store.get(message, timeout=10_000) for message in messages}
        pool.stop()
    finally:
        backend.clear_namespace()
        master.close()
    assert len(ran_in) == 1 and os.getpid() not in ran_in


@pytest.mark.slow
@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_children_started_without_fork_run_messages(lab: Lab, start_method: str) -> None:
    """Without fork a child inherits nothing: it gets the tasks encoded, and its pipe."""
    add = lab.served()["add"]
    messages = [add.generate(args=(i, i)) for i in range(6)]
    pool = lab.launched_pool(2, lease_ttl=30_000, start_method=start_method)
    assert [lab.store.get(m, timeout=30_000) for m in messages] == [2 * i for i in range(6)]
    pool.signal(signal.SIGTERM)
    assert pool.wait(15) == 0, pool.output()
    ran_in = set(pids(lab, messages))
    assert pool.pid not in ran_in and 1 <= len(ran_in) <= 2
