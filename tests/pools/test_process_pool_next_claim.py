"""A warm child claims its own next message while work is backed up (``next_claim``), and the
pool's process adopts that run: a timeout, a revocation or the child's death is handled as for
a message the pool sent.

Each start records its lease owner (``lab.attempts``): the pool's own id for a message the pool
claimed, that id followed by ``:c<child>`` for one a child claimed itself. With one child and
the work queued before the pool starts, the pool claims the first message (its claim comes back
full: work is backed up) and the child claims every one after it.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable

import pytest
from poolharness import KINDS, STOP_AFTER_MS, Lab, eventually

from alsek.core.message import Message
from alsek.core.status import TaskStatus

CHILD_OWNER = re.compile(r":c\d+(:|$)")


@pytest.fixture
def lab(make_lab: Callable[..., Lab]) -> Lab:
    """A lab running process pools."""
    return make_lab(KINDS["process"])


def owner(lab: Lab, message: Message, attempt: int = 0) -> str:
    """The lease owner of the message's start number ``attempt``."""
    return str(lab.attempts(message)[attempt]["owner"])


def claimed_by_child(lab: Lab, message: Message, attempt: int = 0) -> bool:
    return CHILD_OWNER.search(owner(lab, message, attempt)) is not None


def test_a_child_claims_its_next_messages_while_work_is_backed_up(lab: Lab) -> None:
    add = lab.task("add")
    messages = [add.generate(args=(i, 1)) for i in range(12)]
    with lab.pool(capacity=1):
        assert [lab.store.get(m, timeout=10_000) for m in messages] == [i + 1 for i in range(12)]
    assert [claimed_by_child(lab, m) for m in messages] == [False] + [True] * 11
    assert all(lab.starts(m) == 1 for m in messages)
    assert len({lab.attempts(m)[0]["pid"] for m in messages}) == 1


def test_children_of_a_quiet_pool_leave_the_claims_to_the_pool(lab: Lab) -> None:
    """One message at a time: every claim comes back short, so no child claims (a child's
    claim after each message would come back empty)."""
    add = lab.task("add")
    with lab.pool(capacity=2):
        messages = []
        for i in range(5):
            messages.append(add.generate(args=(i, i)))
            assert lab.store.get(messages[-1], timeout=10_000) == 2 * i
    assert not any(claimed_by_child(lab, m) for m in messages)


def test_a_timed_out_message_a_child_claimed_kills_that_child(lab: Lab) -> None:
    add, sleepy = lab.task("add"), lab.task("sleepy", timeout=STOP_AFTER_MS)
    first = add.generate(args=(1, 1))
    stuck = sleepy.generate(args=(30,))
    with lab.pool(capacity=1):
        assert lab.tracker.wait_for(stuck, TaskStatus.FAILED, timeout=30) is TaskStatus.FAILED
        after = add.generate(args=(2, 2))
        assert lab.store.get(after, timeout=10_000) == 4
    assert claimed_by_child(lab, stuck)
    assert "TimeoutError" in lab.dead_letters()[stuck.uuid].reason
    assert lab.attempts(first)[0]["pid"] == lab.attempts(stuck)[0]["pid"]
    assert lab.attempts(after)[0]["pid"] != lab.attempts(stuck)[0]["pid"]


def test_revoking_a_message_a_child_claimed_stops_it(lab: Lab) -> None:
    add, sleepy = lab.task("add"), lab.task("sleepy")
    add.generate(args=(1, 1))
    victim = sleepy.generate(args=(30,))
    with lab.pool(capacity=1):
        eventually(lambda: lab.last_beat(victim), what="the claimed run beats")
        sleepy.revoke(victim)
        assert lab.tracker.wait_for(victim, TaskStatus.FAILED, timeout=30) is TaskStatus.FAILED
    assert claimed_by_child(lab, victim)
    assert "RevokedError" in lab.dead_letters()[victim.uuid].reason
    assert lab.hook("on_revocation", victim) == "RevokedError"


def test_a_child_killed_in_a_message_it_claimed_fails_only_that_attempt(lab: Lab) -> None:
    add, slow_first = lab.task("add"), lab.task("slow_first", max_retries=1)
    add.generate(args=(1, 1))
    victim = slow_first.generate(args=(30,))
    with lab.pool(capacity=1) as running:
        eventually(lambda: lab.last_beat(victim), what="the claimed run beats")
        os.kill(lab.attempts(victim)[0]["pid"], signal.SIGKILL)  # as the OOM killer would
        assert lab.store.get(victim, timeout=10_000) == "done after 1 retries"
        assert running.alive
    first, second = lab.attempts(victim)
    assert claimed_by_child(lab, victim, 0)
    assert (second["retries"], second["error"]) == (1, "alsek.exceptions.WorkerLostError")
    assert second["pid"] != first["pid"]


def test_stopping_releases_a_message_a_child_claimed(lab: Lab) -> None:
    add, sleepy = lab.task("add"), lab.task("sleepy")
    add.generate(args=(1, 1))
    long_run = sleepy.generate(args=(30,))
    with lab.pool(capacity=1, grace_period=200):
        eventually(lambda: lab.last_beat(long_run), what="the claimed run beats")
    assert claimed_by_child(lab, long_run)
    with lab.pool(capacity=1, grace_period=200):  # released, uncounted: it runs again at once
        eventually(lambda: lab.starts(long_run) == 2, what="the released message runs again")
    assert lab.attempts(long_run)[1]["retries"] == 0
