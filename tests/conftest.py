"""Shared fixtures: throwaway real servers per test session, one namespace per test.

``redis_url`` is a Redis 6.2 server by default. Suites that must hold on every server alsek
supports run once per *server kind* (``SERVER_KINDS``): Redis 6.2, Valkey 8.1, and a Valkey
cluster of 3 masters and 3 replicas (``redis+cluster://`` URL). They opt in as a whole in
``SERVER_SUITES``, or module by module with ``pytestmark = pytest.mark.servers(...)``.
``ALSEK_TEST_SERVERS=redis,cluster`` limits the kinds (say, for a quick local run).

Set ``ALSEK_TEST_REDIS_URL`` to run the default kind against an existing server instead; every
test still works inside its own namespace and deletes its keys afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from alsek.storage.backends.clients import client_from_url
from alsek.testing import ClusterServers, RedisServer

pytest_plugins = ["harness.fixtures"]

#: Every server kind, in the order tests run on them.
SERVER_KINDS = ("redis", "valkey", "cluster")
#: Suites (directories under tests/) that run on every server kind.
SERVER_SUITES = {"engine": SERVER_KINDS, "status": SERVER_KINDS, "results": SERVER_KINDS}
_HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "servers(*kinds): run the test once per server kind (redis, valkey, cluster) through "
        "the redis_url fixture",
    )


def _wanted_kinds(kinds: tuple[str, ...]) -> list[str]:
    limit = os.environ.get("ALSEK_TEST_SERVERS")
    if not limit:
        return list(kinds)
    allowed = {kind.strip() for kind in limit.split(",")}
    unknown = allowed - set(SERVER_KINDS)
    if unknown:
        raise pytest.UsageError(f"ALSEK_TEST_SERVERS names unknown kinds {sorted(unknown)}")
    return [kind for kind in kinds if kind in allowed]


def _server_kinds(metafunc: pytest.Metafunc) -> tuple[str, ...] | None:
    marker = metafunc.definition.get_closest_marker("servers")
    if marker is not None:
        return tuple(marker.args) or SERVER_KINDS
    relative = Path(str(metafunc.definition.fspath)).resolve().relative_to(_HERE)
    return SERVER_SUITES.get(relative.parts[0]) if len(relative.parts) > 1 else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_url" not in metafunc.fixturenames:
        return
    kinds = _server_kinds(metafunc)
    if kinds is not None:
        metafunc.parametrize("redis_url", _wanted_kinds(kinds), indirect=True, scope="function")


@pytest.fixture(scope="session")
def _redis_server_url() -> Iterator[str]:
    configured = os.environ.get("ALSEK_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture(scope="session")
def _valkey_server_url() -> Iterator[str]:
    with RedisServer(flavour="valkey") as server:
        yield server.url


def cluster_url(cluster: ClusterServers) -> str:
    """The ``redis+cluster://`` URL of ``cluster``, naming every node."""
    return "redis+cluster://" + ",".join(f"{host}:{port}" for host, port in cluster.addresses)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of the server the test runs against (a Redis 6.2 server unless parametrized)."""
    kind = getattr(request, "param", "redis")
    if kind == "redis":
        return str(request.getfixturevalue("_redis_server_url"))
    if kind == "valkey":
        return str(request.getfixturevalue("_valkey_server_url"))
    if kind == "cluster":
        return cluster_url(request.getfixturevalue("cluster_servers"))
    raise ValueError(f"Unknown server kind {kind!r}")


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a cluster."""
    return url.startswith(("redis+cluster://", "rediss+cluster://"))


def url_client(url: str) -> Any:
    """A blocking client (``decode_responses=True``) for any URL the suite uses."""
    return client_from_url(url, asyncio=False)


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A namespace unique to this test; every key containing it is deleted afterwards."""
    name = f"alsek-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = url_client(redis_url)
    try:
        for key in list(client.scan_iter(match=f"*{name}*", count=1000)):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A sync client with ``decode_responses=True``, as alsek expects (a cluster client on a
    cluster)."""
    client = url_client(redis_url)
    yield client
    client.close()


@pytest.fixture
async def async_redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client with ``decode_responses=True``."""
    client = client_from_url(redis_url, asyncio=True)
    yield client
    await client.aclose()
