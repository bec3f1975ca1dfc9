"""Claims on a cluster while one master is down: the queues of the other masters keep flowing,
and the claim does not fail for the one that cannot answer."""

from __future__ import annotations

import pytest
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

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
