"""Backends on a Redis Cluster and on Sentinel: the URLs and clients they accept, what they
refuse, and how another process rebuilds them (new connections, same servers)."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from alsek.storage.backends.clients import client_kind
from alsek.storage.backends.helpers import rebuild_backend
from alsek.testing import ClusterServers, SentinelServers

pytestmark = pytest.mark.slow


def cluster_url(cluster: ClusterServers, nodes: int = 1) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in cluster.addresses[:nodes])
    return f"redis+cluster://{hosts}"


def sentinel_url(servers: SentinelServers) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in servers.sentinel_addresses)
    return f"redis+sentinel://{hosts}/{servers.master_name}"


def test_a_cluster_url_builds_a_decoding_cluster_client(cluster_servers: ClusterServers) -> None:
    backend = RedisBackend(cluster_url(cluster_servers), namespace="urls")
    try:
        assert isinstance(backend.conn, redis.cluster.RedisCluster)
        assert backend.is_cluster
        backend.set("greeting", "hello")
        assert backend.get("greeting") == "hello"
        assert len(backend.conn.get_primaries()) == 3
    finally:
        backend.clear_namespace()
        backend.conn.close()


async def test_a_cluster_url_builds_an_asyncio_cluster_client(
    cluster_servers: ClusterServers,
) -> None:
    backend = AsyncRedisBackend(cluster_url(cluster_servers, nodes=3), namespace="urls")
    try:
        assert isinstance(backend.conn, redis.asyncio.cluster.RedisCluster)
        await backend.set("greeting", "hello")
        assert await backend.get("greeting") == "hello"
        assert {node.port for node in backend.conn.get_nodes()} >= {
            port for _, port in cluster_servers.addresses[:3]
        }
    finally:
        await backend.clear_namespace()
        await backend.conn.aclose()


def test_a_cluster_client_is_accepted_as_given(cluster_servers: ClusterServers) -> None:
    client = cluster_servers.client()
    backend = RedisBackend(client, namespace="given")
    assert backend.conn is client
    assert client_kind(client) == "cluster"
    client.close()


def test_a_cluster_client_that_does_not_decode_is_refused(
    cluster_servers: ClusterServers,
) -> None:
    client = cluster_servers.client(decode_responses=False)
    with pytest.raises(ValueError, match="decode_responses=True"):
        RedisBackend(client)
    client.close()


def test_a_blocking_cluster_client_is_refused_by_the_asyncio_backend(
    cluster_servers: ClusterServers,
) -> None:
    client = cluster_servers.client()
    with pytest.raises(ValueError, match=r"redis\.asyncio\.cluster\.RedisCluster"):
        AsyncRedisBackend(client)
    client.close()


def test_an_unknown_url_scheme_is_refused_with_the_schemes_alsek_knows() -> None:
    with pytest.raises(ValueError, match=r"redis\+cluster://.*redis\+sentinel://"):
        RedisBackend("memcached://localhost:11211")


def test_a_sentinel_url_needs_the_service_name() -> None:
    with pytest.raises(ValueError, match="names the service"):
        RedisBackend("redis+sentinel://localhost:26379")


def test_a_rebuilt_cluster_backend_has_its_own_client_on_the_same_cluster(
    cluster_servers: ClusterServers,
) -> None:
    backend = RedisBackend(cluster_servers.client(), namespace="rebuilt")
    backend.set("written-before", 1)
    rebuilt: Any = rebuild_backend(backend.encode())
    try:
        assert isinstance(rebuilt.conn, redis.cluster.RedisCluster)
        assert rebuilt.conn is not backend.conn
        assert rebuilt.get("written-before") == 1
        assert rebuilt.namespace == "rebuilt"
    finally:
        backend.clear_namespace()
        backend.conn.close()
        rebuilt.conn.close()


def test_a_sentinel_url_follows_the_master(sentinel_servers: SentinelServers) -> None:
    backend = RedisBackend(sentinel_url(sentinel_servers), namespace="sentinel-url")
    try:
        assert client_kind(backend.conn) == "sentinel"
        backend.set("where", "master")
        assert sentinel_servers.master.client().get("sentinel-url:where") == '"master"'
    finally:
        backend.clear_namespace()
        backend.conn.close()


async def test_an_asyncio_sentinel_client_is_accepted(sentinel_servers: SentinelServers) -> None:
    sentinel = AsyncSentinel(sentinel_servers.sentinel_addresses)
    client = sentinel.master_for(sentinel_servers.master_name, decode_responses=True)
    backend = AsyncRedisBackend(client, namespace="sentinel-async")
    try:
        await backend.set("where", "master")
        assert await backend.get("where") == "master"
        rebuilt: Any = rebuild_backend(backend.encode())
        assert client_kind(rebuilt.conn) == "sentinel"
        assert await rebuilt.get("where") == "master"
        await rebuilt.conn.aclose()
    finally:
        await backend.clear_namespace()
        await backend.conn.aclose()


def _read_in_child(encoded: bytes, results: Any) -> None:
    backend = rebuild_backend(encoded)
    results.put((client_kind(backend.conn), backend.get("written-by-parent")))


def test_a_forked_child_rebuilds_a_sentinel_backend_with_clients_of_its_own(
    sentinel_servers: SentinelServers,
) -> None:
    """redis-py's Sentinel-managed pool must not cross a fork (it deadlocks there): the child
    rebuilds its client from the recipe, asking the sentinels again."""
    sentinel = Sentinel(sentinel_servers.sentinel_addresses)
    backend = RedisBackend(
        sentinel.master_for(sentinel_servers.master_name, decode_responses=True),
        namespace="sentinel-fork",
    )
    backend.set("written-by-parent", "yes")  # the parent's pool holds a live connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_read_in_child, args=(backend.encode(), results))
    child.start()
    try:
        assert results.get(timeout=20) == ("sentinel", "yes")
    finally:
        child.join(10)
        backend.clear_namespace()
        backend.conn.close()
    assert child.exitcode == 0
