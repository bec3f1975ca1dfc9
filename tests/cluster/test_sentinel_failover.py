"""Failover under load with Sentinel (1 master, 1 replica, 3 sentinels): the master is
SIGKILLed, the sentinels promote the replica, and the pools (thread pools whose process groups
rebuild their Sentinel clients after the fork) follow without a restart."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from failover import FailoverRun, check_master_killed, kill_and_restart
from failwork import settings

from alsek.testing import SentinelServers

pytestmark = pytest.mark.slow


def sentinel_url(servers: SentinelServers) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in servers.sentinel_addresses)
    return f"redis+sentinel://{hosts}/{servers.master_name}"


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_a_killed_master_loses_nothing_acknowledged_with_wait_replicas(
    sentinel_servers: SentinelServers,
    failover_run: Callable[[str, int], FailoverRun],
    wait_replicas: int,
) -> None:
    run = failover_run(sentinel_url(sentinel_servers), wait_replicas)
    fault = kill_and_restart(sentinel_servers)
    # Every queue lives on the one master.
    figures = run.run(
        "sentinel: master killed", fault, settings.QUEUES[0], dead_queues=settings.QUEUES
    )
    check_master_killed(run, figures, wait_replicas)
