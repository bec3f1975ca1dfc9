"""Storage backends: the contract (``Backend``, ``AsyncBackend``) and the Redis implementations."""

from alsek.storage.backends.base import AsyncBackend, Backend, BaseBackend
from alsek.storage.backends.lazy import LazyClient
from alsek.storage.backends.redis import AsyncRedisBackend, RedisBackend

__all__ = [
    "AsyncBackend",
    "AsyncRedisBackend",
    "Backend",
    "BaseBackend",
    "LazyClient",
    "RedisBackend",
]
