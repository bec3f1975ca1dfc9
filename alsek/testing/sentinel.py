"""A master, its replicas and the sentinels watching them, on loopback ports."""

from __future__ import annotations

import time

import redis

from alsek.testing.binaries import Flavour
from alsek.testing.processes import LOOPBACK, StartsAndStops, poll_until
from alsek.testing.server import REPLICATION_LINES, Failover, RedisServer, replicas_caught_up

__all__ = ["SentinelServers"]

_UNREACHABLE = frozenset({"s_down", "o_down", "disconnected"})


class SentinelServers(StartsAndStops):
    """One master, ``replicas`` replicas and ``sentinels`` sentinels (quorum: a majority).

    ``start()`` returns once every sentinel monitors the master, knows every replica and every
    other sentinel (else a failover could not be agreed on), and the replicas are in sync.

    Args:
        flavour: ``"valkey"`` (8.1) or ``"redis"`` (6.2); sentinels run the same binary.
        master_name: the name the sentinels know the master by (``Sentinel.master_for``).
        replicas: how many replicas.
        sentinels: how many sentinels.
        down_after_ms: ``down-after-milliseconds``: how long a silent master has before the
            sentinels call it down.
        failover_timeout_ms: ``failover-timeout``: how long one failover attempt may take
            before another sentinel tries.
        startup_timeout_seconds: how long ``start()`` and each wait may take.
    """

    def __init__(
        self,
        flavour: Flavour = "valkey",
        master_name: str = "alsek",
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        startup_timeout_seconds: float = 30.0,
    ) -> None:
        if replicas < 1 or sentinels < 1:
            raise ValueError(
                f"A failover needs a replica and a sentinel, got replicas={replicas}, "
                f"sentinels={sentinels}"
            )
        self.flavour: Flavour = flavour
        self.master_name = master_name
        self.timeout_seconds = startup_timeout_seconds
        self.quorum = sentinels // 2 + 1
        first = RedisServer(flavour=flavour, config_lines=REPLICATION_LINES)
        followers = [
            RedisServer(
                flavour=flavour,
                config_lines=(*REPLICATION_LINES, f"replicaof {LOOPBACK} {first.port}"),
            )
            for _ in range(replicas)
        ]
        self.servers = [first, *followers]
        """The data servers; the master is ``servers[0]`` until a failover."""
        watch = (
            f"sentinel monitor {master_name} {LOOPBACK} {first.port} {self.quorum}",
            f"sentinel down-after-milliseconds {master_name} {down_after_ms}",
            f"sentinel failover-timeout {master_name} {failover_timeout_ms}",
            f"sentinel parallel-syncs {master_name} {replicas}",
        )
        self.sentinels = [
            RedisServer(flavour=flavour, config_lines=watch, sentinel=True)
            for _ in range(sentinels)
        ]

    def __repr__(self) -> str:
        return f"<SentinelServers {self.flavour} {self.master_name!r}>"

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every sentinel, for ``redis.sentinel.Sentinel(...)``."""
        return [sentinel.address for sentinel in self.sentinels]

    @property
    def master(self) -> RedisServer:
        """The data server the (first running) sentinel names as master now."""
        sentinel = next((s for s in self.sentinels if s.running), self.sentinels[0])
        _, port = self._master_address(sentinel)
        return self._server_on(port)

    def start(self) -> SentinelServers:
        """Start the data servers, then the sentinels; wait until they are ready to fail over."""
        try:
            for server in (*self.servers, *self.sentinels):
                server.start()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill the sentinels first (so they start no failover), then the data servers, and
        remove their directories (the data is thrown away: nothing to shut down gracefully)."""
        for server in (*self.sentinels, *self.servers):
            server.kill()
        for server in (*self.sentinels, *self.servers):
            server.stop()

    def kill_master(self) -> Failover:
        """SIGKILL the master and wait until every sentinel names a promoted replica, and that
        replica says it is a master."""
        old = self.master
        old.kill()
        killed_at = time.monotonic()

        def promoted() -> RedisServer | None:
            ports = {self._master_address(sentinel)[1] for sentinel in self.sentinels}
            if len(ports) != 1 or old.port in ports:
                return None
            new = self._server_on(ports.pop())
            return new if new.info("replication").get("role") == "master" else None

        what = f"sentinels promoting a replica of {old!r}"
        new = poll_until(promoted, self.timeout_seconds, what)
        return Failover(killed=old, promoted=new, seconds=time.monotonic() - killed_at)

    def restart_as_replica(self, server: RedisServer) -> None:
        """Start a killed data server again as a replica of the master the sentinels name.

        The harness sends the ``REPLICAOF`` itself: sentinels would too, but only after
        watching the server claim to be a master for 8 s.
        """
        master = self.master
        server.start()
        server.command("REPLICAOF", master.host, master.port)
        self._wait_until_ready()

    def restore(self) -> None:
        """Start every killed sentinel and data server again; wait until ready to fail over."""
        for sentinel in self.sentinels:
            sentinel.start()
        master = self.master
        for server in self.servers:
            if server is master:
                server.start()
            elif not server.running:
                self.restart_as_replica(server)
        self._wait_until_ready()

    def wait_until_replicated(self) -> None:
        """Wait until every replica has applied every write of the master."""
        master = self.master
        replicas = [server for server in self.servers if server is not master]
        what = f"{self!r} replicas catching up"
        poll_until(lambda: replicas_caught_up(master, replicas), self.timeout_seconds, what)

    def _wait_until_ready(self) -> None:
        poll_until(self._ready, self.timeout_seconds, f"{self!r} ready to fail over")

    def _ready(self) -> bool:
        """The sentinels agree on a live master and see every replica and every peer, all
        reachable; every other data server replicates that master, in sync."""
        try:
            masters = {self._master_address(sentinel) for sentinel in self.sentinels}
            if len(masters) != 1:
                return False
            master = self._server_on(masters.pop()[1])
            for sentinel in self.sentinels:
                replicas = sentinel.command("SENTINEL", "REPLICAS", self.master_name)
                peers = sentinel.command("SENTINEL", "SENTINELS", self.master_name)
                if len(replicas) != len(self.servers) - 1:
                    return False
                if len(peers) != len(self.sentinels) - 1:
                    return False
                if any(_UNREACHABLE & set(entry["flags"].split(",")) for entry in replicas + peers):
                    return False
            return master.running and all(
                server.info("replication").get("master_link_status") == "up"
                for server in self.servers
                if server is not master
            )
        except redis.RedisError:
            return False

    def _master_address(self, sentinel: RedisServer) -> tuple[str, int]:
        host, port = sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
        return (str(host), int(port))

    def _server_on(self, port: int) -> RedisServer:
        for server in self.servers:
            if server.port == port:
                return server
        raise LookupError(f"No data server of {self!r} listens on port {port}")
