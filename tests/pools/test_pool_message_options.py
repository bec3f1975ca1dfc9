"""Dramatiq's per-message options in a real pool of every kind: ``max_age``, ``throws``,
``retry_when``, ``raise Retry(delay=...)``, ``raise SkipMessage``, ``RateLimitExceeded``, and
``current_message()``. Each is set on the task, and, where a message may override it, on the
message at ``generate()``.
"""

from __future__ import annotations

import itertools

from poolharness import Lab, eventually
from poolwork import probe
from poolwork.sync_work import LIMITED_KEY, retry_connection_errors

from alsek.core.backoff import ConstantBackoff
from alsek.core.limits import ConcurrentRateLimiter
from alsek.core.message import Message
from alsek.core.status import TaskStatus

SUBMITTED, RUNNING, RETRYING = TaskStatus.SUBMITTED, TaskStatus.RUNNING, TaskStatus.RETRYING
SUCCEEDED, FAILED = TaskStatus.SUCCEEDED, TaskStatus.FAILED

#: Early arrival allowed for a retry (clock granularity), as in the lifecycle tests.
EARLY_MS = 30
HOUR_MS = 3_600_000


def _older_than(message: object, age_ms: int) -> None:
    """Wait until ``message`` is more than ``age_ms`` old (its age only grows from there)."""
    created_at = message.created_at  # type: ignore[attr-defined]
    eventually(lambda: probe.now_ms() - created_at > age_ms, what=f"{age_ms} ms of age")


# -- max_age ------------------------------------------------------------------------------------


def test_a_message_older_than_its_max_age_is_dead_lettered_unrun(lab: Lab) -> None:
    add = lab.task("add", max_age=5)
    stale = add.generate(args=(1, 1))
    fresh = add.generate(args=(2, 2), max_age=HOUR_MS)  # the message's own max_age wins
    _older_than(stale, 5)
    statuses = lab.follow(stale)
    with lab.pool():
        assert lab.store.get(fresh, timeout=10_000) == 4
        # RUNNING, when the claim writes it, is the claim's (the task never starts).
        assert statuses.wait() in ([SUBMITTED, FAILED], [SUBMITTED, RUNNING, FAILED])
        dead = eventually(lambda: lab.dead_letters().get(stale.uuid), what="dead letter")
    assert lab.starts(stale) == 0
    assert dead.reason.startswith("max_age: claimed ")
    assert dead.reason.endswith("its max_age is 5 ms")


def test_a_message_within_its_max_age_runs(lab: Lab) -> None:
    add = lab.task("add", max_age=HOUR_MS)
    message = add.generate(args=(1, 2))
    with lab.pool():
        assert lab.store.get(message, timeout=10_000) == 3


# -- throws ---------------------------------------------------------------------------------------


def test_an_exception_the_task_throws_fails_at_once_without_retry(lab: Lab) -> None:
    failing = lab.task("always_fail", max_retries=3, throws=(ValueError,))
    message = failing.generate()
    statuses = lab.follow(message)
    with lab.pool():
        assert statuses.wait() == [SUBMITTED, RUNNING, FAILED]
        dead = eventually(lambda: lab.dead_letters().get(message.uuid), what="dead letter")
    assert lab.starts(message) == 1
    assert dead.reason.startswith("ValueError: attempt 1")


def test_a_message_can_name_the_exceptions_it_throws(lab: Lab) -> None:
    failing = lab.task("always_fail", max_retries=3)
    message = failing.generate(throws=(KeyError, ValueError))
    with lab.pool():
        assert lab.follow(message).wait()[-1] is FAILED
    assert lab.starts(message) == 1


def test_other_exceptions_are_still_retried(lab: Lab) -> None:
    flaky = lab.task("flaky", max_retries=1, throws=(ValueError,))
    message = flaky.generate(args=(1,))  # ConnectionError once
    with lab.pool():
        assert lab.store.get(message, timeout=10_000) == "succeeded on attempt 2"


# -- retry_when -----------------------------------------------------------------------------------


def test_retry_when_decides_instead_of_max_retries(lab: Lab) -> None:
    flaky = lab.task("flaky", max_retries=0, retry_when=retry_connection_errors)
    message = flaky.generate(args=(3,))  # three ConnectionErrors, though max_retries is 0
    with lab.pool():
        assert lab.store.get(message, timeout=15_000) == "succeeded on attempt 4"
    assert [attempt["retries"] for attempt in lab.attempts(message)] == [0, 1, 2, 3]


def test_retry_when_refusing_fails_the_message_at_once(lab: Lab) -> None:
    failing = lab.task("always_fail", max_retries=3, retry_when=retry_connection_errors)
    message = failing.generate()  # ValueError: retry_when says no
    statuses = lab.follow(message)
    with lab.pool():
        assert statuses.wait() == [SUBMITTED, RUNNING, FAILED]
    assert lab.starts(message) == 1


def test_a_message_can_bring_its_own_retry_when(lab: Lab) -> None:
    flaky = lab.task("flaky", max_retries=0)
    message = flaky.generate(args=(2,), retry_when=retry_connection_errors)
    with lab.pool():
        assert lab.store.get(message, timeout=15_000) == "succeeded on attempt 3"


# -- Retry ----------------------------------------------------------------------------------------


def test_retry_runs_again_after_its_delay_and_counts(lab: Lab) -> None:
    task = lab.task("retry_later", max_retries=3)
    message = task.generate(args=(2, 300))  # two Retry(delay=300) before it succeeds
    statuses = lab.follow(message)
    with lab.pool():
        assert lab.store.get(message, timeout=15_000) == "done after 2 retries"
        retried_twice = [SUBMITTED, RUNNING, RETRYING, RUNNING, RETRYING, RUNNING, SUCCEEDED]
        assert statuses.wait() == retried_twice
    attempts = lab.attempts(message)
    assert [attempt["retries"] for attempt in attempts] == [0, 1, 2]
    assert [attempt["error"] for attempt in attempts[1:]] == ["alsek.exceptions.Retry"] * 2
    gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(attempts)]
    assert all(gap >= 300 - EARLY_MS for gap in gaps), gaps  # the backoff (none) is not used


def test_retry_is_bounded_by_max_retries(lab: Lab) -> None:
    task = lab.task("retry_later", max_retries=1)
    message = task.generate(args=(5, 0))
    with lab.pool():
        assert lab.follow(message).wait()[-1] is FAILED
    assert lab.starts(message) == 2


# -- RateLimitExceeded ----------------------------------------------------------------------------


def test_a_rate_limited_run_is_retried_without_counting_it(lab: Lab) -> None:
    task = lab.task("throttled", max_retries=0)
    message = task.generate(args=(3,))  # rate limited three times, with no retries allowed
    with lab.pool():
        assert lab.store.get(message, timeout=15_000) == "done with retries=0"
    assert [attempt["retries"] for attempt in lab.attempts(message)] == [0, 0, 0, 0]


def test_a_task_held_back_by_a_limiter_runs_later_without_losing_attempts(lab: Lab) -> None:
    limited = lab.task("limited", max_retries=0, backoff=ConstantBackoff(50, floor=0))
    messages = [limited.generate(args=(0.1,)) for _ in range(3)]
    slot = ConcurrentRateLimiter(key=LIMITED_KEY, limit=1, backend=lab.broker.backend).acquire()
    with lab.pool(capacity=3):
        with slot:  # the test holds the one slot: every run is held back
            for message in messages:
                eventually(lambda m=message: lab.starts(m) >= 2, what="a retried run")
        for message in messages:  # then each gets the slot in turn, none dead-lettered
            assert lab.store.get(message, timeout=20_000) == 0
    inside = probe.client().lrange(probe.key("inside"), 0, -1)
    assert inside == ["1", "1", "1"]  # never two holders at once


# -- SkipMessage ----------------------------------------------------------------------------------


def test_skip_message_acks_as_succeeded_without_a_result(lab: Lab) -> None:
    skip = lab.task("skip_me", max_retries=3)
    add = lab.task("add")
    message = skip.generate(callback=add.defer().generate(args=(1, 1)))
    statuses = lab.follow(message)
    with lab.pool():
        assert statuses.wait() == [SUBMITTED, RUNNING, SUCCEEDED]
    assert (lab.starts(message), lab.done(message)) == (1, 0)
    assert not lab.store.exists(message)
    assert not lab.broker.exists(message) and message.uuid not in lab.dead_letters()
    # A submitted callback would have had its SUBMITTED status written with the skip's ack.
    callback = Message(**(message.callback_message_data or {}))
    assert not lab.tracker.exists(callback) and not lab.broker.exists(callback)


# -- current_message ------------------------------------------------------------------------------


def test_current_message_is_the_running_message(lab: Lab) -> None:
    whoami = lab.task("whoami")
    messages = [whoami.generate() for _ in range(3)]
    with lab.pool(capacity=3):
        for message in messages:
            assert lab.store.get(message, timeout=10_000) == message.uuid
