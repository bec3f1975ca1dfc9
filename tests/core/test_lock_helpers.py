"""Message locks: one mutex per delivery attempt, and releasing the lock linked to a message."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from alsek.core.lock import (
    AsyncMessageMutex,
    Lock,
    MessageMutex,
    get_process_lock_owner_id,
    release_message_lock,
    release_message_lock_async,
)
from alsek.core.message import Message
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from alsek.storage.backends.base import BaseBackend
from alsek.utils.namespacing import get_message_signature
from tests.conftest import url_client

pytestmark = pytest.mark.servers("redis", "cluster")


@dataclass
class Kit:
    """A flavour's mutex class, release function and backend, plus a raw client."""

    mutex_class: type
    release: Any
    backend: BaseBackend
    raw: redis.Redis


async def call(target: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    result = getattr(target, method)(*args, **kwargs)
    return await result if inspect.isawaitable(result) else result


async def release(kit: Kit, message: Message, not_linked_ok: bool = False) -> Any:
    result = kit.release(message, not_linked_ok=not_linked_ok, target_backend=kit.backend)
    return await result if inspect.isawaitable(result) else result


@pytest.fixture(params=["sync", "async"])
async def kit(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> AsyncIterator[Kit]:
    raw = url_client(redis_url)
    if request.param == "sync":
        backend: Any = RedisBackend(redis_url, namespace=namespace)
        yield Kit(MessageMutex, release_message_lock, backend, raw)
        backend.conn.close()
    else:
        backend = AsyncRedisBackend(redis_url, namespace=namespace)
        yield Kit(AsyncMessageMutex, release_message_lock_async, backend, raw)
        await backend.conn.aclose()
    raw.close()


def make_message(**kwargs: Any) -> Message:
    return Message("report", queue="emails", timeout=10_000, **kwargs)


async def test_message_mutex_is_named_for_the_delivery_attempt(kit: Kit) -> None:
    message = make_message(retries=2)
    mutex = kit.mutex_class(message, kit.backend)
    assert mutex.name == get_message_signature(message)
    assert mutex.key.endswith(f":messages:{message.uuid}:retry:2")


async def test_message_mutex_ttl_is_timeout_plus_buffer(kit: Kit) -> None:
    mutex = kit.mutex_class(make_message(), kit.backend)
    await call(mutex, "acquire")
    assert mutex.ttl == 100_000
    assert 95_000 < kit.raw.pttl(mutex.key) <= 100_000


async def test_message_mutex_takes_a_custom_ttl_buffer(kit: Kit) -> None:
    mutex = kit.mutex_class(make_message(), kit.backend, ttl_buffer=5_000)
    assert mutex.ttl == 15_000


async def test_message_mutex_is_owned_by_this_process(kit: Kit) -> None:
    mutex = kit.mutex_class(make_message(), kit.backend)
    await call(mutex, "acquire")
    assert kit.raw.get(mutex.key) == get_process_lock_owner_id()
    assert kit.raw.get(mutex.key).endswith(f":process:{os.getpid()}")


async def test_message_mutex_outlives_its_with_block(kit: Kit) -> None:
    mutex = kit.mutex_class(make_message(), kit.backend)
    if kit.backend.IS_ASYNC:
        async with mutex:
            await mutex.acquire()
    else:
        with mutex:
            mutex.acquire()
    assert kit.raw.get(mutex.key) == mutex.owner_id


async def test_release_message_lock_releases_and_unlinks(kit: Kit) -> None:
    message = make_message()
    mutex = kit.mutex_class(message, kit.backend)
    await call(mutex, "acquire")
    message.link_lock(mutex)
    assert await release(kit, message) is True
    assert message.linked_lock is None
    assert not kit.raw.exists(mutex.key)


async def test_release_message_lock_uses_the_owner_id_that_travelled_with_it(kit: Kit) -> None:
    message = make_message()
    mutex = kit.mutex_class(message, kit.backend)
    await call(mutex, "acquire")
    message.link_lock(mutex)
    # What a child process receives: the same message, the link carrying the owner id.
    travelled = make_message(uuid=message.uuid, linked_lock=message.linked_lock)
    assert await release(kit, travelled) is True
    assert not kit.raw.exists(mutex.key)


async def test_release_message_lock_no_longer_held_returns_false_and_logs_critical(
    kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    message = make_message()
    mutex = kit.mutex_class(message, kit.backend)
    message.link_lock(mutex)
    kit.raw.set(mutex.key, "someone-else")
    with caplog.at_level(logging.CRITICAL, logger="alsek"):
        assert await release(kit, message) is False
    assert any(record.levelno == logging.CRITICAL for record in caplog.records)
    assert message.linked_lock is not None
    assert kit.raw.get(mutex.key) == "someone-else"


async def test_release_message_lock_without_link_raises_attribute_error(kit: Kit) -> None:
    with pytest.raises(AttributeError, match="No lock linked to message"):
        await release(kit, make_message())


async def test_release_message_lock_without_link_and_not_linked_ok_returns_false(
    kit: Kit,
) -> None:
    assert await release(kit, make_message(), not_linked_ok=True) is False


def test_message_lock_taken_in_another_thread_is_released_through_the_link(
    redis_url: str, namespace: str
) -> None:
    import threading

    backend = RedisBackend(redis_url, namespace=namespace)
    message = make_message()

    def take() -> None:
        lock = Lock("custom", backend, owner_id="lock:elsewhere:process:1")
        assert lock.acquire()
        message.link_lock(lock)

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(10)
    assert release_message_lock(message, not_linked_ok=False, target_backend=backend) is True
    assert Lock("custom", backend).get_holder() is None
    backend.conn.close()
