"""Distributed locks over Redis, compatible with python-redis-lock."""

from alsek.core.lock.asyncio import AsyncLock, AsyncProcessLock, AsyncThreadLock
from alsek.core.lock.base import (
    CURRENT_HOST_OWNER_ID,
    IF_ALREADY_ACQUIRED_TYPE,
    BaseLock,
    get_process_lock_owner_id,
    get_thread_lock_owner_id,
)
from alsek.core.lock.helpers import (
    AsyncMessageMutex,
    MessageMutex,
    release_message_lock,
    release_message_lock_async,
)
from alsek.core.lock.sync import Lock, ProcessLock, ThreadLock

__all__ = [
    "CURRENT_HOST_OWNER_ID",
    "IF_ALREADY_ACQUIRED_TYPE",
    "AsyncLock",
    "AsyncMessageMutex",
    "AsyncProcessLock",
    "AsyncThreadLock",
    "BaseLock",
    "Lock",
    "MessageMutex",
    "ProcessLock",
    "ThreadLock",
    "get_process_lock_owner_id",
    "get_thread_lock_owner_id",
    "release_message_lock",
    "release_message_lock_async",
]
