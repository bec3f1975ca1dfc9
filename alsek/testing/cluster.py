"""A real Redis/Valkey cluster on loopback ports: masters with replicas, failover, resharding."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio.cluster
import redis.cluster

from alsek.testing.binaries import Flavour
from alsek.testing.cluster_topology import (
    SLOT_COUNT,
    NodeRecord,
    parse_cluster_nodes,
    slot_of,
    split_slots,
)
from alsek.testing.processes import (
    LOOPBACK,
    StartsAndStops,
    free_port_with_bus,
    poll_until,
)
from alsek.testing.server import REPLICATION_LINES, Failover, RedisServer, replicas_caught_up
from alsek.testing.tls import TlsProxy, new_certificate_authority

if TYPE_CHECKING:
    import trustme

__all__ = ["ClusterServers"]

TLS_CLIENT_HOST = "127.0.0.2"
"""Where a TLS cluster's proxies listen: any 127.x address is loopback on Linux."""

# redis-py leaves the sync ClusterNode constructor untyped; this gives it its signature.
_sync_node: Callable[[str, int], redis.cluster.ClusterNode] = redis.cluster.ClusterNode

_Ownership = tuple[tuple[int, int, int], ...]
"""Slot ranges and the port of the master serving each, sorted: one node's view of the cluster."""


class ClusterServers(StartsAndStops):
    """``masters`` masters, each with ``replicas_per_master`` replicas, slots split among them.

    ``start()`` returns once every node says ``cluster_state:ok``, all agree on who serves which
    slot, and every replica is in sync. Nodes are ``RedisServer`` objects (``servers``); which are
    masters changes with failovers, so ask ``masters``/``node_for`` rather than remembering.

    Args:
        masters: how many masters share the 16384 slots.
        replicas_per_master: replicas attached to each master.
        flavour: ``"valkey"`` (8.1, sharded pub/sub) or ``"redis"`` (6.2).
        node_timeout_ms: ``cluster-node-timeout``: how long a silent master has before its
            replica takes over (failovers take about 2-3 times this).
        config_lines: more config lines for every node.
        startup_timeout_seconds: how long ``start()`` and each wait may take.
        tls: put a ``TlsProxy`` in front of every node, on the same port at ``127.0.0.2``, and
            have the nodes announce that address to clients (``tls_url``), while they reach each
            other and the harness reaches them in plain text on ``127.0.0.1``. Valkey only:
            Redis 6.2 cannot announce a client address of its own.
        certificate_authority: the CA for ``tls`` (a new one by default).
    """

    def __init__(
        self,
        masters: int = 3,
        replicas_per_master: int = 1,
        flavour: Flavour = "valkey",
        node_timeout_ms: int = 1000,
        config_lines: Sequence[str] = (),
        startup_timeout_seconds: float = 30.0,
        tls: bool = False,
        certificate_authority: trustme.CA | None = None,
    ) -> None:
        if tls and flavour != "valkey":
            raise ValueError(
                f"A TLS cluster needs the valkey flavour, got {flavour!r}: only Valkey announces "
                "a client address of its own (cluster-announce-client-ipv4)"
            )
        if masters < 1 or replicas_per_master < 0:
            raise ValueError(
                f"A cluster needs at least one master and no negative replica count, "
                f"got masters={masters}, replicas_per_master={replicas_per_master}"
            )
        self.master_count = masters
        self.replicas_per_master = replicas_per_master
        self.flavour: Flavour = flavour
        self.node_timeout_ms = node_timeout_ms
        self.timeout_seconds = startup_timeout_seconds
        lines = (
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {node_timeout_ms}",
            # A replica may always take over, however long since it last heard its master.
            "cluster-replica-validity-factor 0",
            # Replicas stay where the harness put them: tests know who replicates whom.
            "cluster-allow-replica-migration no",
            *REPLICATION_LINES,
            *((f"cluster-announce-client-ipv4 {TLS_CLIENT_HOST}",) if tls else ()),
            *config_lines,
        )
        ports: list[int] = []
        for _ in range(masters * (1 + replicas_per_master)):  # each node its own pair of ports
            ports.append(free_port_with_bus(ports))
        self.servers = [
            RedisServer(port=port, flavour=flavour, config_lines=lines) for port in ports
        ]
        authority = (certificate_authority or new_certificate_authority()) if tls else None
        self.tls_proxies = [
            TlsProxy(server.port, authority, port=server.port, host=TLS_CLIENT_HOST)
            for server in self.servers
            if authority is not None
        ]
        """One per node when ``tls``, in the order of ``servers``."""
        self._node_ids: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"<ClusterServers {self.flavour} ports={[s.port for s in self.servers]}>"

    # -- Addresses for clients -----------------------------------------------------------

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node."""
        return [server.address for server in self.servers]

    @property
    def url(self) -> str:
        """``redis://`` URL of one node: ``RedisCluster.from_url`` discovers the others.

        With ``tls``, the nodes it names are the TLS proxies: use ``tls_url``."""
        return f"redis://{LOOPBACK}:{self.servers[0].port}"

    @property
    def startup_nodes(self) -> list[redis.cluster.ClusterNode]:
        """Every node, for ``redis.cluster.RedisCluster(startup_nodes=...)``."""
        return [_sync_node(host, port) for host, port in self.addresses]

    @property
    def async_startup_nodes(self) -> list[redis.asyncio.cluster.ClusterNode]:
        """Every node, for ``redis.asyncio.cluster.RedisCluster(startup_nodes=...)``."""
        return [redis.asyncio.cluster.ClusterNode(host, port) for host, port in self.addresses]

    @property
    def tls_url(self) -> str:
        """``rediss://`` URL of one node's TLS proxy, trusting the CA: every node the cluster
        names to a client through it is a TLS proxy too."""
        if not self.tls_proxies:
            raise RuntimeError(f"{self!r} was made without tls=True")
        proxy = self.tls_proxies[0]
        return f"rediss://{proxy.host}:{proxy.port}?ssl_ca_certs={proxy.ca_certs_path}"

    def client(self, decode_responses: bool = True) -> redis.cluster.RedisCluster:
        """A cluster client (through TLS with ``tls``)."""
        url = self.tls_url if self.tls_proxies else self.url
        return redis.cluster.RedisCluster.from_url(url, decode_responses=decode_responses)

    # -- Lifecycle ------------------------------------------------------------------------

    def start(self) -> ClusterServers:
        """Start the nodes, assign slots, meet, attach replicas; wait until all is settled."""
        try:
            for server in self.servers:
                server.start()
            for proxy in self.tls_proxies:
                proxy.start()
            masters = self.servers[: self.master_count]
            for epoch, (master, slots) in enumerate(zip(masters, split_slots(len(masters)))):
                master.command("CLUSTER", "ADDSLOTS", *slots)
                # Distinct epochs up front spare the cluster a round of collision resolution.
                master.command("CLUSTER", "SET-CONFIG-EPOCH", epoch + 1)
            for server in self.servers[1:]:
                self.servers[0].command("CLUSTER", "MEET", LOOPBACK, server.port)
            poll_until(self._all_met, self.timeout_seconds, f"{self!r}: nodes meeting")
            replicas = self.servers[self.master_count :]
            for index, replica in enumerate(replicas):
                master = masters[index % self.master_count]
                replica.command("CLUSTER", "REPLICATE", self.node_id(master))
            for master in masters:
                # A first replicated write: nodes leave a replica whose offset is still 0 out of
                # CLUSTER SLOTS, so clients would not find it until the master's first
                # replication ping, 10 s later. The cluster is empty: FLUSHALL changes nothing.
                master.command("FLUSHALL")
            self.wait_until_settled()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every node and remove their directories (the data is thrown away, so there is
        nothing to shut down gracefully, and a graceful cluster shutdown is slow)."""
        for server in self.servers:
            server.kill()
        for server in self.servers:
            server.stop()
        for proxy in self.tls_proxies:
            proxy.stop()
        self._node_ids.clear()

    # -- Who serves what ------------------------------------------------------------------

    def node_id(self, server: RedisServer) -> str:
        """The cluster node id of ``server`` (kept across restarts in its ``nodes.conf``)."""
        if server.port not in self._node_ids:
            self._node_ids[server.port] = str(server.command("CLUSTER", "MYID"))
        return self._node_ids[server.port]

    @staticmethod
    def slot_for(key: str | bytes) -> int:
        """The hash slot of ``key``."""
        return slot_of(key)

    def node_for(self, key: str | bytes | None = None, slot: int | None = None) -> RedisServer:
        """The master serving ``key`` (or ``slot``), as the running nodes see it now."""
        if (key is None) == (slot is None):
            raise ValueError("Give exactly one of key= or slot=")
        wanted = slot if slot is not None else slot_of(key or "")
        for record in self._view_from_any():
            if record.is_master and record.serves(wanted):
                return self._server_on(record.port)
        raise LookupError(f"No master serves slot {wanted} in {self!r}")

    @property
    def masters(self) -> list[RedisServer]:
        """The masters that serve slots now."""
        return [
            self._server_on(record.port)
            for record in self._view_from_any()
            if record.is_master and record.slot_ranges
        ]

    def replicas_of(self, master: RedisServer) -> list[RedisServer]:
        """The replicas attached to ``master`` now."""
        master_id = self.node_id(master)
        return [
            self._server_on(record.port)
            for record in self._view_from_any()
            if record.is_replica and record.master_id == master_id
        ]

    # -- Faults and resharding --------------------------------------------------------------

    def kill_master(self, for_key: str | bytes | None = None, slot: int | None = None) -> Failover:
        """SIGKILL the master serving ``for_key`` (or ``slot``) and wait until one of its
        replicas took over and every live node agrees."""
        master = self.node_for(key=for_key, slot=slot)
        candidates = [replica for replica in self.replicas_of(master) if replica.running]
        if not candidates:
            raise RuntimeError(f"{master!r} has no live replica to take over")
        wanted = slot if slot is not None else slot_of(for_key or "")
        master.kill()
        killed_at = time.monotonic()

        def promoted() -> RedisServer | None:
            for replica in candidates:
                own = _own_record(replica)
                if own is not None and own.is_master and own.serves(wanted):
                    return replica if self._settled() else None
            return None

        winner = poll_until(promoted, self.timeout_seconds, f"a replica of {master!r} taking over")
        return Failover(killed=master, promoted=winner, seconds=time.monotonic() - killed_at)

    def restart_as_replica(self, server: RedisServer) -> None:
        """Start a killed node again; it rejoins as a replica of whoever took its slots."""
        server.start()

        def rejoined() -> bool:
            own = _own_record(server)
            return own is not None and own.is_replica and self._settled()

        poll_until(rejoined, self.timeout_seconds, f"{server!r} rejoining as a replica")

    def migrate_slot(
        self,
        slot: int,
        to_node: RedisServer,
        batch_size: int = 100,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Move ``slot`` and its keys to the master ``to_node`` while clients keep using it.

        The live resharding of ``redis-cli --cluster reshard``: mark the slot importing and
        migrating, ``MIGRATE`` its keys ``batch_size`` at a time (clients meanwhile follow
        ``ASK`` redirections), then give the slot to ``to_node`` on every master.
        ``on_batch(moved_so_far)`` runs after each batch, so a test can act mid-migration.
        Returns how many keys moved.
        """
        source = self.node_for(slot=slot)
        if source.port == to_node.port:
            return 0
        source_id, target_id = self.node_id(source), self.node_id(to_node)
        to_node.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        moved = 0
        while keys := source.command("CLUSTER", "GETKEYSINSLOT", slot, batch_size, decode=False):
            source.command("MIGRATE", LOOPBACK, to_node.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            if on_batch is not None:
                on_batch(moved)
        # The new owner first, so it never redirects back to a source that has let go.
        others = [master for master in self.masters if master not in (to_node, source)]
        for master in [to_node, source, *others]:
            master.command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self.wait_until_settled()
        return moved

    def restore(self) -> None:
        """Start every killed node again and wait until the cluster settles (a killed master
        whose slots were taken over comes back as a replica)."""
        for server in self.servers:
            server.start()
        self.wait_until_settled()

    # -- Waiting ----------------------------------------------------------------------------

    def wait_until_replicated(self) -> None:
        """Wait until every running replica has applied every write of its master, so that a
        failover loses nothing (replication is asynchronous)."""

        def caught_up() -> bool:
            return all(
                replicas_caught_up(master, [r for r in self.replicas_of(master) if r.running])
                for master in self.masters
            )

        poll_until(caught_up, self.timeout_seconds, f"{self!r} replicas catching up")

    def wait_until_settled(self) -> None:
        """Wait until every running node says ``cluster_state:ok``, all agree on the slots and
        the roles, nobody is in doubt, every running replica is in sync, and every node names
        every running node to clients."""
        poll_until(self._settled, self.timeout_seconds, f"{self!r} settling")

    def _all_met(self) -> bool:
        """Every node knows every other, handshakes done."""
        for server in self.servers:
            records = parse_cluster_nodes(str(server.command("CLUSTER", "NODES")))
            if len(records) != len(self.servers) or any(r.in_doubt for r in records):
                return False
        return True

    def _settled(self) -> bool:
        running = [server for server in self.servers if server.running]
        running_ports = {server.port for server in running}
        views: set[_Ownership] = set()
        for server in running:
            try:
                info = server.command("CLUSTER", "INFO")
                records = parse_cluster_nodes(str(server.command("CLUSTER", "NODES")))
                replication = server.info("replication")
            except redis.RedisError:
                return False
            if "cluster_state:ok" not in str(info):
                return False
            live = [record for record in records if record.port in running_ports]
            if len(live) != len(running) or any(r.in_doubt for r in live):
                return False
            if any(not (r.connected or r.is_myself) for r in live):
                return False
            views.add(_ownership(records))
            if replication.get("role") == "slave" and not _in_sync(replication):
                return False
            if _ports_named_to_clients(server) != running_ports:
                return False
        if len(views) != 1:
            return False
        (ownership,) = views
        covered = sum(last - first + 1 for first, last, _ in ownership)
        owners_live = all(port in running_ports for _, _, port in ownership)
        return covered == SLOT_COUNT and owners_live

    def _view_from_any(self) -> list[NodeRecord]:
        """``CLUSTER NODES`` from the first running node that answers."""
        for server in self.servers:
            if server.running:
                try:
                    return parse_cluster_nodes(str(server.command("CLUSTER", "NODES")))
                except redis.RedisError:
                    continue
        raise RuntimeError(f"No node of {self!r} is running")

    def _server_on(self, port: int) -> RedisServer:
        for server in self.servers:
            if server.port == port:
                return server
        raise LookupError(f"No node of {self!r} listens on port {port}")


def _ownership(records: Sequence[NodeRecord]) -> _Ownership:
    return tuple(
        sorted(
            (first, last, record.port)
            for record in records
            if record.is_master
            for first, last in record.slot_ranges
        )
    )


def _ports_named_to_clients(server: RedisServer) -> set[int]:
    """The nodes ``CLUSTER SLOTS`` names, which is how clients discover the cluster."""
    slots = server.command("CLUSTER", "SLOTS")
    return {int(node[1]) for slot_range in slots for node in slot_range[2:]}


def _in_sync(replication: dict[str, Any]) -> bool:
    return (
        replication.get("master_link_status") == "up"
        and str(replication.get("master_sync_in_progress")) == "0"
    )


def _own_record(server: RedisServer) -> NodeRecord | None:
    """How ``server`` sees itself, or None while it does not answer."""
    try:
        records = parse_cluster_nodes(str(server.command("CLUSTER", "NODES")))
    except redis.RedisError:
        return None
    return next((record for record in records if record.is_myself), None)
