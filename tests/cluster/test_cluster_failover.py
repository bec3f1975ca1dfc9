"""Failover under load on the 3+3 cluster: a busy queue's master is SIGKILLed, its replica
takes over, and the pools carry on by themselves."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from failover import (
    MESSAGES,
    FailoverRun,
    check_master_killed,
    keep_server_logs,
    kill_and_restart,
    report,
)
from failwork import settings

from alsek.testing import ClusterServers
from tests.conftest import cluster_url

pytestmark = pytest.mark.slow

BUSY = settings.QUEUES[0]


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_a_killed_master_loses_nothing_acknowledged_with_wait_replicas(
    cluster_servers: ClusterServers,
    failover_run: Callable[[str, int], FailoverRun],
    wait_replicas: int,
) -> None:
    run = failover_run(cluster_url(cluster_servers), wait_replicas)
    fault = kill_and_restart(cluster_servers, for_key=f"{{{BUSY}}}")
    try:
        figures = run.run("cluster: master killed", fault, BUSY, dead_queues=(BUSY,))
    finally:
        keep_server_logs(cluster_servers, run.log_dir)
    check_master_killed(run, figures, wait_replicas)


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
    make_cluster_servers: Callable[..., ClusterServers],
    failover_run: Callable[[str, int], FailoverRun],
) -> None:
    # A cluster of its own: a migration stopped by BUSYKEY leaves its slot half-moved.
    cluster_servers = make_cluster_servers(replicas_per_master=0)
    run = failover_run(cluster_url(cluster_servers), 0)
    fault = move_the_busy_slot(cluster_servers, run)
    figures = run.run("cluster: busy slot migrated", fault, BUSY)
    report(figures)
    assert figures.messages == MESSAGES
    assert figures.lost == 0, run.details()
    assert figures.resume_seconds is not None, run.details()
