"""``RedisBackend``: the blocking Redis backend, a thin I/O shell over ``BaseBackend``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from redis import Redis
from redis.cluster import RedisCluster

from alsek.defaults import DEFAULT_NAMESPACE
from alsek.storage.backends.base import (
    SCAN_BATCH_SIZE,
    Backend,
    is_data_message,
    parse_sub_data,
)
from alsek.storage.backends.lazy import LazyClient
from alsek.storage.serialization import JsonSerializer, Serializer
from alsek.types import Empty

__all__ = ["RedisBackend", "parse_sub_data"]


class RedisBackend(Backend):
    """Store alsek's keys in Redis through a blocking client: one server, a Sentinel-managed
    master, or a Redis Cluster.

    Args:
        conn: a Redis URL (``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``,
            ``redis+sentinel://``...: see ``alsek.storage.backends.clients``); a
            ``redis.Redis`` (any subclass, such as ``fakeredis.FakeRedis``, or
            ``Sentinel(...).master_for(name)``) or a ``redis.cluster.RedisCluster``, created
            with ``decode_responses=True``; a ``LazyClient`` returning one; or ``None`` for
            ``localhost:6379`` db 0.
        namespace: prefix of every key this backend touches.
        serializer: encodes values on the way in and decodes them on the way out.

    Needs Redis 6.2 or newer (``SET ... KEEPTTL``, ``UNLINK``).
    """

    SUPPORTS_PUBSUB = True
    CLIENT_CLASS = Redis
    CLUSTER_CLIENT_CLASS = RedisCluster

    def __init__(
        self,
        conn: str | Redis | RedisCluster | LazyClient | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer = JsonSerializer(),
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer)
        self._conn = self._conn_parse(conn)

    @property
    def conn(self) -> Redis:
        """The client (a ``LazyClient`` is resolved on first access, once). A cluster client
        is typed as ``Redis``: alsek calls only the commands both have."""
        return cast(Redis, self._resolve_conn())

    def exists(self, name: str) -> bool:
        """True when the key ``name`` exists."""
        return bool(self.conn.exists(self.full_name(name)))

    def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None:
        """Store ``value``; see ``BaseBackend.set``."""
        key, encoded, options = self._set_arguments(name, value, nx=nx, ttl=ttl)
        self._check_set_response(name, nx, self.conn.set(key, encoded, **options))

    def get(self, name: str, default: Any | type[Empty] | None = None) -> Any:
        """The decoded value, or ``default`` (``None``) when missing; ``Empty`` → ``KeyError``."""
        return self._decode_value(name, self.conn.get(self.full_name(name)), default)

    def delete(self, name: str, missing_ok: bool = False) -> None:
        """Delete the key; a missing key raises ``KeyError`` unless ``missing_ok``."""
        self._check_deleted(name, self.conn.delete(self.full_name(name)), missing_ok)

    def _delete_many(self, names: list[str]) -> int:
        return self.conn.unlink(*(self.full_name(name) for name in names))

    def priority_add(self, key: str, unique_id: str, priority: int | float) -> None:
        """Add (or re-score) ``unique_id`` in the sorted set ``key``."""
        self.conn.zadd(self.full_name(key), {unique_id: priority})

    def priority_get(self, key: str) -> str | None:
        """The member with the lowest score, without removing it, or ``None``."""
        return self._first_member(cast("list[str]", self.conn.zrange(self.full_name(key), 0, 0)))

    def priority_iter(self, key: str) -> Iterator[str]:
        """Every member, lowest score first (one ZRANGE snapshot)."""
        yield from cast("list[str]", self.conn.zrange(self.full_name(key), 0, -1))

    def priority_remove(self, key: str, unique_id: str) -> None:
        """Remove ``unique_id`` from the sorted set ``key``."""
        self.conn.zrem(self.full_name(key), unique_id)

    def pub(self, channel: str, value: Any) -> None:
        """Publish ``value`` on ``channel``, which is used as given (not namespaced)."""
        self.conn.publish(channel, self._encode_value(channel, value))

    def sub(self, channel: str) -> Iterator[dict[str, Any]]:
        """Yield redis-py message dicts from ``channel`` with ``data`` decoded.

        The subscription starts with the first ``next()``; ``close()`` unsubscribes.
        """
        pubsub: Any = self.conn.pubsub()  # redis-py leaves listen() and unsubscribe() untyped
        pubsub.subscribe(channel)
        try:
            for entry in pubsub.listen():
                if is_data_message(entry):
                    yield parse_sub_data(entry, self.serializer)
        finally:
            pubsub.unsubscribe(channel)
            pubsub.close()

    def scan(self, pattern: str | None = None) -> Iterator[str]:
        """Short names of this namespace's keys matching the glob ``pattern``."""
        match = self._scan_match(pattern)
        for key in self.conn.scan_iter(match=match, count=SCAN_BATCH_SIZE):
            yield self.short_name(key)
