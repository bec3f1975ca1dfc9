"""Claims on a cluster while one master is down, or short of replicas: the queues of the other
masters keep flowing, and the claim does not fail for the one that cannot answer (which is asked
again, with the same request, by the next claim)."""

from __future__ import annotations

import pytest
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry
from test_durable_shortfall import stopped

from alsek.core.broker import Broker, ClaimSource
from alsek.core.message import Message
from alsek.storage.backends import RedisBackend
from alsek.testing import ClusterServers

pytestmark = pytest.mark.slow

QUEUES = [f"spread-{index}" for index in range(6)]
OWNER = "lock:test-host:process:1:lease:claims"


def test_a_claim_passes_over_the_queues_of_a_dead_master(cluster_servers: ClusterServers) -> None:
    # No retries: the claim meets the dead master at once, long before its replica takes over.
    client = redis.cluster.RedisCluster(
        startup_nodes=cluster_servers.startup_nodes,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )
    broker = Broker(RedisBackend(client, namespace="claims-dead"))
    broker.submit_many([Message("work", queue=queue, args=(queue,)) for queue in QUEUES])
    dead = cluster_servers.node_for(f"{{{QUEUES[0]}}}")
    on_dead = {q for q in QUEUES if cluster_servers.node_for(f"{{{q}}}").port == dead.port}
    dead.kill()  # no failover yet: its replica takes over only after the node timeout
    claimed = broker.claim([ClaimSource(queue) for queue in QUEUES], 10, OWNER).messages
    served = {message.args[0] for message in claimed}
    assert served and not served & on_dead  # some queues of the live masters, none of the dead
    broker.backend.conn.close()


def test_a_queue_passed_over_for_its_replicas_is_asked_again_with_the_same_request(
    cluster_servers: ClusterServers,
) -> None:
    """A claim over several queues passes over one whose claim fell short of replicas; that
    claim leased its message on the master all the same. The owner's next claim re-sends the
    same request there, and gets that message: it is not left leased to nobody."""
    broker = Broker(
        RedisBackend(cluster_servers.client(), namespace="claims-short"),
        wait_replicas=1,
        wait_timeout_ms=50,
    )
    broker.submit_many([Message("work", queue=queue, args=(queue,)) for queue in QUEUES])
    master = cluster_servers.node_for(f"{{{QUEUES[0]}}}")
    short = {q for q in QUEUES if cluster_servers.node_for(f"{{{q}}}").port == master.port}
    sources = [ClaimSource(queue) for queue in QUEUES]
    with stopped(cluster_servers.replicas_of(master)[0]):
        first = broker.claim(sources, len(QUEUES), OWNER, request_id="first").messages
    assert {message.args[0] for message in first} == set(QUEUES) - short
    second = broker.claim(sources, len(QUEUES), OWNER, request_id="second").messages
    assert {message.args[0] for message in second} == short
    assert all(m.linked_lock and m.linked_lock["owner_id"].endswith(":1") for m in second)
    broker.backend.conn.close()
