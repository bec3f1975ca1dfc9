"""Redis backends: ``RedisBackend`` (blocking) and ``AsyncRedisBackend`` (asyncio)."""

from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend, parse_sub_data

__all__ = ["AsyncRedisBackend", "RedisBackend", "parse_sub_data"]
