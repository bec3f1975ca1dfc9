"""Scaling out on Redis itself: the broker's hot path on 1, 2 and 3 cluster masters, and on a
single server, over six queues.

Each run submits ``--messages`` messages over six queues (``submit_many``, 100 per call), then
``--consumers`` threads claim them, 10 at a time across the six queues, and ack each: a
message's whole life on the broker. This machine is CPU-bound (the client and the servers share
two cores), so the throughput says little about Redis; what scales is the **Redis CPU per
message**, read from each server's ``INFO cpu`` before and after: per master, its CPU time over
the messages of its queues, and the ratio to a single server's (1.0: a master carries its share
of the load at the cost a single server pays for all of it).

    .venv/bin/python bench/cluster.py [--messages 6000] [--consumers 4] [--json PATH]
    .venv/bin/python bench/cluster.py --durability [--messages 6000]

Servers are Valkey 8.1 (``alsek.testing``), persistence off, no replicas. ``--durability``
measures instead what ``Broker(wait_replicas=1)`` costs: one master with one replica, the same
load with ``wait_replicas`` 0 and 1 (each submit, claim and ack then waits for the replica),
and the median time and the ``WAIT`` commands of a one-message claim.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from alsek.core.broker import Broker, ClaimSource
from alsek.core.message import Message
from alsek.storage.backends import RedisBackend
from alsek.testing import ClusterServers, RedisServer
from alsek.utils.temporal import utcnow_timestamp_ms

QUEUES = tuple(f"bench-{index}" for index in range(6))
SUBMIT_BATCH = 100
CLAIM_BATCH = 10
OWNER = "lock:bench:process:1:lease:cluster"


@dataclass
class Node:
    """One server of a run: where it listens and what it carried."""

    port: int
    queues: list[str]
    messages: int = 0
    cpu_seconds: float = 0.0

    @property
    def cpu_us_per_message(self) -> float | None:
        return 1e6 * self.cpu_seconds / self.messages if self.messages else None


@dataclass
class Run:
    """One topology's figures."""

    topology: str
    masters: int
    messages: int
    seconds: float
    nodes: list[Node] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_us_per_message(self) -> float:
        return 1e6 * sum(node.cpu_seconds for node in self.nodes) / self.messages


def _cpu_seconds(server: RedisServer) -> float:
    info = server.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@contextmanager
def _topology(masters: int, replicas: int = 0) -> Iterator[tuple[str, list[RedisServer]]]:
    """``(url, masters)``: a single server for 0, else a cluster of ``masters`` masters with
    ``replicas`` replicas each."""
    if masters == 0:
        with RedisServer(flavour="valkey") as server:
            yield server.url, [server]
        return
    with ClusterServers(masters=masters, replicas_per_master=replicas) as cluster:
        hosts = ",".join(f"{host}:{port}" for host, port in cluster.addresses)
        yield f"redis+cluster://{hosts}", cluster.masters


def _messages(count: int) -> list[list[Message]]:
    now = utcnow_timestamp_ms()
    batches = []
    for start in range(0, count, SUBMIT_BATCH):
        queue = QUEUES[(start // SUBMIT_BATCH) % len(QUEUES)]
        size = min(SUBMIT_BATCH, count - start)
        batches.append([Message("bench", queue=queue, ready_at=now) for _ in range(size)])
    return batches


def _consume(broker: Broker, remaining: list[int], lock: threading.Lock) -> None:
    sources = [ClaimSource(queue) for queue in QUEUES]
    while True:
        with lock:
            if remaining[0] <= 0:
                return
        claim = broker.claim(sources, CLAIM_BATCH, OWNER)
        for message in claim.messages:
            broker.ack(message)
        with lock:
            remaining[0] -= len(claim.messages)


def run(masters: int, count: int, consumers: int, replicas: int = 0, wait: int = 0) -> Run:
    """Submit, claim and ack ``count`` messages on one topology (``wait``: ``wait_replicas``)."""
    with _topology(masters, replicas) as (url, servers):
        broker = Broker(RedisBackend(url, namespace="bench"), wait_replicas=wait)
        batches = _messages(count)
        broker.submit_many(batches[0][:1])  # connect and load the scripts before timing
        broker.ack(broker.claim([ClaimSource(QUEUES[0])], 1, OWNER).messages[0])
        owner = {server.port: server for server in servers}
        nodes = {port: Node(port, []) for port in owner}
        for queue in QUEUES:
            port = _port_of(broker, queue, servers)
            nodes[port].queues.append(queue)
        before = {port: _cpu_seconds(server) for port, server in owner.items()}
        started = time.perf_counter()
        for batch in batches:
            broker.submit_many(batch)
        remaining, lock = [count], threading.Lock()
        threads = [
            threading.Thread(target=_consume, args=(broker, remaining, lock))
            for _ in range(consumers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        for port, server in owner.items():
            nodes[port].cpu_seconds = _cpu_seconds(server) - before[port]
        for batch in batches:
            port = _port_of(broker, batch[0].queue, servers)
            nodes[port].messages += len(batch)
        broker.backend.conn.close()
    topology = "single server" if masters == 0 else f"cluster, {masters} master(s)"
    if replicas:
        topology = f"1 master + 1 replica, wait_replicas={wait}"
    return Run(topology, max(masters, 1), count, seconds, sorted(nodes.values(), key=_by_port))


def _by_port(node: Node) -> int:
    return node.port


def _port_of(broker: Broker, queue: str, servers: list[RedisServer]) -> int:
    if not broker.backend.is_cluster:
        return servers[0].port
    return int(broker.backend.conn.get_node_from_key(f"{{{queue}}}").port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--durability", action="store_true")
    args = parser.parse_args()
    if args.durability:
        durability(args.messages, args.consumers, args.json)
        return
    runs = [run(masters, args.messages, args.consumers) for masters in (0, 1, 2, 3)]
    single = runs[0].cpu_us_per_message
    print(f"{'topology':<24}{'msg/s':>8}{'Redis CPU us/msg':>18}  per master (us/msg, x single)")
    for result in runs:
        masters = ", ".join(
            f"{node.cpu_us_per_message:.1f} ({node.cpu_us_per_message / single:.2f}x, "
            f"{len(node.queues)} queues)"
            for node in result.nodes
            if node.cpu_us_per_message is not None
        )
        print(
            f"{result.topology:<24}{result.per_second:>8.0f}"
            f"{result.cpu_us_per_message:>18.1f}  {masters}"
        )
    print(f"One Redis core carries about {1e6 / single:.0f} messages/s at {single:.1f} us each.")
    if args.json:
        args.json.write_text(json.dumps([asdict(result) for result in runs], indent=2))


def submit_latency_ms(wait: int, calls: int = 300) -> float:
    """Median time (ms) of a one-message submit, one after another, on 1 master + 1 replica."""
    with _topology(1, 1) as (url, _):
        broker = Broker(RedisBackend(url, namespace="bench"), wait_replicas=wait)
        broker.submit(Message("bench", queue=QUEUES[0]))  # connect, load the scripts
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            broker.submit(Message("bench", queue=QUEUES[0]))
            times.append(1000 * (time.perf_counter() - started))
        broker.backend.conn.close()
    return statistics.median(times)


def _calls(server: RedisServer) -> dict[str, int]:
    """Calls so far per command name (``INFO commandstats``)."""
    stats = server.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


@dataclass
class ClaimCost:
    """What one claim of one message costs: median time, and per claim the script calls and
    the WAITs the master ran (a durable claim's WAIT rides in the script's pipeline: one round
    trip either way)."""

    ms: float
    scripts: float
    waits: float


def claim_cost(wait: int, calls: int = 300) -> ClaimCost:
    """One-message claims one after another (one queue, a request id each, as a consumer
    sends them) on 1 master + 1 replica."""
    with _topology(1, 1) as (url, servers):
        broker = Broker(RedisBackend(url, namespace="bench"), wait_replicas=wait)
        broker.submit_many([Message("bench", queue=QUEUES[0]) for _ in range(calls + 1)])
        sources = [ClaimSource(QUEUES[0])]
        broker.claim(sources, 1, OWNER, request_id="warm-up")  # connect, load the script
        before = _calls(servers[0])
        times = []
        for index in range(calls):
            started = time.perf_counter()
            broker.claim(sources, 1, OWNER, request_id=f"claim-{index}")
            times.append(1000 * (time.perf_counter() - started))
        after = _calls(servers[0])
        broker.backend.conn.close()
    waits = (after.get("wait", 0) - before.get("wait", 0)) / calls
    scripts = (after.get("evalsha", 0) - before.get("evalsha", 0)) / calls
    return ClaimCost(statistics.median(times), scripts, waits)


def durability(count: int, consumers: int, json_path: Path | None) -> None:
    """The cost of ``wait_replicas=1``: the same load without and with it, the latency of a
    lone submit, and what one claim costs."""
    runs = [run(1, count, consumers, replicas=1, wait=wait) for wait in (0, 1)]
    latencies = [submit_latency_ms(wait) for wait in (0, 1)]
    claims = [claim_cost(wait) for wait in (0, 1)]
    print(
        f"{'topology':<40}{'msg/s':>8}{'master CPU us/msg':>19}{'submit ms (median)':>20}"
        f"{'claim ms (median)':>19}{'WAITs/claim':>13}"
    )
    for result, latency, claim in zip(runs, latencies, claims):
        print(
            f"{result.topology:<40}{result.per_second:>8.0f}"
            f"{result.cpu_us_per_message:>19.1f}{latency:>20.2f}{claim.ms:>19.2f}"
            f"{claim.waits:>13.2f}"
        )
    if json_path:
        figures = [
            asdict(result) | {"submit_ms": ms, "claim": asdict(claim)}
            for result, ms, claim in zip(runs, latencies, claims)
        ]
        json_path.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
