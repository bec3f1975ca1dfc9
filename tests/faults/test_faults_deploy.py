"""A rolling deploy under load that introduces a task: pools of release 1 are stopped one by one
(SIGTERM) and replaced by pools of release 2, which also serve the task ``added``, while
producers keep submitting ``work`` and already submit ``added``. Release-1 pools share the
queue with release-2 pools and must leave ``added`` alone: nothing is dead-lettered, nothing is
lost, nothing runs twice, and no ``added`` message runs before a release-2 pool is up."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from faultlab import FaultLab, PoolProcess, scaled

pytestmark = pytest.mark.slow

#: Messages per wave of each task, how long each runs, and waves before the restarts begin.
WAVE = scaled(1_000, 500)
TASK_SECONDS = 0.005
#: Seconds a pool gets to exit after SIGTERM (its messages finish well within the grace period,
#: so none is released mid-run and run again).
EXIT_SECONDS = 20
#: The pools of each release: (kind, capacity).
POOLS = [("thread", 8), ("async", 30), ("thread", 8)]


def feed(lab: FaultLab, messages: dict[str, list[Any]]) -> None:
    """Submit a wave of both tasks."""
    for name in ("work", "added"):
        messages[name] += lab.submit(name, [(TASK_SECONDS,)] * WAVE)


def wait_for_runs(lab: FaultLab, count: int, pools: list[PoolProcess]) -> None:
    """Wait until ``count`` attempts have started, the pools staying alive."""
    deadline = time.monotonic() + 60
    while sum(len(a) for a in lab.evidence().attempts.values()) < count:
        assert time.monotonic() < deadline, f"fewer than {count} runs"
        for pool in pools:
            assert pool.alive, pool.output()
        time.sleep(0.1)


@pytest.mark.timeout(180)
def test_a_rolling_deploy_that_adds_a_task_loses_repeats_and_dead_letters_nothing(
    lab: FaultLab, figures: dict[str, Any]
) -> None:
    pools = [lab.cli_pool(kind, capacity, version=1) for kind, capacity in POOLS]
    lab.wait_until_idle(pools)
    release_1_pids = {pid for pool in pools for pid in pool.pids()}
    messages: dict[str, list[Any]] = {"work": [], "added": []}
    feed(lab, messages)
    wait_for_runs(lab, WAVE // 2, pools)

    first_release_2_at: float | None = None
    exits = []
    for index, (kind, capacity) in enumerate(POOLS):
        old = pools[index]
        release_1_pids |= set(old.pids())  # process groups started since boot
        old.signal(signal.SIGTERM)
        exits.append(old.wait(EXIT_SECONDS))
        assert exits[-1] == 0, old.output()
        pools[index] = lab.cli_pool(kind, capacity, version=2)
        first_release_2_at = first_release_2_at or time.time() * 1000
        feed(lab, messages)
    lab.wait_until_settled(timeout=90)

    everything = messages["work"] + messages["added"]
    evidence = lab.evidence()
    runs = [evidence.runs(message.uuid) for message in everything]
    assert runs.count(1) == len(runs), (
        f"{sum(r > 1 for r in runs)} ran twice or more, {runs.count(0)} never ran"
    )
    lab.assert_all_succeeded(everything, [TASK_SECONDS] * len(everything))
    assert lab.broker.dlq_count() == 0
    added_attempts = [a for m in messages["added"] for a in evidence.attempts[m.uuid]]
    assert not [a for a in added_attempts if a.pid in release_1_pids], "release 1 ran `added`"
    assert first_release_2_at is not None
    assert min(a.at for a in added_attempts) >= first_release_2_at
    hygiene = lab.assert_hygiene(live=0)
    lab.stop(pools, EXIT_SECONDS)
    figures.update(
        messages=len(everything),
        added_messages=len(messages["added"]),
        pools_restarted=len(POOLS),
        exit_codes=exits,
        runs=sum(runs),
        duplicates=sum(runs) - len(everything),
        lost=runs.count(0),
        dead_lettered=0,
        added_waited_ms=min(a.at for a in added_attempts) - int(first_release_2_at),
        hygiene=hygiene.summary(),
    )
