"""TLS through the proxy with a throwaway CA (sync and asyncio redis-py), and ACL users."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import trustme
from redis.backoff import NoBackoff
from redis.retry import Retry

from alsek.testing import ClusterServers, RedisServer, TlsProxy, acl_user_url, add_acl_user

NO_RETRY = Retry(NoBackoff(), 0)


def test_rediss_url_works_through_the_proxy(
    make_redis_server: Callable[..., RedisServer], make_tls_proxy: Callable[[int], TlsProxy]
) -> None:
    server = make_redis_server(flavour="valkey")
    proxy = make_tls_proxy(server.port)
    assert proxy.url.startswith(f"rediss://127.0.0.1:{proxy.port}/0?ssl_ca_certs=")
    client = redis.Redis.from_url(proxy.url, decode_responses=True)
    try:
        client.set("harness-tls", "secret")
        assert client.get("harness-tls") == "secret"
        assert server.command("GET", "harness-tls") == "secret"  # the proxy relays to it
        assert client.connection_pool.connection_class is redis.SSLConnection
    finally:
        client.close()


async def test_asyncio_rediss_url_works_through_the_proxy(
    make_redis_server: Callable[..., RedisServer], make_tls_proxy: Callable[[int], TlsProxy]
) -> None:
    server = make_redis_server()
    proxy = make_tls_proxy(server.port)
    client = redis.asyncio.Redis.from_url(proxy.url, decode_responses=True)
    try:
        await client.set("harness-tls-async", "secret")
        assert await client.get("harness-tls-async") == "secret"
    finally:
        await client.aclose()


def test_plain_connection_to_the_tls_port_fails(
    make_redis_server: Callable[..., RedisServer], make_tls_proxy: Callable[[int], TlsProxy]
) -> None:
    proxy = make_tls_proxy(make_redis_server().port)
    client = redis.Redis(port=proxy.port, retry=NO_RETRY, socket_timeout=5)
    try:
        with pytest.raises(redis.ConnectionError):
            client.ping()
    finally:
        client.close()


def test_tls_without_trusting_the_ca_fails(
    make_redis_server: Callable[..., RedisServer], make_tls_proxy: Callable[[int], TlsProxy]
) -> None:
    proxy = make_tls_proxy(make_redis_server().port)
    client = redis.Redis(port=proxy.port, ssl=True, retry=NO_RETRY, socket_timeout=5)
    try:
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            client.ping()
    finally:
        client.close()


def test_acl_user_url_logs_in_and_a_wrong_password_fails(
    make_redis_server: Callable[..., RedisServer], make_tls_proxy: Callable[[int], TlsProxy]
) -> None:
    server = make_redis_server(flavour="valkey")
    add_acl_user([server], "harness-user", "p@ss word")
    proxy = make_tls_proxy(server.port)
    for url in (server.url, proxy.url):
        good = redis.Redis.from_url(
            acl_user_url(url, "harness-user", "p@ss word"), decode_responses=True
        )
        bad = redis.Redis.from_url(acl_user_url(url, "harness-user", "wrong"), retry=NO_RETRY)
        try:
            assert good.acl_whoami() == "harness-user"
            with pytest.raises(redis.AuthenticationError):
                bad.ping()
        finally:
            good.close()
            bad.close()


def test_acl_user_works_on_every_cluster_node(cluster_servers: ClusterServers) -> None:
    add_acl_user(cluster_servers.servers, "harness-cluster-user", "secret")
    url = acl_user_url(cluster_servers.url, "harness-cluster-user", "secret")
    client = redis.cluster.RedisCluster.from_url(url, decode_responses=True)
    try:
        for index in range(30):
            client.set(f"harness-acl-{index}", index)
        targets = redis.cluster.RedisCluster.ALL_NODES
        assert set(client.acl_whoami(target_nodes=targets).values()) == {"harness-cluster-user"}
    finally:
        client.close()


@pytest.mark.slow
async def test_tls_cluster_names_only_tls_nodes_to_sync_and_asyncio_clients(
    make_cluster_servers: Callable[..., ClusterServers], certificate_authority: trustme.CA
) -> None:
    cluster = make_cluster_servers(tls=True, certificate_authority=certificate_authority)
    keys = [f"harness-tls-cluster-{index}" for index in range(30)]
    client = redis.cluster.RedisCluster.from_url(cluster.tls_url, decode_responses=True)
    try:
        for key in keys:
            client.set(key, key)
        assert len({cluster.node_for(key).port for key in keys}) == 3
        nodes = client.get_nodes()
        assert {node.host for node in nodes} == {"127.0.0.2"}
        assert all(node.redis_connection is not None for node in nodes)
        pools = [node.redis_connection.connection_pool for node in nodes]  # type: ignore[union-attr]
        assert {pool.connection_class for pool in pools} == {redis.SSLConnection}
    finally:
        client.close()
    async_client = redis.asyncio.cluster.RedisCluster.from_url(
        cluster.tls_url, decode_responses=True
    )
    try:
        assert [await async_client.get(key) for key in keys] == keys
    finally:
        await async_client.aclose()
    host, port = cluster.tls_proxies[0].address
    plain = redis.Redis(host=host, port=port, retry=NO_RETRY, socket_timeout=5)
    try:
        with pytest.raises(redis.ConnectionError):
            plain.ping()
    finally:
        plain.close()


def test_tls_cluster_needs_the_valkey_flavour() -> None:
    with pytest.raises(ValueError, match="valkey"):
        ClusterServers(flavour="redis", tls=True)
