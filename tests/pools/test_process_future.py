"""``ProcessTaskFuture``: one message in a process of its own (public API; the process pool runs
warm children instead). It writes the outcome in its child, or here when it is stopped."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from poolharness import KINDS, Lab, eventually

from alsek.core.consumer import Consumer
from alsek.core.future import ProcessTaskFuture
from alsek.core.message import Message
from alsek.core.status import TaskStatus


@pytest.fixture
def lab(make_lab: Callable[..., Lab]) -> Lab:
    """A lab whose tasks have the process mechanism."""
    return make_lab(KINDS["process"])


def claimed(lab: Lab) -> Message:
    """The next message of the lab's queue, claimed (it carries its lease)."""
    [message] = Consumer(lab.broker, subset=[lab.queue]).claim(1).messages
    return message


def test_a_process_future_runs_its_message_in_a_process_of_its_own(lab: Lab) -> None:
    add = lab.task("add")
    submitted = add.generate(args=(20, 22))
    future = ProcessTaskFuture(add, claimed(lab))
    eventually(lambda: future.complete, what="the child exited")
    future.settle()
    assert lab.store.get(submitted, timeout=5_000) == 42
    assert lab.attempts(submitted)[0]["pid"] == future.process.pid


def test_a_stopped_process_future_fails_its_attempt_here(lab: Lab) -> None:
    sleepy = lab.task("sleepy")
    submitted = sleepy.generate(args=(30,))
    future = ProcessTaskFuture(sleepy, claimed(lab))
    eventually(lambda: lab.last_beat(submitted), what="the task runs")
    future.stop(TimeoutError)
    assert future.complete
    assert lab.tracker.wait_for(submitted, TaskStatus.FAILED, timeout=5) is TaskStatus.FAILED
    assert "TimeoutError" in lab.dead_letters()[submitted.uuid].reason
