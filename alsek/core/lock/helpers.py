"""Locks tied to messages: one mutex per delivery attempt, and releasing a message's linked lock.

The owner id travels inside ``message.linked_lock``, so a lock taken in a pool's main process can
be released by a child process or another thread.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from alsek.core.lock.asyncio import AsyncLock, AsyncProcessLock
from alsek.core.lock.base import BaseLock
from alsek.core.lock.sync import Lock, ProcessLock
from alsek.utils.namespacing import get_message_signature

if TYPE_CHECKING:
    from alsek.core.message import LinkedLock, Message
    from alsek.storage.backends.base import AsyncBackend, Backend

__all__ = [
    "MESSAGE_LOCK_TTL_BUFFER",
    "AsyncMessageMutex",
    "MessageMutex",
    "release_message_lock",
    "release_message_lock_async",
]

log = logging.getLogger(__name__)

#: Added to ``message.timeout`` for a message lock's TTL, so the lock outlives the run.
MESSAGE_LOCK_TTL_BUFFER = 90 * 1000


def _mutex_settings(message: Message, ttl_buffer: int) -> dict[str, Any]:
    """The lock settings of a message mutex: its delivery attempt's name and TTL, kept past
    the ``with`` block."""
    return {
        "name": get_message_signature(message),
        "ttl": message.timeout + ttl_buffer,
        "auto_release": False,
    }


class MessageMutex(ProcessLock):
    """The lock a consumer takes on one delivery attempt of ``message``, owned by this process.

    Its name is ``get_message_signature(message)`` (``...:messages:{uuid}:retry:{retries}``) and
    its TTL ``message.timeout + ttl_buffer`` ms. Leaving the ``with`` block does not release it:
    the lock must outlive the block, until the message is acked, retried or failed.
    """

    def __init__(
        self, message: Message, backend: Backend, ttl_buffer: int = MESSAGE_LOCK_TTL_BUFFER
    ) -> None:
        super().__init__(backend=backend, **_mutex_settings(message, ttl_buffer))


class AsyncMessageMutex(AsyncProcessLock):
    """``MessageMutex`` over an async backend."""

    def __init__(
        self, message: Message, backend: AsyncBackend, ttl_buffer: int = MESSAGE_LOCK_TTL_BUFFER
    ) -> None:
        super().__init__(backend=backend, **_mutex_settings(message, ttl_buffer))


def _linked_lock(message: Message, not_linked_ok: bool) -> LinkedLock | None:
    """The message's linked lock; ``None`` if there is none and that is fine, else raise."""
    if message.linked_lock is not None:
        return message.linked_lock
    if not_linked_ok:
        return None
    raise AttributeError("No lock linked to message")


def _released(message: Message, lock: BaseLock, released: bool) -> bool:
    """Unlink the lock once released; a lock the owner no longer held is logged as critical."""
    if released:
        message.linked_lock = None
    else:
        log.critical(
            "Failed to release lock %r of %s: owner %r no longer holds it (expired or taken)",
            lock.key,
            message.summary,
            lock.owner_id,
        )
    return released


def release_message_lock(message: Message, not_linked_ok: bool, target_backend: Backend) -> bool:
    """Release the lock linked to ``message`` through ``target_backend``; ``True`` if released.

    Returns ``False`` when the lock was no longer held (logged as critical), or when no lock is
    linked and ``not_linked_ok``; raises ``AttributeError`` when none is linked otherwise. The
    lock is rebuilt against ``target_backend``, which must be the backend it was taken with.
    """
    linked = _linked_lock(message, not_linked_ok)
    if linked is None:
        return False
    lock = Lock(linked["name"], backend=target_backend, owner_id=linked["owner_id"])
    return _released(message, lock, lock.release())


async def release_message_lock_async(
    message: Message, not_linked_ok: bool, target_backend: AsyncBackend
) -> bool:
    """``release_message_lock`` over an async backend."""
    linked = _linked_lock(message, not_linked_ok)
    if linked is None:
        return False
    lock = AsyncLock(linked["name"], backend=target_backend, owner_id=linked["owner_id"])
    return _released(message, lock, await lock.release())
