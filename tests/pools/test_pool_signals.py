"""Pools stopped from outside: SIGTERM lets running messages finish within the grace period and
releases the rest; a pool killed with SIGKILL has its message run again elsewhere."""

from __future__ import annotations

import signal

import pytest
from poolharness import Lab, eventually
from poolwork import probe

from alsek.core.status import TaskStatus

pytestmark = pytest.mark.slow

#: Grace period of the SIGTERM test: the 1 s tasks finish within it, the 30 s ones cannot.
GRACE_MS = 2_500
#: Lease of the pools killed with SIGKILL.
LEASE_TTL_MS = 1_000
#: How long a pool subprocess may take to exit after SIGTERM (beyond the grace period).
EXIT_SECONDS = 15


def test_sigterm_loses_nothing_and_runs_nothing_twice(lab: Lab) -> None:
    served = lab.served()
    quick = [served["add"].generate(args=(i, i)) for i in range(6)]
    finishing = [served["sleepy"].generate(args=(1.0,)) for _ in range(2)]
    released = [served["slow_first"].generate(args=(30,)) for _ in range(2)]
    everything = quick + finishing + released
    first = lab.cli_pool(4, "--grace_period", str(GRACE_MS))
    eventually(lambda: all(lab.done(m) for m in quick), timeout=30, what="quick ones done")
    long_ones = finishing + released
    eventually(lambda: all(lab.starts(m) for m in long_ones), timeout=20, what="long ones run")
    assert not any(lab.done(m) for m in finishing), "they must still run at SIGTERM"

    first.signal(signal.SIGTERM)
    assert first.wait(GRACE_MS / 1000 + EXIT_SECONDS) == 0, first.output()
    assert [lab.done(m) for m in finishing] == [1, 1]  # finished within the grace period
    assert [lab.done(m) for m in released] == [0, 0]  # stopped, and back in their queue
    assert all(lab.broker.exists(m) for m in released)

    second = lab.cli_pool(4)
    for message in everything:
        lab.store.get(message, timeout=20_000)
    second.signal(signal.SIGTERM)
    assert second.wait(EXIT_SECONDS) == 0, second.output()

    assert [lab.done(m) for m in everything] == [1] * len(everything)
    assert [lab.starts(m) for m in quick + finishing] == [1] * len(quick + finishing)
    assert [lab.starts(m) for m in released] == [2, 2]
    # A release is not an attempt: the second run is still the first try.
    assert [lab.attempts(m)[1]["retries"] for m in released] == [0, 0]
    assert all(lab.tracker.get(m).value is TaskStatus.SUCCEEDED for m in everything)


def test_a_message_of_a_killed_pool_runs_again_within_its_lease(lab: Lab) -> None:
    message = lab.served()["slow_first"].generate(args=(30,))
    statuses = lab.follow(message)
    first = lab.launched_pool(1, lease_ttl=LEASE_TTL_MS)
    eventually(lambda: lab.last_beat(message), timeout=20, what="the message runs")
    first.kill_session()
    killed_at = probe.now_ms()

    second = lab.launched_pool(1, lease_ttl=LEASE_TTL_MS)
    result = lab.store.get(message, timeout=LEASE_TTL_MS + 15_000)
    assert result == "done after 1 retries"
    retry = lab.attempts(message)[1]
    redelivered_ms = retry["at"] - killed_at
    print(
        f"[{lab.kind.name}] SIGKILL to the second run: {redelivered_ms} ms (lease {LEASE_TTL_MS})"
    )
    assert redelivered_ms < LEASE_TTL_MS + 5_000
    assert retry["retries"] == 1  # the lost run counts as an attempt
    assert retry["error"] == "alsek.exceptions.WorkerLostError"
    assert statuses.wait() == [
        TaskStatus.SUBMITTED,
        TaskStatus.RUNNING,
        TaskStatus.RUNNING,
        TaskStatus.SUCCEEDED,
    ]
    second.signal(signal.SIGTERM)
    assert second.wait(EXIT_SECONDS) == 0, second.output()


#: Lease of the draining test: shorter than the run and than the grace period.
DRAIN_LEASE_MS = 1_000
#: The run of the draining test: several leases long, well within the grace period.
DRAIN_RUN_SECONDS = 3.0
#: Grace period of the draining test.
DRAIN_GRACE_MS = 10_000


def test_a_pool_draining_after_sigterm_keeps_renewing_the_lease(lab: Lab) -> None:
    """A message that outlives its lease during the grace period still finishes once, where
    it runs: another pool waiting on the queue never takes it over."""
    message = lab.served()["slow_first"].generate(args=(DRAIN_RUN_SECONDS,))
    statuses = lab.follow(message)
    draining = lab.launched_pool(1, lease_ttl=DRAIN_LEASE_MS, grace_period=DRAIN_GRACE_MS)
    eventually(lambda: lab.last_beat(message), timeout=20, what="the message runs")
    standby = lab.launched_pool(1, lease_ttl=DRAIN_LEASE_MS)

    draining.signal(signal.SIGTERM)
    assert draining.wait(DRAIN_GRACE_MS / 1000 + EXIT_SECONDS) == 0, draining.output()
    assert lab.store.get(message, timeout=10_000) == "done after 0 retries"
    assert statuses.wait() == [TaskStatus.SUBMITTED, TaskStatus.RUNNING, TaskStatus.SUCCEEDED]
    assert (lab.starts(message), lab.done(message)) == (1, 1)
    standby.signal(signal.SIGTERM)
    assert standby.wait(EXIT_SECONDS) == 0, standby.output()
