"""``AsyncLock``, ``AsyncProcessLock``, ``AsyncThreadLock``: locks over ``AsyncRedisBackend``.

They run the same scripts on the asyncio client as the sync locks do on theirs, so they never
block the event loop, and a lock taken by one kind can be released by the other.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from redis.asyncio import Redis as RedisAsync

from alsek.core.lock.base import (
    CURRENT_HOST_OWNER_ID,
    DEFAULT_LOCK_TTL,
    IF_ALREADY_ACQUIRED_TYPE,
    BaseLock,
    ProcessOwnedLock,
    ThreadOwnedLock,
    async_drive,
)
from alsek.storage.backends.base import AsyncBackend, BaseBackend
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend

if TYPE_CHECKING:
    import redis_lock

__all__ = ["AsyncLock", "AsyncProcessLock", "AsyncThreadLock"]


class AsyncLock(BaseLock):
    """The asyncio twin of ``Lock``: same key, owner ids and semantics, awaitable I/O.

    Args:
        name: the lock's name; the Redis key is ``lock:{namespace}:{name}``.
        backend: an ``AsyncRedisBackend``; its namespace scopes the lock.
        ttl: lifetime in ms once acquired; ``None`` never expires.
        auto_release: release when leaving the ``async with`` block (entering does not acquire).
        owner_id: who holds the lock; by default the whole host (see ``BaseLock``).
        validate_on_init: check name, owner id and ttl now.
    """

    _backend_type: ClassVar[type[BaseBackend]] = AsyncRedisBackend
    backend: AsyncRedisBackend

    def __init__(
        self,
        name: str,
        backend: AsyncBackend,
        ttl: int | None = DEFAULT_LOCK_TTL,
        auto_release: bool = True,
        owner_id: str = CURRENT_HOST_OWNER_ID,
        validate_on_init: bool = True,
    ) -> None:
        super().__init__(name, ttl=ttl, auto_release=auto_release, owner_id=owner_id)
        self._attach(backend, validate_on_init)

    @property
    def _conn(self) -> RedisAsync:
        return self.backend.conn

    @property
    def lock(self) -> redis_lock.Lock:
        """Not available: python-redis-lock is blocking, and this lock talks to Redis natively.

        Use a sync ``Lock`` with the same name and owner id to get one.
        """
        raise NotImplementedError(
            "AsyncLock runs on the asyncio client and has no python-redis-lock object; "
            "build a sync Lock with the same name and owner_id for one"
        )

    async def get_holder(self) -> str | None:
        """The owner id stored in Redis, or ``None`` when nobody holds the lock."""
        return await async_drive(self._holder_steps(), self._io)

    async def is_held(self) -> bool:
        """True when *this owner* holds the lock (not merely anyone)."""
        return await async_drive(self._is_held_steps(), self._io)

    async def acquire(
        self,
        wait: float | None = None,
        if_already_acquired: IF_ALREADY_ACQUIRED_TYPE = "return_false",
    ) -> bool:
        """Take the lock, waiting up to ``wait`` **seconds** (``None``/0: try once).

        Waiting awaits BLPOP on the signal list, so other tasks keep running. If this owner
        already holds the lock, ``if_already_acquired`` decides, as for ``Lock.acquire``.
        """
        return await async_drive(self._acquire_steps(wait, if_already_acquired), self._io)

    async def release(self, raise_if_not_acquired: bool = False) -> bool:
        """Release the lock if this owner holds it and wake one waiter; see ``Lock.release``."""
        return await async_drive(self._release_steps(raise_if_not_acquired), self._io)

    async def extend(self, ttl: int | None = None) -> bool:
        """Reset the TTL to ``ttl`` ms (default: the lock's ttl) if this owner still holds it."""
        return await async_drive(self._extend_steps(ttl), self._io)

    async def __aenter__(self) -> AsyncLock:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.auto_release:
            await self.release()


class AsyncProcessLock(ProcessOwnedLock, AsyncLock):
    """An ``AsyncLock`` owned by the current process. Takes ``AsyncLock``'s arguments except
    ``owner_id``."""


class AsyncThreadLock(ThreadOwnedLock, AsyncLock):
    """An ``AsyncLock`` owned by the current thread. Takes ``AsyncLock``'s arguments except
    ``owner_id``."""
