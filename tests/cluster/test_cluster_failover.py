"""Failover under load on the 3+3 cluster: a busy queue's master is SIGKILLed, its replica
takes over, and the pools carry on by themselves."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from failover import MESSAGES, FailoverRun, report
from failwork import settings

from alsek.testing import ClusterServers
from tests.conftest import cluster_url

pytestmark = pytest.mark.slow

BUSY = settings.QUEUES[0]


def kill_the_busy_master(cluster: ClusterServers) -> Callable[[], float]:
    def fault() -> float:
        failover = cluster.kill_master(for_key=f"{{{BUSY}}}")
        cluster.restart_as_replica(failover.killed)  # as an operator would
        return failover.seconds

    return fault


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_a_killed_master_loses_nothing_acknowledged_with_wait_replicas(
    cluster_servers: ClusterServers,
    failover_run: Callable[[str, int], FailoverRun],
    wait_replicas: int,
) -> None:
    run = failover_run(cluster_url(cluster_servers), wait_replicas)
    figures = run.run("cluster: master killed", kill_the_busy_master(cluster_servers), BUSY)
    report(figures)
    assert figures.messages == MESSAGES
    assert figures.resume_seconds is not None, run.details()
    if wait_replicas:
        assert figures.lost == 0, run.details()
        assert figures.duplicated_after_fault == 0
        assert figures.duplicated <= len(FailoverRun.KINDS) * FailoverRun.CAPACITY


def move_the_busy_slot(cluster: ClusterServers, run: FailoverRun) -> Callable[[], float]:
    """Migrate the busy queue's slot to another master, 10 keys at a time, letting the pools
    complete a few more messages between batches (so they work on a slot half-way through)."""

    def between_batches(moved: int) -> None:
        run.wait_for_progress(5, patience_seconds=0.2)

    def fault() -> float:
        slot = cluster.slot_for(f"{{{BUSY}}}")
        source = cluster.node_for(slot=slot)
        target = next(master for master in cluster.masters if master.port != source.port)
        started = time.monotonic()
        cluster.migrate_slot(slot, target, batch_size=10, on_batch=between_batches)
        return time.monotonic() - started

    return fault


def test_resharding_a_busy_queue_loses_nothing_and_leaves_nothing_stuck(
    cluster_servers: ClusterServers, failover_run: Callable[[str, int], FailoverRun]
) -> None:
    run = failover_run(cluster_url(cluster_servers), 0)
    fault = move_the_busy_slot(cluster_servers, run)
    figures = run.run("cluster: busy slot migrated", fault, BUSY)
    report(figures)
    assert figures.messages == MESSAGES
    assert figures.lost == 0, run.details()
    assert figures.resume_seconds is not None, run.details()
