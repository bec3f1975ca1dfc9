"""Failover under load with Sentinel (1 master, 1 replica, 3 sentinels): the master is
SIGKILLed, the sentinels promote the replica, and the pools (thread pools whose process groups
rebuild their Sentinel clients after the fork) follow without a restart."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from failover import MESSAGES, FailoverRun, report
from failwork import settings

from alsek.testing import SentinelServers

pytestmark = pytest.mark.slow


def sentinel_url(servers: SentinelServers) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in servers.sentinel_addresses)
    return f"redis+sentinel://{hosts}/{servers.master_name}"


def kill_the_master(servers: SentinelServers) -> Callable[[], float]:
    def fault() -> float:
        failover = servers.kill_master()
        servers.restart_as_replica(failover.killed)  # as an operator would
        return failover.seconds

    return fault


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_a_killed_master_loses_nothing_acknowledged_with_wait_replicas(
    sentinel_servers: SentinelServers,
    failover_run: Callable[[str, int], FailoverRun],
    wait_replicas: int,
) -> None:
    run = failover_run(sentinel_url(sentinel_servers), wait_replicas)
    fault = kill_the_master(sentinel_servers)
    figures = run.run("sentinel: master killed", fault, settings.QUEUES[0])
    report(figures)
    assert figures.messages == MESSAGES
    assert figures.resume_seconds is not None, run.details()
    if wait_replicas:
        assert figures.lost == 0, run.details()
        assert figures.duplicated_after_fault == 0
        assert figures.duplicated <= len(FailoverRun.KINDS) * FailoverRun.CAPACITY
