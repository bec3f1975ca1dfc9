"""Where the shop's tasks keep their messages and results: the Redis at ``$SHOP_REDIS_URL``.

The clients are made when the tasks first talk to Redis (``LazyClient``), not at import, so a
test suite can choose the server first. ``fakeredis://NAME`` selects an in-memory fakeredis
server called NAME (sync and async clients share it).
"""

from __future__ import annotations

import os

import redis
import redis.asyncio

from alsek import AsyncBroker, Broker
from alsek.storage.backends import AsyncRedisBackend, LazyClient, RedisBackend
from alsek.storage.result import AsyncResultStore, ResultStore

NAMESPACE = "shop"
FAKE = "fakeredis://"


def redis_url() -> str:
    """The Redis the shop uses."""
    return os.environ.get("SHOP_REDIS_URL", "redis://localhost:6379/0")


def redis_client() -> redis.Redis:
    """A new client of the shop's Redis."""
    url = redis_url()
    if url.startswith(FAKE):
        import fakeredis

        return fakeredis.FakeRedis(host=url.removeprefix(FAKE), decode_responses=True)
    return redis.Redis.from_url(url, decode_responses=True)


def async_redis_client() -> redis.asyncio.Redis:
    """A new asyncio client of the shop's Redis."""
    url = redis_url()
    if url.startswith(FAKE):
        import fakeredis

        return fakeredis.FakeAsyncRedis(host=url.removeprefix(FAKE), decode_responses=True)
    return redis.asyncio.Redis.from_url(url, decode_responses=True)


backend = RedisBackend(LazyClient(redis_client), namespace=NAMESPACE)
broker = Broker(backend)
results = ResultStore(backend)

async_backend = AsyncRedisBackend(LazyClient(async_redis_client), namespace=NAMESPACE)
async_broker = AsyncBroker(async_backend)
async_results = AsyncResultStore(async_backend)
