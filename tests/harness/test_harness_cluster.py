"""A real cluster: clients see every master, a killed master's replica takes over while the
client carries on, slots move with their keys under a reading client, sharded pub/sub works."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio.cluster
from polling import eventually

from alsek.testing import ClusterServers

KEYS = [f"harness-key-{index}" for index in range(60)]


def _keys_by_master(cluster: ClusterServers) -> dict[int, list[str]]:
    by_port: dict[int, list[str]] = {}
    for key in KEYS:
        by_port.setdefault(cluster.node_for(key).port, []).append(key)
    return by_port


def test_cluster_client_reaches_keys_on_every_master(cluster_servers: ClusterServers) -> None:
    client = cluster_servers.client()
    try:
        for key in KEYS:
            client.set(key, key.upper())
        assert [client.get(key) for key in KEYS] == [key.upper() for key in KEYS]
    finally:
        client.close()
    masters = {master.port for master in cluster_servers.masters}
    assert len(masters) == 3
    assert set(_keys_by_master(cluster_servers)) == masters
    for master in cluster_servers.masters:
        assert len(cluster_servers.replicas_of(master)) == 1
        assert int(master.command("DBSIZE")) > 0  # the keys really are spread over the masters


async def test_asyncio_cluster_client_uses_the_startup_nodes(
    cluster_servers: ClusterServers,
) -> None:
    client = redis.asyncio.cluster.RedisCluster(
        startup_nodes=cluster_servers.async_startup_nodes, decode_responses=True
    )
    try:
        for key in KEYS:
            await client.set(key, f"async-{key}")
        assert [await client.get(key) for key in KEYS] == [f"async-{key}" for key in KEYS]
        assert len(client.get_primaries()) == 3
    finally:
        await client.aclose()


def test_cluster_url_discovers_every_node(cluster_servers: ClusterServers) -> None:
    client = redis.cluster.RedisCluster.from_url(cluster_servers.url, decode_responses=True)
    try:
        assert {node.port for node in client.get_nodes()} == {
            server.port for server in cluster_servers.servers
        }
    finally:
        client.close()


@pytest.mark.slow
def test_killed_master_is_replaced_by_its_replica_and_the_client_carries_on(
    cluster_servers: ClusterServers,
) -> None:
    key = "harness-failover"
    client = cluster_servers.client()
    try:
        client.set(key, "before")
        old_master = cluster_servers.node_for(key)
        (replica,) = cluster_servers.replicas_of(old_master)
        cluster_servers.wait_until_replicated()

        failover = cluster_servers.kill_master(for_key=key)

        assert failover.killed is old_master and not old_master.running
        assert failover.promoted is replica
        assert cluster_servers.node_for(key) is replica
        assert client.get(key) == "before"  # nothing acknowledged and replicated was lost
        client.set(key, "after")
        cluster_servers.restart_as_replica(failover.killed)
        assert cluster_servers.replicas_of(replica) == [old_master]
        assert cluster_servers.node_for(key) is replica
        assert client.get(key) == "after"
    finally:
        client.close()


def test_migrate_slot_moves_keys_while_a_client_reads_them(
    cluster_servers: ClusterServers,
) -> None:
    keys = [f"{{harness-migrate}}:{index}" for index in range(120)]
    slot = cluster_servers.slot_for(keys[0])
    client = cluster_servers.client()
    reads_during_migration: list[int] = []

    def read_everything(moved_so_far: int) -> None:
        # Some keys are on the target, the rest still on the source: ASK redirections.
        assert [client.get(key) for key in keys] == keys
        reads_during_migration.append(moved_so_far)

    try:
        for key in keys:
            client.set(key, key)
        source = cluster_servers.node_for(slot=slot)
        target = next(m for m in cluster_servers.masters if m is not source)

        moved = cluster_servers.migrate_slot(slot, target, batch_size=25, on_batch=read_everything)

        assert moved == len(keys)
        assert reads_during_migration == [25, 50, 75, 100, 120]
        assert cluster_servers.node_for(slot=slot) is target
        assert source.command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        assert target.command("CLUSTER", "COUNTKEYSINSLOT", slot) == len(keys)
        assert [client.get(key) for key in keys] == keys
    finally:
        client.close()


def test_sharded_pubsub_delivers_on_the_valkey_cluster(cluster_servers: ClusterServers) -> None:
    channel = "harness-shard-channel"
    client = cluster_servers.client()
    pubsub = client.pubsub()
    try:
        pubsub.ssubscribe(channel)
        eventually(
            lambda: pubsub.get_sharded_message(timeout=0.1), what="the ssubscribe confirmation"
        )
        assert client.spublish(channel, "hello") == 1
        message = eventually(
            lambda: pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=0.1),
            what="the published message",
        )
        assert message["channel"] == channel and message["data"] == "hello"
    finally:
        pubsub.close()
        client.close()


@pytest.mark.slow
def test_redis_6_2_binary_runs_a_cluster_that_fails_over(
    make_cluster_servers: Callable[..., ClusterServers],
) -> None:
    cluster = make_cluster_servers(flavour="redis")
    assert str(cluster.servers[0].info("server")["redis_version"]).startswith("6.2.")
    client = cluster.client()
    try:
        for key in KEYS:
            client.set(key, key)
        assert len(_keys_by_master(cluster)) == 3
        cluster.wait_until_replicated()
        failover = cluster.kill_master(for_key=KEYS[0])
        assert cluster.node_for(KEYS[0]) is failover.promoted
        assert [client.get(key) for key in KEYS] == KEYS
    finally:
        client.close()
