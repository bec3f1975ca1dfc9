"""Middleware in a real pool of every kind: each hook is called once, in order, with the right
arguments, in the process that runs the message (middleware travels with the broker to pool
children); a hook that raises loses nothing; ``before_process`` may skip a message.

The recorders (``poolwork.recorders``) append every call they get to one Redis list. The
producer's broker has ``Recorder`` (plain hooks); the pool's broker has it too for the thread
and process kinds, ``AsyncRecorder`` (``async def`` hooks) for the asyncio kind.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from poolharness import STOP_AFTER_MS, Lab, eventually
from poolwork.recorders import AsyncRecorder, Broken, Recorder, Skipper, calls

from alsek.core.message import Message
from alsek.core.status import TaskStatus

SUBMITTED, RUNNING, SUCCEEDED, FAILED = (
    TaskStatus.SUBMITTED,
    TaskStatus.RUNNING,
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
)


def of(message: Message) -> list[dict[str, Any]]:
    """The recorded calls about ``message``, in order."""
    return [call for call in calls() if call["uuid"] == message.uuid]


def hooks(message: Message) -> list[str]:
    return [call["hook"] for call in of(message)]


def pool_calls(hook: str) -> list[dict[str, Any]]:
    return [call for call in calls() if call["hook"] == hook]


def recording(lab: Lab) -> None:
    lab.use_middleware(Recorder(), AsyncRecorder())


def test_a_successful_message_meets_every_hook_in_order(lab: Lab) -> None:
    recording(lab)
    message = lab.task("add").generate(args=(2, 3))
    with lab.pool():
        assert lab.store.get(message, timeout=10_000) == 5
        eventually(lambda: "after_ack" in hooks(message), what="after_ack")
    assert hooks(message) == [
        "before_submit",
        "after_submit",
        "before_process",
        "after_process",
        "after_ack",
    ]
    before, after = of(message)[2:4]
    assert before["current"] is True  # current_message() is the message, in the hook
    assert (after["result"], after["exception"]) == (5, None)
    # The worker's hooks ran where the message ran: in a child, but for the asyncio pool.
    in_child = lab.kind.name != "async"
    assert (before["pid"] != os.getpid()) is in_child
    [boot], [shutdown] = pool_calls("worker_boot"), pool_calls("worker_shutdown")
    assert boot["pid"] == before["pid"] or lab.kind.name == "process"
    assert calls().index(boot) < calls().index(of(message)[2]) < calls().index(shutdown)


def test_plain_hooks_run_inline_in_the_asyncio_pool(lab: Lab) -> None:
    if lab.kind.name != "async":
        pytest.skip("the other kinds' pools run plain hooks anyway")
    lab.use_middleware(Recorder())
    message = lab.task("add").generate(args=(1, 1))
    with lab.pool():
        assert lab.store.get(message, timeout=10_000) == 2
        eventually(lambda: "after_ack" in hooks(message), what="after_ack")
    assert hooks(message)[2:] == ["before_process", "after_process", "after_ack"]
    assert of(message)[2]["current"] is True


def test_a_failing_message_is_retried_then_dead_lettered_through_the_hooks(lab: Lab) -> None:
    recording(lab)
    message = lab.task("always_fail", max_retries=1).generate()
    statuses = lab.follow(message)
    with lab.pool():
        assert statuses.wait()[-1] is FAILED
        eventually(lambda: "after_dead_letter" in hooks(message), what="after_dead_letter")
    attempt = ["before_process", "after_process"]
    seen = hooks(message)
    assert seen[:4] == ["before_submit", "after_submit", *attempt]
    # The retry is written before after_retry runs, so in the process pool another child may
    # start the second attempt while the first child still records after_retry.
    rest = seen[4:]
    assert sorted(rest) == sorted(["after_retry", *attempt, "after_dead_letter"])
    second = [rest.index(hook) for hook in (*attempt, "after_dead_letter")]
    assert second == sorted(second)  # the second attempt's own hooks, in order
    recorded = of(message)
    exceptions = [call["exception"] for call in recorded if "exception" in call]
    assert exceptions == ["ValueError"] * 4
    [retried] = [call for call in recorded if call["hook"] == "after_retry"]
    assert retried["retries"] == 1  # after_retry sees the message as requeued


def test_a_stopped_run_gets_after_process_with_why_it_stopped(lab: Lab) -> None:
    recording(lab)
    message = lab.task("sleepy", timeout=STOP_AFTER_MS).generate(args=(30,))
    statuses = lab.follow(message)
    with lab.pool():
        assert statuses.wait()[-1] is FAILED
        eventually(lambda: "after_dead_letter" in hooks(message), what="after_dead_letter")
    assert hooks(message)[-2:] == ["after_process", "after_dead_letter"]
    assert [call["exception"] for call in of(message)[-2:]] == ["TimeoutError"] * 2
    assert hooks(message).count("after_process") == 1


def test_a_callback_is_submitted_through_the_hooks(lab: Lab) -> None:
    recording(lab)
    report = lab.task("chain_report")
    first = lab.task("chain_start").generate(args=(1,), callback=report.defer().generate())
    callback = Message(**(first.callback_message_data or {}))
    with lab.pool():
        results = lab.store.get(first, timeout=10_000, descendants=True)
        assert results == [2, f"after {first.uuid}: 2"]
        eventually(lambda: len(hooks(callback)) >= 5, what="the callback's five hooks")
    seen = hooks(callback)
    # The callback is in Redis once the parent's ack ran: another thread or process of the
    # pool may claim and run it before the parent's worker gets to after_submit.
    assert sorted(seen) == sorted(
        ["before_submit", "after_submit", "before_process", "after_process", "after_ack"]
    )
    assert seen[0] == "before_submit"
    run = [seen.index(hook) for hook in ("before_process", "after_process", "after_ack")]
    assert run == sorted(run)
    # Submitted by the worker, with the parent's ack: after the parent ran, before its after_ack.
    order = [(call["hook"], call["uuid"]) for call in calls()]
    assert (
        order.index(("after_process", first.uuid))
        < order.index(("before_submit", callback.uuid))
        < order.index(("after_ack", first.uuid))
    )


def test_revoking_a_queued_message_calls_after_revoke(lab: Lab) -> None:
    recording(lab)
    task = lab.task("add")
    message = task.generate(args=(1, 2), delay=60_000)
    task.revoke(message)
    assert hooks(message) == ["before_submit", "after_submit", "after_revoke"]
    task.revoke(message)  # gone already: no second call
    assert hooks(message).count("after_revoke") == 1


def test_a_middleware_that_raises_everywhere_loses_nothing(lab: Lab) -> None:
    lab.use_middleware(Broken())
    add = lab.task("add")
    flaky = lab.task("flaky", max_retries=1)
    failing = lab.task("always_fail")
    added, retried, failed = (
        add.generate(args=(1, 2)),
        flaky.generate(args=(1,)),
        failing.generate(),
    )
    statuses = lab.follow(failed)
    with lab.pool():
        assert lab.store.get(added, timeout=10_000) == 3
        assert lab.store.get(retried, timeout=10_000) == "succeeded on attempt 2"
        assert statuses.wait() == [SUBMITTED, RUNNING, FAILED]
        eventually(lambda: failed.uuid in lab.dead_letters(), what="dead letter")
    assert (lab.starts(added), lab.starts(retried), lab.starts(failed)) == (1, 2, 1)


def test_before_process_may_skip_a_message(lab: Lab) -> None:
    lab.use_middleware(Skipper())
    message = lab.task("add").generate(args=(1, 2))
    statuses = lab.follow(message)
    with lab.pool():
        assert statuses.wait() == [SUBMITTED, RUNNING, SUCCEEDED]
    assert lab.starts(message) == 0
    assert not lab.store.exists(message)
