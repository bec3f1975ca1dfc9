"""Where a Redis client connects, as a URL safe to log: the password is never shown."""

from __future__ import annotations

from typing import Any

#: Stands for a password in a logged URL.
MASK = "***"


def _credentials(kwargs: dict[str, Any]) -> str:
    """``user:***@``, ``:***@`` or nothing, from a connection's keyword arguments."""
    username, password = kwargs.get("username"), kwargs.get("password")
    if password is None and kwargs.get("credential_provider") is not None:
        password = MASK  # supplied at connect time; there is one all the same
    if not username and password is None:
        return ""
    return f"{username or ''}:{MASK}@" if password is not None else f"{username}@"


def _pool_location(pool: Any) -> str:
    kwargs = dict(pool.connection_kwargs)
    credentials = _credentials(kwargs)
    db = kwargs.get("db", 0)
    service = getattr(pool, "service_name", None)
    if service is not None:  # a Sentinel-managed master
        sentinels = getattr(getattr(pool, "sentinel_manager", None), "sentinels", [])
        hosts = ",".join(_host_port(s.connection_pool.connection_kwargs) for s in sentinels)
        return f"redis+sentinel://{credentials}{hosts or '?'}/{service}/{db}"
    if "path" in kwargs:
        return f"unix://{credentials}{kwargs['path']}?db={db}"
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    return f"{scheme}://{credentials}{_host_port(kwargs)}/{db}"


def _host_port(kwargs: dict[str, Any]) -> str:
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def redis_location(client: Any) -> str:
    """The URL ``client`` (sync or asyncio; plain, Sentinel-managed or Cluster) connects to,
    with its password replaced by ``***``, for logs and error messages."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None and hasattr(pool, "connection_kwargs"):
        return _pool_location(pool)
    nodes = getattr(client, "nodes_manager", None)
    if nodes is not None:  # a Redis Cluster client
        credentials = _credentials(dict(getattr(nodes, "connection_kwargs", {})))
        startup = ",".join(sorted(getattr(nodes, "startup_nodes", {}))) or "?"
        return f"redis://{credentials}{startup} (cluster)"
    return f"a {type(client).__name__} client"
