"""``AsyncRedisBackend``: the asyncio Redis backend, a thin I/O shell over ``BaseBackend``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from redis.asyncio import Redis as RedisAsync
from redis.asyncio.cluster import RedisCluster as RedisClusterAsync

from alsek.defaults import DEFAULT_NAMESPACE
from alsek.storage.backends.base import (
    SCAN_BATCH_SIZE,
    AsyncBackend,
    is_data_message,
    parse_sub_data,
)
from alsek.storage.backends.lazy import LazyClient
from alsek.storage.serialization import JsonSerializer, Serializer
from alsek.types import Empty

__all__ = ["AsyncRedisBackend"]


class AsyncRedisBackend(AsyncBackend):
    """Store alsek's keys in Redis through an asyncio client: one server, a Sentinel-managed
    master, or a Redis Cluster.

    Args:
        conn: a Redis URL (as ``RedisBackend`` takes); a ``redis.asyncio.Redis`` (any
            subclass, such as ``fakeredis.FakeAsyncRedis``, or an asyncio
            ``Sentinel(...).master_for(name)``) or a ``redis.asyncio.cluster.RedisCluster``,
            created with ``decode_responses=True``; a ``LazyClient`` returning one; or ``None``
            for ``localhost:6379`` db 0.
        namespace: prefix of every key this backend touches.
        serializer: encodes values on the way in and decodes them on the way out.

    Unlike the sync backend, ``get`` raises ``KeyError`` for a missing key unless a default is
    given. Needs Redis 6.2 or newer.
    """

    SUPPORTS_PUBSUB = True
    CLIENT_CLASS = RedisAsync
    CLUSTER_CLIENT_CLASS = RedisClusterAsync

    def __init__(
        self,
        conn: str | RedisAsync | RedisClusterAsync | LazyClient | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        serializer: Serializer = JsonSerializer(),
    ) -> None:
        super().__init__(namespace=namespace, serializer=serializer)
        self._conn = self._conn_parse(conn)

    @property
    def conn(self) -> RedisAsync:
        """The client (a ``LazyClient`` is resolved on first access, once)."""
        return cast(RedisAsync, self._resolve_conn())

    async def exists(self, name: str) -> bool:
        """True when the key ``name`` exists."""
        return bool(await self.conn.exists(self.full_name(name)))

    async def set(self, name: str, value: Any, nx: bool = False, ttl: int | None = None) -> None:
        """Store ``value``; see ``BaseBackend.set``."""
        key, encoded, options = self._set_arguments(name, value, nx=nx, ttl=ttl)
        self._check_set_response(name, nx, await self.conn.set(key, encoded, **options))

    async def get(self, name: str, default: Any | type[Empty] | None = Empty) -> Any:
        """The decoded value; a missing key raises ``KeyError`` unless ``default`` is given."""
        return self._decode_value(name, await self.conn.get(self.full_name(name)), default)

    async def delete(self, name: str, missing_ok: bool = False) -> None:
        """Delete the key; a missing key raises ``KeyError`` unless ``missing_ok``."""
        self._check_deleted(name, await self.conn.delete(self.full_name(name)), missing_ok)

    async def _delete_many(self, names: list[str]) -> int:
        return await self.conn.unlink(*(self.full_name(name) for name in names))

    async def priority_add(self, key: str, unique_id: str, priority: int | float) -> None:
        """Add (or re-score) ``unique_id`` in the sorted set ``key``."""
        await self.conn.zadd(self.full_name(key), {unique_id: priority})

    async def priority_get(self, key: str) -> str | None:
        """The member with the lowest score, without removing it, or ``None``."""
        members = await self.conn.zrange(self.full_name(key), 0, 0)
        return self._first_member(cast("list[str]", members))

    async def priority_iter(self, key: str) -> AsyncIterator[str]:
        """Every member, lowest score first (one ZRANGE snapshot)."""
        for member in cast("list[str]", await self.conn.zrange(self.full_name(key), 0, -1)):
            yield member

    async def priority_remove(self, key: str, unique_id: str) -> None:
        """Remove ``unique_id`` from the sorted set ``key``."""
        await self.conn.zrem(self.full_name(key), unique_id)

    async def pub(self, channel: str, value: Any) -> None:
        """Publish ``value`` on ``channel``, which is used as given (not namespaced)."""
        await self.conn.publish(channel, self._encode_value(channel, value))

    async def sub(self, channel: str) -> AsyncIterator[dict[str, Any]]:
        """Yield redis-py message dicts from ``channel`` with ``data`` decoded.

        The subscription starts with the first ``__anext__``; ``aclose()`` unsubscribes.
        """
        pubsub = self.conn.pubsub()
        await pubsub.subscribe(channel)
        try:
            async for entry in pubsub.listen():
                if is_data_message(entry):
                    yield parse_sub_data(entry, self.serializer)
        finally:
            await pubsub.unsubscribe(channel)
            await pubsub.aclose()

    async def scan(self, pattern: str | None = None) -> AsyncIterator[str]:
        """Short names of this namespace's keys matching the glob ``pattern``."""
        match = self._scan_match(pattern)
        async for key in self.conn.scan_iter(match=match, count=SCAN_BATCH_SIZE):
            yield self.short_name(key)
