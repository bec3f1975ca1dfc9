"""``Lock``, ``ProcessLock``, ``ThreadLock``: blocking distributed locks over ``RedisBackend``."""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import ClassVar

import redis_lock
from redis import Redis

from alsek.core.lock.base import (
    CURRENT_HOST_OWNER_ID,
    DEFAULT_LOCK_TTL,
    IF_ALREADY_ACQUIRED_TYPE,
    BaseLock,
    ProcessOwnedLock,
    ThreadOwnedLock,
    drive,
    expire_seconds,
)
from alsek.storage.backends.base import Backend, BaseBackend
from alsek.storage.backends.redis.sync import RedisBackend

__all__ = ["Lock", "ProcessLock", "ThreadLock"]


class Lock(BaseLock):
    """A distributed lock, compatible with python-redis-lock (same key, value and signal list).

    Args:
        name: the lock's name; the Redis key is ``lock:{namespace}:{name}``.
        backend: a ``RedisBackend``; its namespace scopes the lock.
        ttl: lifetime in ms once acquired, honoured to the millisecond; ``None`` never expires.
        auto_release: release when leaving the ``with`` block (entering does not acquire).
        owner_id: who holds the lock; by default the whole host (see ``BaseLock``).
        validate_on_init: check name, owner id and ttl now.

    Example::

        with Lock("nightly-report", backend=backend, ttl=60_000) as lock:
            if lock.acquire(wait=5):
                build_report()
    """

    _backend_type: ClassVar[type[BaseBackend]] = RedisBackend
    backend: RedisBackend

    def __init__(
        self,
        name: str,
        backend: Backend,
        ttl: int | None = DEFAULT_LOCK_TTL,
        auto_release: bool = True,
        owner_id: str = CURRENT_HOST_OWNER_ID,
        validate_on_init: bool = True,
    ) -> None:
        super().__init__(name, ttl=ttl, auto_release=auto_release, owner_id=owner_id)
        self._attach(backend, validate_on_init)

    @property
    def _conn(self) -> Redis:
        return self.backend.conn

    @cached_property
    def lock(self) -> redis_lock.Lock:
        """The python-redis-lock ``Lock`` over the same key, with the TTL in whole seconds
        (rounded up). It keeps the owner id it saw when first read.

        Raises:
            NotImplementedError: on a Redis Cluster, which python-redis-lock does not support.
        """
        if self.backend.is_cluster:
            raise NotImplementedError(
                f"Lock {self.name!r}: python-redis-lock cannot run on a Redis Cluster client; "
                "use this Lock's own acquire/release/extend, which can"
            )
        return redis_lock.Lock(
            self._conn, name=self.full_name, expire=expire_seconds(self.ttl), id=self.owner_id
        )

    def get_holder(self) -> str | None:
        """The owner id stored in Redis, or ``None`` when nobody holds the lock."""
        return drive(self._holder_steps(), self._io)

    def is_held(self) -> bool:
        """True when *this owner* holds the lock (not merely anyone)."""
        return drive(self._is_held_steps(), self._io)

    def acquire(
        self,
        wait: float | None = None,
        if_already_acquired: IF_ALREADY_ACQUIRED_TYPE = "return_false",
    ) -> bool:
        """Take the lock, waiting up to ``wait`` **seconds** (``None``/0: try once).

        Returns whether it was taken. If this owner already holds it, ``if_already_acquired``
        decides: ``"return_false"`` (default), ``"return_true"``, or ``"raise_error"``
        (``redis_lock.AlreadyAcquired``).
        """
        return drive(self._acquire_steps(wait, if_already_acquired), self._io)

    def release(self, raise_if_not_acquired: bool = False) -> bool:
        """Release the lock if this owner holds it and wake one waiter; ``True`` if released.

        Otherwise returns ``False``, or raises ``redis_lock.NotAcquired`` if
        ``raise_if_not_acquired``.
        """
        return drive(self._release_steps(raise_if_not_acquired), self._io)

    def extend(self, ttl: int | None = None) -> bool:
        """Reset the TTL to ``ttl`` ms (default: the lock's ttl) if this owner still holds it.

        Returns ``False`` when it does not: the lock expired or another owner took it.
        """
        return drive(self._extend_steps(ttl), self._io)

    def __enter__(self) -> Lock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.auto_release:
            self.release()


class ProcessLock(ProcessOwnedLock, Lock):
    """A ``Lock`` owned by the current process: other processes on the host do not hold it.

    Takes ``Lock``'s arguments except ``owner_id``.
    """


class ThreadLock(ThreadOwnedLock, Lock):
    """A ``Lock`` owned by the current thread: other threads do not hold it.

    Takes ``Lock``'s arguments except ``owner_id``.
    """
