"""A group's completion callback under a SIGKILL storm: submitted once, after every member.

A group of ``GROUP_SIZE`` members runs on three pools (thread, thread, async) while one of
them is SIGKILLed every ``KILL_EVERY_SECONDS`` and restarted: members caught in flight run
again once their lease expires. Each member's ack counts the group down inside the ack script,
so repeated runs, repeated acks and dead workers must neither count twice nor lose a count.
The callback goes to a queue no pool serves, so the test sees every submit of it, and it never
runs under the storm.
"""

from __future__ import annotations

import time

import pytest
from faultlab import FaultLab, PoolProcess

from alsek.core.workflow import group

pytestmark = pytest.mark.slow

GROUP_SIZE = 100
#: How long each member runs (so that kills catch some in flight).
MEMBER_SECONDS = 0.3
KILL_EVERY_SECONDS = 0.7
#: Kills the storm makes at least before the group may complete.
MIN_KILLS = 4
LEASE_MS = 1_500
CAPACITY = 4
#: The callback's queue: served by no pool, so it stays queued where the test can count it.
CALLBACK_QUEUE = "faults-callbacks"


def _relaunch(lab: FaultLab, pools: list[PoolProcess], index: int, kind: str) -> None:
    pools[index].kill()
    pools[index] = lab.launched_pool(kind, CAPACITY, LEASE_MS)


@pytest.mark.timeout(180)
def test_a_group_completion_callback_fires_once_under_a_sigkill_storm(lab: FaultLab) -> None:
    kinds = ["thread", "thread", "async"]
    pools = [lab.launched_pool(kind, CAPACITY, LEASE_MS) for kind in kinds]
    lab.wait_until_idle(pools)
    work, count = lab.tasks["work"], lab.tasks["count"]
    members = [work.generate(args=(MEMBER_SECONDS,), submit=False) for _ in range(GROUP_SIZE)]
    callback = count.generate(args=(7,), queue=CALLBACK_QUEUE, submit=False)
    flow = group(members).add_completion_callback(callback).run()

    kills = 0
    deadline = time.monotonic() + 150
    next_kill = time.monotonic() + KILL_EVERY_SECONDS
    while not flow.completed(lab.store) or kills < MIN_KILLS:
        assert time.monotonic() < deadline, "the group never completed"
        if lab.broker.exists(callback):
            # Submitted by the last member's ack, with that member's result: never earlier.
            assert flow.completed(lab.store), "the callback came before every member succeeded"
        if time.monotonic() >= next_kill and not flow.completed(lab.store):
            _relaunch(lab, pools, kills % 3, kinds[kills % 3])
            kills += 1
            next_kill += KILL_EVERY_SECONDS
        time.sleep(0.02)

    lab.assert_all_succeeded(members, [MEMBER_SECONDS] * GROUP_SIZE)
    evidence = lab.evidence()
    assert sum(evidence.runs(m.uuid) for m in members) > GROUP_SIZE, "no member was run twice"
    assert lab.broker.exists(callback)
    queued = lab.conn.keys(f"{lab.namespace}:queues:{{{CALLBACK_QUEUE}}}:messages:*")
    assert queued == [f"{lab.namespace}:queues:{{{CALLBACK_QUEUE}}}:messages:{callback.uuid}"]
    assert evidence.runs(callback.uuid) == 0
    lab.wait_until_idle(pools)  # a pool restarted last is up before it is told to stop
    lab.stop(pools, 15)
