"""Sentinels: they name the master, and after it is killed they promote its replica, which
``Sentinel.master_for`` follows."""

from __future__ import annotations

import pytest
import redis.sentinel

from alsek.testing import SentinelServers


def test_sentinels_name_the_master_for_redis_py(sentinel_servers: SentinelServers) -> None:
    sentinel = redis.sentinel.Sentinel(sentinel_servers.sentinel_addresses, socket_timeout=5)
    master = sentinel.master_for(sentinel_servers.master_name, decode_responses=True)
    try:
        assert sentinel.discover_master(sentinel_servers.master_name) == (
            sentinel_servers.master.address
        )
        assert master.set("harness-sentinel", "here")
        assert master.info("replication")["role"] == "master"
    finally:
        master.close()


@pytest.mark.slow
def test_sentinel_failover_promotes_the_replica_and_master_for_follows(
    sentinel_servers: SentinelServers,
) -> None:
    name = sentinel_servers.master_name
    sentinel = redis.sentinel.Sentinel(sentinel_servers.sentinel_addresses, socket_timeout=5)
    master = sentinel.master_for(name, decode_responses=True)
    try:
        old_master = sentinel_servers.master
        master.set("harness-sentinel-failover", "before")
        sentinel_servers.wait_until_replicated()

        failover = sentinel_servers.kill_master()

        assert failover.killed is old_master and not old_master.running
        assert failover.promoted is not old_master
        assert sentinel.discover_master(name) == failover.promoted.address
        assert master.get("harness-sentinel-failover") == "before"
        master.set("harness-sentinel-failover", "after")
        assert failover.promoted.command("GET", "harness-sentinel-failover") == "after"

        sentinel_servers.restart_as_replica(failover.killed)
        assert old_master.info("replication")["role"] == "slave"
        assert sentinel_servers.master is failover.promoted
    finally:
        master.close()
