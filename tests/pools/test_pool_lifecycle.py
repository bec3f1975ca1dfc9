"""The life of a message in a worker pool, seen through the status tracker, the result store,
the dead-letter queue and what the task itself recorded. Every body runs for every pool kind.
"""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable

import pytest
from poolharness import KINDS, STOP_AFTER_MS, Lab, PoolKind, eventually, is_lifecycle
from poolwork import probe
from poolwork.sync_work import BEAT_SECONDS, RAISABLE

from alsek.core.backoff import LinearBackoff
from alsek.core.broker import keys
from alsek.core.message import Message
from alsek.core.status import TaskStatus
from alsek.exceptions import TaskFailedError

#: Pool behaviour that depends on the server: on Redis 6.2, Valkey 8.1 and a cluster.
pytestmark = pytest.mark.servers("redis", "valkey", "cluster")

SUBMITTED, RUNNING, RETRYING = TaskStatus.SUBMITTED, TaskStatus.RUNNING, TaskStatus.RETRYING
SUCCEEDED, FAILED = TaskStatus.SUCCEEDED, TaskStatus.FAILED

#: Retry backoff of the spacing test: 250 ms after the first failure, 500 ms after the second.
BACKOFF_FACTOR_MS = 250
#: Early arrival allowed for a retry (status publish and clock granularity).
EARLY_MS = 30
#: A revocation must stop a running task within this. The goal is 100 ms; the bound is generous
#: but below a process future's patience (1 s), so a child that ignored SIGTERM would fail it.
STOP_BOUND_MS = 800


def test_a_successful_message_goes_submitted_running_succeeded(lab: Lab) -> None:
    add = lab.task("add")
    message = add.generate(args=(2, 3))
    statuses = lab.follow(message)
    with lab.pool():
        assert lab.store.get(message, timeout=10_000) == 5
        assert statuses.wait() == [SUBMITTED, RUNNING, SUCCEEDED]
    assert (lab.starts(message), lab.done(message)) == (1, 1)
    assert not lab.broker.exists(message)


def test_a_retried_message_runs_again_after_its_backoff(lab: Lab) -> None:
    backoff = LinearBackoff(BACKOFF_FACTOR_MS, floor=0, ceiling=10_000)
    flaky = lab.task("flaky", max_retries=3, backoff=backoff)
    message = flaky.generate(args=(2,))
    statuses = lab.follow(message)
    with lab.pool():
        assert lab.store.get(message, timeout=15_000) == "succeeded on attempt 3"
        observed = statuses.wait()
    assert observed == [SUBMITTED, RUNNING, RETRYING, RUNNING, RETRYING, RUNNING, SUCCEEDED]
    assert is_lifecycle(observed)
    expected = [backoff.get(1), backoff.get(2)]
    assert expected == [250, 500]
    # From each RETRYING to the next RUNNING the message waits out its backoff...
    retrying, running = statuses.times(RETRYING), statuses.times(RUNNING)
    waits = [round((run - retry) * 1000) for retry, run in zip(retrying, running[1:])]
    # ...and the task's own start times are spaced at least as much.
    attempts = lab.attempts(message)
    starts = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(attempts)]
    print(f"[{lab.kind.name}] backoff {expected} ms: status waits {waits}, start gaps {starts}")
    for backoff_ms, waited, gap in zip(expected, waits, starts):
        assert backoff_ms - EARLY_MS <= waited < backoff_ms + 3_000
        assert gap >= backoff_ms - EARLY_MS
    assert [attempt["retries"] for attempt in attempts] == [0, 1, 2]
    errors = [attempt["error"] for attempt in attempts]
    assert errors == [None, "ConnectionError", "ConnectionError"]


def test_exhausted_retries_fail_the_message_into_the_dlq(lab: Lab) -> None:
    failing = lab.task("always_fail", max_retries=2)
    message = failing.generate()
    statuses = lab.follow(message)
    with lab.pool():
        observed = statuses.wait()
        dead = eventually(lambda: lab.dead_letters().get(message.uuid), what="dead letter")
    assert observed == [SUBMITTED, RUNNING, RETRYING, RUNNING, RETRYING, RUNNING, FAILED]
    assert dead.reason == "ValueError: attempt 3 of a task that always fails"
    assert dead.message is not None and dead.message.retries == 2
    assert lab.hook("on_failure", message) == "ValueError"
    assert (lab.starts(message), lab.done(message)) == (3, 0)
    assert not lab.broker.exists(message)
    with pytest.raises(TaskFailedError, match="ValueError"):
        lab.store.get(message)


def test_a_task_past_its_timeout_is_stopped_and_counts_as_a_failed_attempt(lab: Lab) -> None:
    sleepy = lab.task("sleepy", timeout=STOP_AFTER_MS, max_retries=1)
    message = sleepy.generate(args=(30,))
    statuses = lab.follow(message)
    with lab.pool():
        observed = statuses.wait(timeout=20)
        # Stopped by its timeout, not by the pool's shutdown: it stops beating while the pool runs.
        lab.wait_until_stopped_beating(message)
    assert observed == [SUBMITTED, RUNNING, RETRYING, RUNNING, FAILED]
    assert "TimeoutError" in lab.dead_letters()[message.uuid].reason
    attempts = lab.attempts(message)
    assert [attempt["error"] for attempt in attempts] == [None, "TimeoutError"]
    assert (lab.starts(message), lab.done(message)) == (2, 0)
    assert lab.hook("on_failure", message) == "TimeoutError"


def test_a_task_that_retries_on_timeouts_is_still_stopped_by_its_timeout(lab: Lab) -> None:
    patient = lab.task("patient_io", timeout=STOP_AFTER_MS)
    message = patient.generate(args=(30,))
    with lab.pool():
        assert lab.tracker.wait_for(message, FAILED, timeout=30) is FAILED
        lab.wait_until_stopped_beating(message)
    assert "TimeoutError" in lab.dead_letters()[message.uuid].reason
    assert lab.done(message) == 0


def test_a_message_revoked_while_queued_never_runs(lab: Lab) -> None:
    add = lab.task("add")
    victim = add.generate(args=(1, 1))
    witness = add.generate(args=(2, 2))  # queued behind the victim
    add.revoke(victim)
    statuses = lab.follow(victim)
    with lab.pool(capacity=1):
        assert lab.store.get(witness, timeout=10_000) == 4
    assert statuses.wait() == [FAILED]
    assert lab.order() == [witness.uuid]
    assert lab.starts(victim) == 0
    assert "RevokedError" in lab.dead_letters()[victim.uuid].reason
    assert not lab.broker.exists(victim)


def test_a_message_revoked_while_running_is_stopped_at_once(lab: Lab) -> None:
    sleepy = lab.task("sleepy", max_retries=3)
    message = sleepy.generate(args=(30,))
    statuses = lab.follow(message)
    with lab.pool() as running:
        eventually(lambda: lab.last_beat(message), what="the task runs")
        revoked_at = probe.now_ms()
        sleepy.revoke(message)
        last_beat = lab.wait_until_stopped_beating(message)
        hook = eventually(lambda: lab.hook("on_revocation", message), what="on_revocation")
        assert running.alive
    latency_ms = max(last_beat - revoked_at, 0) + round(BEAT_SECONDS * 1000)
    print(f"[{lab.kind.name}] revoke() to the task's last heartbeat: <= {latency_ms} ms")
    assert latency_ms < STOP_BOUND_MS
    assert hook == "RevokedError"
    assert statuses.wait() == [SUBMITTED, RUNNING, FAILED]
    assert (lab.starts(message), lab.done(message)) == (1, 0)
    assert "RevokedError" in lab.dead_letters()[message.uuid].reason
    assert not lab.broker.exists(message)


@pytest.mark.needs("repeated_stops")
def test_a_run_that_shrugs_off_its_first_stop_is_still_stopped(lab: Lab) -> None:
    stubborn, add = lab.task("stubborn"), lab.task("add")
    message = stubborn.generate(args=(30,))
    with lab.pool(capacity=1) as running:
        eventually(lambda: lab.last_beat(message), what="the task runs")
        stubborn.revoke(message)
        lab.wait_until_stopped_beating(message)
        after = add.generate(args=(1, 2))  # its slot is free again
        assert lab.store.get(after, timeout=10_000) == 3
        assert running.alive
    assert (lab.starts(message), lab.done(message)) == (1, 0)
    assert "RevokedError" in lab.dead_letters()[message.uuid].reason


def test_a_three_step_callback_chain_gives_its_results_in_order(lab: Lab) -> None:
    start, double, report = (lab.task(n) for n in ("chain_start", "chain_double", "chain_report"))
    second, third = double.defer().generate(), report.defer().generate()
    root = start.generate(args=(1,), callback=(second, third))
    with lab.pool():
        results = lab.store.get(root, timeout=15_000, descendants=True)
    assert results == [2, 20, f"after {second.uuid}: 20"]
    assert lab.order() == [root.uuid, second.uuid, third.uuid]


def test_a_backlog_drains_by_priority_then_submission_order(lab: Lab) -> None:
    add = lab.task("add")
    priorities = [(i * 7) % 4 for i in range(12)]  # 12 messages for one slot, 4 priorities
    messages = [add.generate(args=(i, 0), priority=p) for i, p in enumerate(priorities)]
    with lab.pool(capacity=1):
        eventually(lambda: len(lab.order()) == len(messages), timeout=20, what="backlog drained")
    expected = [m.uuid for m in sorted(messages, key=lambda m: m.priority)]  # stable: FIFO ties
    assert lab.order() == expected


def test_a_pool_leases_no_more_messages_than_it_can_run(lab: Lab) -> None:
    sleepy = lab.task("sleepy")
    capacity = 2
    messages = [sleepy.generate(args=(0.05,)) for _ in range(10 * capacity)]
    leases = f"{lab.namespace}:{keys.leases_key(lab.queue)}"
    most_leased = 0
    with lab.pool(capacity=capacity):

        def drained() -> bool:
            nonlocal most_leased
            most_leased = max(most_leased, int(lab.broker.backend.conn.zcard(leases)))
            return all(lab.done(m) for m in messages)

        eventually(drained, timeout=30, what="backlog drained")
    # A thread or asyncio pool's slot is free once the run ended: the next message starts
    # while the first still writes its outcome (its lease held until its ack), at most one
    # such per slot. Every lease is a message that runs or has run.
    most = 2 * capacity if lab.kind.name in ("thread", "async") else capacity
    assert capacity <= most_leased <= most


def test_a_task_the_pool_does_not_serve_stays_queued_and_the_pool_keeps_running(
    lab: Lab,
) -> None:
    add = lab.task("add")
    ghost = Message("ghost", queue=lab.queue, priority=0)
    lab.broker.submit(ghost)
    before = add.generate(args=(1, 2), priority=5)
    with lab.pool() as running:
        assert lab.store.get(before, timeout=10_000) == 3
        after = add.generate(args=(3, 4))
        assert lab.store.get(after, timeout=10_000) == 7
        assert running.alive
    # Another pool (or a later deploy) may serve it: never run here, never dead-lettered.
    assert lab.broker.exists(ghost)
    assert ghost.uuid not in lab.dead_letters()
    assert lab.starts(ghost) == 0


def test_no_task_exception_kills_the_pool(lab: Lab) -> None:
    raiser, add = lab.task("raise_this"), lab.task("add")
    failing = {name: raiser.generate(args=(name,)) for name in RAISABLE}
    with lab.pool() as running:
        for message in failing.values():
            lab.tracker.wait_for(message, FAILED, timeout=10)
        check = add.generate(args=(20, 22))
        assert lab.store.get(check, timeout=10_000) == 42
        assert running.alive
    dead = lab.dead_letters()
    for name, message in failing.items():
        assert name in dead[message.uuid].reason
        assert lab.hook("on_failure", message) == name


@pytest.mark.needs("crash_isolation")
def test_a_task_that_kills_its_process_is_retried_and_the_pool_survives(lab: Lab) -> None:
    crasher, add = lab.task("crash_process", max_retries=1), lab.task("add")
    message = crasher.generate()
    statuses = lab.follow(message)
    with lab.pool() as running:
        observed = statuses.wait()
        assert running.alive
        check = add.generate(args=(1, 1))
        assert lab.store.get(check, timeout=10_000) == 2
    assert observed == [SUBMITTED, RUNNING, RETRYING, RUNNING, SUCCEEDED]
    attempts = lab.attempts(message)
    assert [attempt["error"] for attempt in attempts] == [None, "alsek.exceptions.WorkerLostError"]
    assert lab.done(message) == 1


def test_a_sigterm_from_outside_does_not_stop_a_process_pool_child(
    make_lab: Callable[[PoolKind], Lab],
) -> None:
    """A service manager signals the whole process group; the pool's shutdown decides, not the
    child (only the pool, killing it, ends it)."""
    lab = make_lab(KINDS["process"])
    sleepy = lab.task("sleepy", max_retries=0)
    message = sleepy.generate(args=(0.6,))
    with lab.pool():
        eventually(lambda: lab.last_beat(message), what="the task runs")
        os.kill(lab.attempts(message)[0]["pid"], signal.SIGTERM)
        os.kill(lab.attempts(message)[0]["pid"], signal.SIGINT)
        assert lab.store.get(message, timeout=10_000) == 0.6
    assert (lab.starts(message), lab.done(message)) == (1, 1)
