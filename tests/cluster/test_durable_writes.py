"""``Broker(wait_replicas=N)``: writes that decide a message's fate return once N replicas have
them (Redis WAIT in the same round trip), on a single server and on every node of a cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from alsek.core.broker import AsyncBroker, Broker, ClaimSource
from alsek.core.message import Message
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from alsek.testing import ClusterServers, RedisServer
from alsek.testing.server import replicas_caught_up
from tests.conftest import cluster_url

pytestmark = pytest.mark.slow

OWNER = "lock:test-host:process:1:lease:durable"
#: How long the replica is kept from applying writes (it cannot acknowledge them meanwhile).
STALL_SECONDS = 1.5
#: WAIT's limit in these tests: far beyond the stall, so that a slow machine changes nothing.
PATIENT_MS = 30_000


@pytest.fixture
def primary_and_replica(
    replicated: Callable[..., tuple[RedisServer, RedisServer]],
) -> tuple[RedisServer, RedisServer]:
    return replicated()


def _stall(replica: RedisServer) -> threading.Thread:
    """Keep the replica busy (it applies and acknowledges nothing) for ``STALL_SECONDS``."""
    thread = threading.Thread(target=replica.command, args=("DEBUG", "SLEEP", STALL_SECONDS))
    thread.start()
    time.sleep(0.05)  # the DEBUG SLEEP has started (it blocks the replica, not this test)
    return thread


def _acknowledged(primary: RedisServer) -> int:
    """The replication offset the primary's replica last acknowledged."""
    return int(primary.info("replication")["slave0"]["offset"])


def _caught_up(primary: RedisServer, replica: RedisServer) -> int:
    """Wait until the replica acknowledged everything; the offset it acknowledged."""
    deadline = time.monotonic() + 10
    while not replicas_caught_up(primary, [replica]):
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.02)
    return _acknowledged(primary)


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_a_submit_returns_once_the_replica_has_the_message(
    primary_and_replica: tuple[RedisServer, RedisServer], wait_replicas: int
) -> None:
    primary, replica = primary_and_replica
    broker = Broker(
        RedisBackend(primary.url, namespace="durable"),
        wait_replicas=wait_replicas,
        wait_timeout_ms=PATIENT_MS,
    )
    before = _caught_up(primary, replica)
    stall = _stall(replica)
    broker.submit(Message("work", queue="q"))
    replicated = _acknowledged(primary) > before
    stall.join()
    assert replicated is bool(wait_replicas)  # without WAIT it returned before the replica had it
    broker.backend.conn.close()


async def test_an_async_ack_returns_once_the_replica_has_it(
    primary_and_replica: tuple[RedisServer, RedisServer],
) -> None:
    primary, replica = primary_and_replica
    broker = AsyncBroker(
        AsyncRedisBackend(primary.url, namespace="durable"),
        wait_replicas=1,
        wait_timeout_ms=PATIENT_MS,
    )
    message = Message("work", queue="q")
    await broker.submit(message)
    [claimed] = (await broker.claim([ClaimSource("q")], 1, OWNER)).messages
    before = _caught_up(primary, replica)
    stall = _stall(replica)
    assert await broker.ack(claimed)
    replicated = _acknowledged(primary) > before
    stall.join()
    assert replicated
    await broker.backend.conn.aclose()


def test_wait_replicas_must_be_a_count() -> None:
    with pytest.raises(ValueError, match="wait_replicas must be an int >= 0"):
        Broker(RedisBackend("redis://localhost:1"), wait_replicas=-1)
    with pytest.raises(ValueError, match="wait_timeout_ms must be an int >= 1"):
        Broker(RedisBackend("redis://localhost:1"), wait_replicas=1, wait_timeout_ms=0)


def _waits(server: RedisServer) -> int:
    stats: dict[str, Any] = server.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


def test_on_a_cluster_every_master_written_waits_for_its_replica(
    cluster_servers: ClusterServers,
) -> None:
    backend = RedisBackend(cluster_url(cluster_servers), namespace="durable-cluster")
    broker = Broker(backend, wait_replicas=1)
    queues = [f"spread-{index}" for index in range(6)]
    masters = {cluster_servers.node_for(f"{{{queue}}}").port for queue in queues}
    assert len(masters) == 3
    before = {master.port: _waits(master) for master in cluster_servers.masters}
    messages = [Message("work", queue=queue) for queue in queues]
    broker.submit_many(messages)
    after = {master.port: _waits(master) for master in cluster_servers.masters}
    assert all(after[port] > before[port] for port in masters), (before, after)
    backend.clear_namespace()
    backend.conn.close()
