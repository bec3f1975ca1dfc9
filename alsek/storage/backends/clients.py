"""The Redis clients alsek runs on, and how one is described, checked and rebuilt elsewhere.

Three kinds, each blocking or asyncio: a single server (``redis.Redis``), a master found through
Sentinel (``Sentinel(...).master_for(name)``: a ``redis.Redis`` over a Sentinel-managed pool),
and a cluster (``redis.cluster.RedisCluster``). A URL names any of them:

* ``redis://``, ``rediss://``, ``unix://``: one server (redis-py's own URL rules);
* ``redis+cluster://[user:password@]host:port[,host:port...][?options]`` (``rediss+cluster``
  for TLS): a cluster, discovered from those nodes;
* ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db][?options]``
  (``rediss+sentinel`` for TLS): the master the sentinels name ``service``. The credentials and
  TLS apply to the data servers and the sentinels alike; ``sentinel_username`` and
  ``sentinel_password`` options give the sentinels credentials of their own.

A *recipe* is a client as plain data: what rebuilds an equivalent client (new connections, the
same servers and credentials) in another process. Live state never travels: a Sentinel-managed
pool or a cluster's node table carried across a fork deadlocks or points at a stale topology,
so every process builds its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel

__all__ = [
    "CLUSTER_SCHEMES",
    "SENTINEL_SCHEMES",
    "client_from_recipe",
    "client_from_url",
    "client_kind",
    "connection_kwargs",
    "is_cluster",
    "node_names",
    "plain_settings",
    "recipe_of",
    "server_identity",
]

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SENTINEL_SCHEMES = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}
_SENTINEL_OWN = ("sentinel_username", "sentinel_password")

#: Entries redis-py adds to a pool's connection kwargs at run time. They belong to that pool
#: (some reference it, open sockets included), so a recipe leaves them out.
_RUNTIME_KWARGS = frozenset(
    {
        "connection_pool",
        "maint_notifications_pool_handler",
        "oss_cluster_maint_notifications_handler",
        "himport_registry",
        "orig_host_address",
        "orig_socket_timeout",
        "orig_socket_connect_timeout",
        "event_dispatcher",
        "redis_connect_func",
    }
)
#: Cluster client options a recipe keeps, and where the client keeps each (the others are
#: redis-py's defaults or live state).
_CLUSTER_OPTIONS = {
    "require_full_coverage": ("nodes_manager", "_require_full_coverage"),
    "dynamic_startup_nodes": ("nodes_manager", "_dynamic_startup_nodes"),
    "reinitialize_steps": (None, "reinitialize_steps"),
}


def _without(kwargs: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in kwargs.items() if key not in names}


def plain_settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Connection ``kwargs`` without runtime entries (a pool's or a cluster's hooks and state)
    and bare ``object()`` sentinels (redis-py's "use the default" markers, which would not
    survive pickling as themselves): what opens an equivalent connection elsewhere."""
    return {
        key: value
        for key, value in kwargs.items()
        if key not in _RUNTIME_KWARGS and type(value) is not object
    }


# -- what a client is --------------------------------------------------------------------------


def is_cluster(client: Any) -> bool:
    """Whether ``client`` talks to a Redis Cluster (blocking or asyncio)."""
    return isinstance(client, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))


def _is_sentinel_pool(pool: Any) -> bool:
    return isinstance(
        pool, (redis.sentinel.SentinelConnectionPool, redis.asyncio.sentinel.SentinelConnectionPool)
    )


def client_kind(client: Any) -> str:
    """``"cluster"``, ``"sentinel"`` or ``"single"``."""
    if is_cluster(client):
        return "cluster"
    if _is_sentinel_pool(getattr(client, "connection_pool", None)):
        return "sentinel"
    return "single"


def connection_kwargs(client: Any) -> dict[str, Any]:
    """The keyword arguments ``client`` opens its connections with."""
    if is_cluster(client):
        return dict(client.get_connection_kwargs())
    return dict(client.connection_pool.connection_kwargs)


def node_names(client: Any) -> set[str]:
    """``host:port`` of every cluster node ``client`` knows (its startup nodes before it has
    discovered the others)."""
    manager = client.nodes_manager
    nodes = manager.nodes_cache or manager.startup_nodes
    return {str(name) for name in nodes}


def server_identity(client: Any) -> tuple[Any, ...]:
    """Where ``client``'s commands land, comparable between clients: a server and database, a
    Sentinel service, or ``("cluster",)`` (clusters compare by ``node_names`` overlap)."""
    kind = client_kind(client)
    if kind == "cluster":
        return ("cluster",)
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    db = kwargs.get("db", 0)
    if kind == "sentinel":
        sentinels = frozenset(_address(s) for s in pool.sentinel_manager.sentinels)
        return ("sentinel", pool.service_name, sentinels, db)
    if type(client).__module__.split(".")[0] == "fakeredis":
        # fakeredis keeps its data in memory: in the server object passed as ``server=``, else
        # in the one it shares between its clients of the same host and port (or path).
        if kwargs.get("server") is not None:
            return ("fakeredis", kwargs["server"], db)
        return ("fakeredis", kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), db)
    if kwargs.get("path"):
        return ("unix", kwargs["path"], db)
    return ("tcp", kwargs.get("host"), kwargs.get("port"), db)


def _address(sentinel_client: Any) -> tuple[str, int]:
    kwargs = sentinel_client.connection_pool.connection_kwargs
    return (str(kwargs.get("host")), int(kwargs.get("port", 26379)))


# -- URLs --------------------------------------------------------------------------------------


def _hosts(netloc_hosts: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for item in netloc_hosts.split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        if not host:
            raise ValueError(f"No host in {item!r}: write host:port")
        hosts.append((host, int(port) if port else default_port))
    return hosts


def _split(
    url: str, schemes: dict[str, str], default_port: int
) -> tuple[str, str, list[tuple[str, int]], str]:
    """(plain scheme, credentials + '@' or '', hosts, rest of the URL after the hosts)."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise ValueError(f"No host in Redis URL {url!r}")
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    prefix = f"{credentials}@" if credentials else ""
    return schemes[parts.scheme.lower()], prefix, _hosts(hosts, default_port), rest


def client_from_url(url: str, asyncio: bool, single: type[Any] | None = None) -> Any:
    """A client (``decode_responses=True``) for ``url``; see the module's docstring.

    ``single``: the client class of a single server (default ``redis.Redis`` or its asyncio
    twin), for ``redis://``, ``rediss://`` and ``unix://``.

    Raises:
        ValueError: the URL names no host, or a scheme alsek does not know.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in CLUSTER_SCHEMES:
        return _cluster_from_url(url, asyncio)
    if scheme in SENTINEL_SCHEMES:
        return _sentinel_from_url(url, asyncio)
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"Unknown Redis URL scheme {scheme!r} in {url!r}: use redis://, rediss://, unix://, "
            "redis+cluster://, rediss+cluster://, redis+sentinel:// or rediss+sentinel://"
        )
    client_class = single or (redis.asyncio.Redis if asyncio else redis.Redis)
    return client_class.from_url(url, decode_responses=True)


def _cluster_from_url(url: str, asyncio: bool) -> Any:
    plain, credentials, hosts, rest = _split(url, CLUSTER_SCHEMES, 6379)
    (host, port), others = hosts[0], hosts[1:]
    if asyncio:
        nodes: list[Any] = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in others]
        return redis.asyncio.cluster.RedisCluster.from_url(
            f"{plain}://{credentials}{host}:{port}{rest}",
            startup_nodes=nodes or None,
            decode_responses=True,
        )
    node_class: Any = redis.cluster.ClusterNode  # untyped constructor in redis-py
    return redis.cluster.RedisCluster.from_url(
        f"{plain}://{credentials}{host}:{port}{rest}",
        startup_nodes=[node_class(h, p) for h, p in others] or None,
        decode_responses=True,
    )


def _sentinel_from_url(url: str, asyncio: bool) -> Any:
    plain, credentials, sentinels, _ = _split(url, SENTINEL_SCHEMES, 26379)
    parts = urlsplit(url)
    path = [unquote(segment) for segment in parts.path.split("/") if segment]
    if not path or len(path) > 2:
        raise ValueError(
            f"A Sentinel URL names the service after the hosts, then optionally the db: "
            f"{plain}+sentinel://host:26379/mymaster/0, not {url!r}"
        )
    service, db = path[0], (path[1] if len(path) == 2 else "0")
    options = dict(parse_qsl(parts.query))
    own = {name[len("sentinel_") :]: options.pop(name) for name in _SENTINEL_OWN if name in options}
    query = f"?{urlencode(options)}" if options else ""
    # redis-py's URL rules give the data servers' connection kwargs (TLS, credentials, timeouts).
    parse_url: Any = redis.connection.parse_url  # untyped in redis-py
    kwargs = parse_url(f"{plain}://{credentials}localhost/{db}{query}")
    for name in ("host", "port", "connection_class"):
        kwargs.pop(name, None)
    ssl = plain == "rediss"
    sentinel_kwargs = {name: value for name, value in kwargs.items() if name != "db"}
    sentinel_kwargs.update(own, **({"ssl": True} if ssl else {}))
    manager_class: Any = redis.asyncio.sentinel.Sentinel if asyncio else redis.sentinel.Sentinel
    manager = manager_class(sentinels, sentinel_kwargs=sentinel_kwargs)
    return manager.master_for(service, decode_responses=True, ssl=ssl, **kwargs)


# -- recipes -----------------------------------------------------------------------------------


def recipe_of(client: Any) -> dict[str, Any]:
    """``client`` as plain data that ``client_from_recipe`` rebuilds (credentials included:
    hand recipes only to processes you trust, never store or log them)."""
    kind = client_kind(client)
    if kind == "cluster":
        return _cluster_recipe(client)
    pool = client.connection_pool
    recipe = {
        "kind": kind,
        "connection_class": pool.connection_class,
        "max_connections": pool.max_connections,
        "connection_kwargs": plain_settings(pool.connection_kwargs),
    }
    if kind == "sentinel":
        manager = pool.sentinel_manager
        recipe.update(
            service_name=pool.service_name,
            is_master=pool.is_master,
            sentinels=[_address(sentinel) for sentinel in manager.sentinels],
            sentinel_kwargs=_without(plain_settings(manager.sentinel_kwargs), "retry"),
            min_other_sentinels=manager.min_other_sentinels,
            force_master_ip=getattr(manager, "_force_master_ip", None),
            check_connection=getattr(pool, "check_connection", False),
        )
    return recipe


def _cluster_recipe(client: Any) -> dict[str, Any]:
    kwargs = _without(plain_settings(connection_kwargs(client)), "host", "port", "retry")
    startup = sorted({tuple(name.rsplit(":", 1)) for name in node_names(client)})
    return {
        "kind": "cluster",
        "startup_nodes": [(host, int(port)) for host, port in startup],
        "connection_kwargs": kwargs,
        "options": _cluster_options(client),
    }


def _cluster_options(client: Any) -> dict[str, Any]:
    options = {}
    for name, (holder, attribute) in _CLUSTER_OPTIONS.items():
        owner = client if holder is None else getattr(client, holder, None)
        if hasattr(owner, attribute):
            options[name] = getattr(owner, attribute)
    return options


def client_from_recipe(recipe: dict[str, Any], asyncio: bool) -> Any:
    """A new client (its own connections) from ``recipe_of``'s output."""
    kind = recipe.get("kind", "single")
    if kind == "cluster":
        return _cluster_from_recipe(recipe, asyncio)
    kwargs = dict(recipe["connection_kwargs"])
    if kind == "sentinel":
        return _sentinel_from_recipe(recipe, kwargs, asyncio)
    pool_class: Any = redis.asyncio.ConnectionPool if asyncio else redis.ConnectionPool
    pool = pool_class(
        connection_class=recipe["connection_class"],
        max_connections=recipe["max_connections"],
        **kwargs,
    )
    client_class: Any = redis.asyncio.Redis if asyncio else redis.Redis
    return client_class.from_pool(pool)


def _sentinel_from_recipe(recipe: dict[str, Any], kwargs: dict[str, Any], asyncio: bool) -> Any:
    sentinel_class: Any = redis.asyncio.sentinel.Sentinel if asyncio else redis.sentinel.Sentinel
    manager = sentinel_class(
        [tuple(address) for address in recipe["sentinels"]],
        min_other_sentinels=recipe["min_other_sentinels"],
        sentinel_kwargs=recipe["sentinel_kwargs"],
        force_master_ip=recipe.get("force_master_ip"),
    )
    options = {
        "connection_class": recipe["connection_class"],
        "check_connection": recipe.get("check_connection", False),
    }
    if recipe["max_connections"] is not None:
        options["max_connections"] = recipe["max_connections"]
    if recipe["is_master"]:
        return manager.master_for(recipe["service_name"], **options, **kwargs)
    return manager.slave_for(recipe["service_name"], **options, **kwargs)


def _cluster_from_recipe(recipe: dict[str, Any], asyncio: bool) -> Any:
    nodes: Sequence[Any]
    if asyncio:
        # The asyncio cluster takes named options only (it picks its connection class and
        # response callbacks itself, ``ssl=True`` for TLS).
        accepted = inspect.signature(redis.asyncio.cluster.RedisCluster.__init__).parameters
        kwargs = {k: v for k, v in recipe["connection_kwargs"].items() if k in accepted}
        nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in recipe["startup_nodes"]]
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=list(nodes), **recipe["options"], **kwargs
        )
    node_class: Any = redis.cluster.ClusterNode
    nodes = [node_class(h, p) for h, p in recipe["startup_nodes"]]
    return redis.cluster.RedisCluster(
        startup_nodes=list(nodes), **recipe["options"], **recipe["connection_kwargs"]
    )
