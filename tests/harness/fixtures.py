"""Pytest fixtures for real servers beyond the suite's one Redis: Valkey, a cluster, sentinels,
TLS and ACL users. ``tests/conftest.py`` registers this module as a plugin.

The cluster and the sentinel group are started once per session (2 s each) and handed to every
test in working order: a test that killed a node and did not bring it back has it restarted
before the next test starts. Factories (``make_*``) start private servers, stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from alsek.testing import ClusterServers, RedisServer, SentinelServers, TlsProxy
from alsek.testing.tls import new_certificate_authority


@pytest.fixture
def make_redis_server() -> Iterator[Callable[..., RedisServer]]:
    """``make_redis_server(flavour="valkey", config_lines=...)``: a started private server."""
    started: list[RedisServer] = []

    def make(**options: Any) -> RedisServer:
        server = RedisServer(**options)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def _session_cluster_servers() -> Iterator[ClusterServers]:
    with ClusterServers() as cluster:
        yield cluster


@pytest.fixture
def cluster_servers(_session_cluster_servers: ClusterServers) -> ClusterServers:
    """The session's Valkey cluster (3 masters, 3 replicas), every node up and settled.

    Shared: tests may kill nodes and move slots, but must not assume which node serves what.
    """
    _session_cluster_servers.restore()
    return _session_cluster_servers


@pytest.fixture
def make_cluster_servers() -> Iterator[Callable[..., ClusterServers]]:
    """``make_cluster_servers(flavour="redis", masters=3, ...)``: a started private cluster."""
    started: list[ClusterServers] = []

    def make(**options: Any) -> ClusterServers:
        cluster = ClusterServers(**options)
        started.append(cluster)
        return cluster.start()

    yield make
    for cluster in started:
        cluster.stop()


@pytest.fixture(scope="session")
def _session_sentinel_servers() -> Iterator[SentinelServers]:
    with SentinelServers() as servers:
        yield servers


@pytest.fixture
def sentinel_servers(_session_sentinel_servers: SentinelServers) -> SentinelServers:
    """The session's Valkey master, replica and 3 sentinels, all up and ready to fail over.

    Shared: which server is the master changes with failovers; ask ``sentinel_servers.master``.
    """
    _session_sentinel_servers.restore()
    return _session_sentinel_servers


@pytest.fixture(scope="session")
def certificate_authority() -> trustme.CA:
    """One throwaway CA for the session's TLS proxies."""
    return new_certificate_authority()


@pytest.fixture
def make_tls_proxy(certificate_authority: trustme.CA) -> Iterator[Callable[[int], TlsProxy]]:
    """``make_tls_proxy(port)``: a started TLS proxy in front of the server on ``port``."""
    started: list[TlsProxy] = []

    def make(target_port: int) -> TlsProxy:
        proxy = TlsProxy(target_port, certificate_authority=certificate_authority)
        started.append(proxy)
        return proxy.start()

    yield make
    for proxy in started:
        proxy.stop()
