"""Failover under load with Sentinel (1 master, 1 replica, 3 sentinels): the master is
SIGKILLed, the sentinels promote the replica, and the pools (thread pools whose process groups
rebuild their Sentinel clients after the fork) follow without a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from failover import FailoverRun, check_master_killed, keep_server_logs, kill_and_restart
from failwork import settings
from test_durable_shortfall import stopped

from alsek.core.broker import Broker
from alsek.core.consumer import Consumer
from alsek.core.message import Message
from alsek.storage.backends import RedisBackend
from alsek.testing import RedisServer, SentinelServers
from tests.polling import eventually

pytestmark = pytest.mark.slow


def sentinel_url(servers: SentinelServers) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in servers.sentinel_addresses)
    return f"redis+sentinel://{hosts}/{servers.master_name}"


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_a_killed_master_loses_nothing_acknowledged_with_wait_replicas(
    sentinel_servers: SentinelServers,
    failover_run: Callable[[str, int], FailoverRun],
    wait_replicas: int,
) -> None:
    run = failover_run(sentinel_url(sentinel_servers), wait_replicas)
    fault = kill_and_restart(sentinel_servers)
    # Every queue lives on the one master.
    try:
        figures = run.run(
            "sentinel: master killed", fault, settings.QUEUES[0], dead_queues=settings.QUEUES
        )
    finally:
        keep_server_logs(sentinel_servers, run.log_dir)
    check_master_killed(run, figures, wait_replicas)


def promoted(servers: SentinelServers, replica: RedisServer) -> bool:
    """Whether every sentinel names ``replica`` the master, and it says it is one."""
    try:
        return servers.master is replica and replica.info("replication")["role"] == "master"
    except LookupError:
        return False


def test_a_claim_a_failover_undoes_was_never_handed_out(
    sentinel_servers: SentinelServers, namespace: str
) -> None:
    """The mechanism of the duplicates the failover runs showed (issue 13), made to happen: a
    master leases a message, its replica never gets the lease (cut off here; stalled in those
    runs), and a failover to that replica undoes the claim. Before claims waited for replicas,
    the message was handed out by the old master, then again by the new one: it ran twice. With
    ``wait_replicas`` the first claim was never acknowledged, so nothing ran; the consumer's
    claim, sent again, leases the message on the new master, and it runs once."""
    backend = RedisBackend(sentinel_url(sentinel_servers), namespace=namespace)
    broker = Broker(backend, wait_replicas=1, wait_timeout_ms=50)
    ahead, message = Message("work", queue="q"), Message("work", queue="q")
    broker.submit_many([ahead, message])
    master = sentinel_servers.master
    [replica] = [server for server in sentinel_servers.servers if server is not master]
    lease = f"lock:{namespace}:queues:{{q}}:messages:{message.uuid}"
    consumer = Consumer(broker, subset=["q"], lease_ttl=30_000, backoff=None)
    handed_out: list[Message] = []
    # A call leases only what the consumer's previous reply named: the message ahead is claimed
    # while the replica runs, and that reply names ``message``.
    assert [got.uuid for got in consumer.claim(1).messages] == [ahead.uuid]
    consuming = threading.Thread(target=lambda: handed_out.extend(consumer.stream()))
    try:
        with stopped(replica):
            # Cut the replication link while the replica cannot read (a stopped replica would
            # still find in its socket what the master sent before the kill): from here on,
            # what the master writes reaches no replica.
            master.command("CLIENT", "KILL", "TYPE", "replica")
            consuming.start()
            eventually(lambda: master.command("EXISTS", lease), 10, "the claim on the master")
            master.kill()  # with the lease the replica never got
        eventually(lambda: promoted(sentinel_servers, replica), 30, "the replica promoted")
        sentinel_servers.restart_as_replica(master)  # a replica for the new master's WAITs

        def leased_again() -> str | None:
            owner: str | None = replica.command("GET", lease)
            return owner if handed_out and owner else None

        owner = eventually(leased_again, 30, "the message leased on the new master")
        assert [got.linked_lock["owner_id"] for got in handed_out if got.linked_lock] == [owner]
    finally:
        consumer.stop_signal.exit_event.set()
        consuming.join(10)
        backend.conn.close()
