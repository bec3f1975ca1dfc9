"""Lock behaviour, written once and run for the sync locks and their asyncio twins, on real Redis.

``call`` awaits when the lock is async; ``call_blocking`` runs a sync call in a worker thread so a
test can act (release, expire) while it waits.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis_lock
from redis.crc import key_slot

from alsek.core.lock import (
    CURRENT_HOST_OWNER_ID,
    AsyncLock,
    AsyncProcessLock,
    AsyncThreadLock,
    BaseLock,
    Lock,
    ProcessLock,
    ThreadLock,
    get_process_lock_owner_id,
    get_thread_lock_owner_id,
)
from alsek.core.lock.base import lock_scripts
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from alsek.storage.backends.base import BaseBackend
from tests.conftest import url_client

pytestmark = pytest.mark.servers("redis", "cluster")


@dataclass
class Kit:
    """Lock classes of one flavour, their backend, and a raw client to look at Redis."""

    lock_class: type[BaseLock]
    process_lock_class: type[BaseLock]
    backend: BaseBackend
    raw: redis.Redis

    def lock(self, name: str = "job", **kwargs: Any) -> Any:
        return self.lock_class(name, self.backend, **kwargs)  # type: ignore[call-arg]


async def call(lock: BaseLock, method: str, *args: Any, **kwargs: Any) -> Any:
    result = getattr(lock, method)(*args, **kwargs)
    return await result if inspect.isawaitable(result) else result


async def call_blocking(lock: BaseLock, method: str, *args: Any, **kwargs: Any) -> Any:
    """Like ``call``, but a sync call runs in a thread so the test keeps going meanwhile."""
    if isinstance(lock, AsyncLock):
        return await getattr(lock, method)(*args, **kwargs)
    return await asyncio.to_thread(getattr(lock, method), *args, **kwargs)


@pytest.fixture(params=["sync", "async"])
async def kit(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> AsyncIterator[Kit]:
    raw = url_client(redis_url)
    if request.param == "sync":
        backend: BaseBackend = RedisBackend(redis_url, namespace=namespace)
        yield Kit(Lock, ProcessLock, backend, raw)
        backend.conn.close()  # type: ignore[attr-defined]
    else:
        backend = AsyncRedisBackend(redis_url, namespace=namespace)
        yield Kit(AsyncLock, AsyncProcessLock, backend, raw)
        await backend.conn.aclose()  # type: ignore[attr-defined]
    raw.close()


@pytest.fixture
def sync_backend(redis_url: str, namespace: str) -> Any:
    backend = RedisBackend(redis_url, namespace=namespace)
    yield backend
    backend.conn.close()


@pytest.fixture
async def async_backend(redis_url: str, namespace: str) -> AsyncIterator[AsyncRedisBackend]:
    backend = AsyncRedisBackend(redis_url, namespace=namespace)
    yield backend
    await backend.conn.aclose()


async def wait_until_gone(raw: redis.Redis, key: str, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while raw.exists(key):
        assert time.monotonic() - started < timeout, f"{key} still exists"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


# Acquire


async def test_acquire_free_lock_stores_owner_id_under_redis_lock_key(kit: Kit) -> None:
    lock = kit.lock("job", owner_id="me")
    assert await call(lock, "acquire") is True
    assert kit.raw.get(f"lock:{kit.backend.namespace}:job") == "me"


async def test_acquire_sets_ttl_to_the_millisecond(kit: Kit) -> None:
    lock = kit.lock(ttl=1_500)
    await call(lock, "acquire")
    assert 1_000 < kit.raw.pttl(lock.key) <= 1_500


async def test_acquire_with_sub_second_ttl_expires(kit: Kit) -> None:
    lock = kit.lock(ttl=100)
    await call(lock, "acquire")
    assert kit.raw.pttl(lock.key) > 0
    assert await wait_until_gone(kit.raw, lock.key) < 2


async def test_acquire_without_ttl_never_expires(kit: Kit) -> None:
    lock = kit.lock(ttl=None)
    await call(lock, "acquire")
    assert kit.raw.pttl(lock.key) == -1


async def test_acquire_lock_held_by_another_owner_returns_false(kit: Kit) -> None:
    await call(kit.lock(owner_id="other"), "acquire")
    assert await call(kit.lock(owner_id="me"), "acquire") is False


async def test_acquire_already_held_returns_false_by_default(kit: Kit) -> None:
    lock = kit.lock()
    await call(lock, "acquire")
    assert await call(lock, "acquire") is False


async def test_acquire_already_held_with_return_true_returns_true(kit: Kit) -> None:
    lock = kit.lock()
    await call(lock, "acquire")
    assert await call(lock, "acquire", if_already_acquired="return_true") is True


async def test_acquire_already_held_with_raise_error_raises(kit: Kit) -> None:
    lock = kit.lock()
    await call(lock, "acquire")
    with pytest.raises(redis_lock.AlreadyAcquired):
        await call(lock, "acquire", if_already_acquired="raise_error")


async def test_acquire_already_held_means_same_owner_id_not_same_object(kit: Kit) -> None:
    await call(kit.lock(owner_id="shared"), "acquire")
    assert await call(kit.lock(owner_id="shared"), "acquire", if_already_acquired="return_true")


async def test_acquire_rejects_unknown_if_already_acquired(kit: Kit) -> None:
    with pytest.raises(ValueError, match="if_already_acquired"):
        await call(kit.lock(), "acquire", if_already_acquired="ignore")


@pytest.mark.parametrize("wait", [-1, "5", True])
async def test_acquire_rejects_bad_wait(kit: Kit, wait: Any) -> None:
    with pytest.raises(ValueError, match="wait"):
        await call(kit.lock(), "acquire", wait=wait)


async def test_acquire_waits_until_holder_releases(kit: Kit) -> None:
    holder = kit.lock(owner_id="holder")
    await call(holder, "acquire")
    waiter = asyncio.ensure_future(call_blocking(kit.lock(owner_id="waiter"), "acquire", wait=10))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    started = time.monotonic()
    await call(holder, "release")
    assert await asyncio.wait_for(waiter, 5) is True
    assert time.monotonic() - started < 1
    assert kit.raw.get(holder.key) == "waiter"


async def test_acquire_waits_until_holder_lock_expires(kit: Kit) -> None:
    await call(kit.lock(owner_id="holder", ttl=200), "acquire")
    started = time.monotonic()
    assert await call_blocking(kit.lock(owner_id="waiter"), "acquire", wait=5) is True
    assert time.monotonic() - started < 1.5


async def test_acquire_wait_gives_up_after_wait_seconds(kit: Kit) -> None:
    await call(kit.lock(owner_id="holder"), "acquire")
    started = time.monotonic()
    assert await call_blocking(kit.lock(owner_id="waiter"), "acquire", wait=0.3) is False
    assert 0.28 < time.monotonic() - started < 2


async def test_acquire_wait_longer_than_ttl_is_allowed(kit: Kit) -> None:
    waiter = kit.lock(owner_id="waiter", ttl=1_000)
    assert await call(waiter, "acquire", wait=30) is True


# Release


async def test_release_held_lock_deletes_key_and_returns_true(kit: Kit) -> None:
    lock = kit.lock()
    await call(lock, "acquire")
    assert await call(lock, "release") is True
    assert not kit.raw.exists(lock.key)


async def test_release_pushes_short_lived_signal(kit: Kit) -> None:
    lock = kit.lock()
    await call(lock, "acquire")
    await call(lock, "release")
    assert kit.raw.lrange(lock.signal_key, 0, -1) == ["1"]
    assert 0 < kit.raw.pttl(lock.signal_key) <= 1_000


async def test_release_not_held_returns_false(kit: Kit) -> None:
    assert await call(kit.lock(), "release") is False


async def test_release_not_held_with_raise_raises_not_acquired(kit: Kit) -> None:
    with pytest.raises(redis_lock.NotAcquired):
        await call(kit.lock(), "release", raise_if_not_acquired=True)


async def test_release_leaves_another_owners_lock_alone(kit: Kit) -> None:
    await call(kit.lock(owner_id="other"), "acquire")
    assert await call(kit.lock(owner_id="me"), "release") is False
    assert kit.raw.get(f"lock:{kit.backend.namespace}:job") == "other"


# Holder


async def test_get_holder_of_free_lock_is_none(kit: Kit) -> None:
    assert await call(kit.lock(), "get_holder") is None


async def test_get_holder_returns_owner_id(kit: Kit) -> None:
    await call(kit.lock(owner_id="holder"), "acquire")
    assert await call(kit.lock(owner_id="me"), "get_holder") == "holder"


async def test_is_held_is_true_only_for_the_holding_owner(kit: Kit) -> None:
    await call(kit.lock(owner_id="holder"), "acquire")
    assert await call(kit.lock(owner_id="holder"), "is_held") is True
    assert await call(kit.lock(owner_id="me"), "is_held") is False


# Extend


async def test_extend_resets_ttl_to_given_ms(kit: Kit) -> None:
    lock = kit.lock(ttl=1_000)
    await call(lock, "acquire")
    assert await call(lock, "extend", 60_000) is True
    assert 55_000 < kit.raw.pttl(lock.key) <= 60_000


async def test_extend_defaults_to_lock_ttl(kit: Kit) -> None:
    lock = kit.lock(ttl=60_000)
    await call(lock, "acquire")
    kit.raw.pexpire(lock.key, 500)
    assert await call(lock, "extend") is True
    assert 55_000 < kit.raw.pttl(lock.key) <= 60_000


async def test_extend_lock_of_another_owner_returns_false_and_keeps_ttl(kit: Kit) -> None:
    await call(kit.lock(owner_id="other", ttl=5_000), "acquire")
    assert await call(kit.lock(owner_id="me"), "extend", 60_000) is False
    assert kit.raw.pttl(f"lock:{kit.backend.namespace}:job") <= 5_000


async def test_extend_expired_lock_returns_false(kit: Kit) -> None:
    lock = kit.lock(ttl=50)
    await call(lock, "acquire")
    await wait_until_gone(kit.raw, lock.key)
    assert await call(lock, "extend") is False
    assert not kit.raw.exists(lock.key)


async def test_extend_without_any_ttl_raises_value_error(kit: Kit) -> None:
    lock = kit.lock(ttl=None)
    await call(lock, "acquire")
    with pytest.raises(ValueError, match="ttl"):
        await call(lock, "extend")


async def test_extend_rejects_non_positive_ttl(kit: Kit) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await call(kit.lock(), "extend", 0)


# Context managers


async def test_context_manager_does_not_acquire_but_releases_on_exit(kit: Kit) -> None:
    lock = kit.lock()
    if isinstance(lock, AsyncLock):
        async with lock as entered:
            assert entered is lock
            assert not kit.raw.exists(lock.key)
            await lock.acquire()
    else:
        with lock as entered:
            assert entered is lock
            assert not kit.raw.exists(lock.key)
            lock.acquire()
    assert not kit.raw.exists(lock.key)


async def test_context_manager_without_auto_release_keeps_lock(kit: Kit) -> None:
    lock = kit.lock(auto_release=False)
    if isinstance(lock, AsyncLock):
        async with lock:
            await lock.acquire()
    else:
        with lock:
            lock.acquire()
    assert kit.raw.get(lock.key) == lock.owner_id


# Validation and construction


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "name"),
        ({"owner_id": ""}, "owner_id"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": -5}, "ttl"),
        ({"ttl": 1.5}, "ttl"),
    ],
)
async def test_invalid_settings_raise_value_error(
    kit: Kit, kwargs: dict[str, Any], message: str
) -> None:
    settings = {"name": "job", **kwargs}
    with pytest.raises(ValueError, match=message):
        kit.lock_class(backend=kit.backend, **settings)  # type: ignore[call-arg]


async def test_validate_on_init_false_defers_validation(kit: Kit) -> None:
    lock = kit.lock("", validate_on_init=False)
    with pytest.raises(ValueError, match="name"):
        lock.validate()


def test_lock_needs_a_sync_redis_backend(async_backend: AsyncRedisBackend) -> None:
    with pytest.raises(NotImplementedError, match=r"Only RedisBackend is supported\."):
        Lock("job", async_backend)  # type: ignore[arg-type]


def test_async_lock_needs_an_async_redis_backend(sync_backend: RedisBackend) -> None:
    with pytest.raises(NotImplementedError, match=r"Only AsyncRedisBackend is supported\."):
        AsyncLock("job", sync_backend)  # type: ignore[arg-type]


async def test_full_name_is_namespaced_and_key_has_lock_prefix(kit: Kit) -> None:
    lock = kit.lock("a:b")
    assert lock.full_name == f"{kit.backend.namespace}:a:b"
    assert lock.key == f"lock:{kit.backend.namespace}:a:b"
    if kit.backend.is_cluster:  # the signal list must share the lock key's slot
        assert lock.signal_key == f"lock-signal:{{lock:{kit.backend.namespace}:a:b}}"
        assert key_slot(lock.signal_key.encode()) == key_slot(lock.key.encode())
    else:
        assert lock.signal_key == f"lock-signal:{kit.backend.namespace}:a:b"


async def test_a_name_with_a_hash_tag_keeps_the_plain_signal_list(kit: Kit) -> None:
    lock = kit.lock("{reports}:nightly")
    assert lock.signal_key == f"lock-signal:{kit.backend.namespace}:{{reports}}:nightly"
    assert await call(lock, "acquire")
    assert await call(lock, "release")


async def test_a_name_whose_brace_breaks_the_signal_tag_is_refused_on_a_cluster(kit: Kit) -> None:
    if not kit.backend.is_cluster:
        lock = kit.lock("odd}name")
        assert await call(lock, "acquire") and await call(lock, "release")
        return
    with pytest.raises(ValueError, match="hash tag of its own"):
        kit.lock("odd}name")


async def test_repr_shows_settings(kit: Kit) -> None:
    text = repr(kit.lock("job", ttl=5_000, auto_release=False))
    assert f"{kit.lock_class.__name__}(name='job'" in text
    assert "ttl=5000" in text
    assert "auto_release=False" in text


# Process and thread owners


def test_owner_ids_name_host_process_and_thread() -> None:
    import os
    import socket
    import threading

    assert f"lock:{socket.gethostname()}" == CURRENT_HOST_OWNER_ID
    assert get_process_lock_owner_id() == f"{CURRENT_HOST_OWNER_ID}:process:{os.getpid()}"
    expected = f"{CURRENT_HOST_OWNER_ID}:process:{os.getpid()}:thread:{threading.get_ident()}"
    assert get_thread_lock_owner_id() == expected


def test_thread_owner_id_differs_between_threads() -> None:
    import threading

    other: list[str] = []
    thread = threading.Thread(target=lambda: other.append(get_thread_lock_owner_id()))
    thread.start()
    thread.join(10)
    assert other and other[0] != get_thread_lock_owner_id()


async def test_process_lock_owner_id_is_recomputed_on_access(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = kit.process_lock_class("job", kit.backend)  # type: ignore[call-arg]
    monkeypatch.setattr("alsek.core.lock.base.os.getpid", lambda: 4242)
    assert lock.owner_id == f"{CURRENT_HOST_OWNER_ID}:process:4242"


async def test_process_lock_is_owned_by_this_process(kit: Kit) -> None:
    import os

    lock = kit.process_lock_class("job", kit.backend)  # type: ignore[call-arg]
    await call(lock, "acquire")
    assert kit.raw.get(lock.key).endswith(f":process:{os.getpid()}")


async def test_process_lock_refuses_an_owner_id(kit: Kit) -> None:
    with pytest.raises(TypeError, match="owner_id"):
        kit.process_lock_class("job", kit.backend, owner_id="x")  # type: ignore[call-arg]


async def test_process_lock_validates_name(kit: Kit) -> None:
    with pytest.raises(ValueError, match="name"):
        kit.process_lock_class("", kit.backend)  # type: ignore[call-arg]


def test_thread_lock_is_not_held_by_another_thread(sync_backend: RedisBackend) -> None:
    import threading

    lock = ThreadLock("job", sync_backend)
    assert lock.acquire() is True
    seen: dict[str, Any] = {}

    def other_thread() -> None:
        seen["is_held"] = lock.is_held()
        seen["released"] = lock.release()
        seen["acquired"] = lock.acquire()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert seen == {"is_held": False, "released": False, "acquired": False}
    assert lock.is_held() is True


async def test_async_thread_lock_owner_is_the_loop_thread(async_backend: AsyncRedisBackend) -> None:
    import threading

    lock = AsyncThreadLock("job", async_backend)
    await lock.acquire()
    assert (await lock.get_holder()).endswith(f":thread:{threading.get_ident()}")


# Sync and async interoperate, and with python-redis-lock


async def test_lock_scripts_are_registered_once_per_client(kit: Kit) -> None:
    conn = kit.backend.conn  # type: ignore[attr-defined]
    assert lock_scripts(conn) is lock_scripts(conn)


async def test_lock_taken_by_sync_lock_is_released_by_async_lock(
    sync_backend: RedisBackend, async_backend: AsyncRedisBackend
) -> None:
    assert Lock("job", sync_backend, owner_id="shared").acquire()
    assert await AsyncLock("job", async_backend, owner_id="shared").release() is True
    assert Lock("job", sync_backend).get_holder() is None


async def test_lock_taken_by_async_lock_is_released_by_sync_lock(
    sync_backend: RedisBackend, async_backend: AsyncRedisBackend
) -> None:
    assert await AsyncLock("job", async_backend, owner_id="shared").acquire()
    assert Lock("job", sync_backend, owner_id="shared").release() is True
    assert await AsyncLock("job", async_backend).get_holder() is None


async def test_async_waiter_wakes_when_sync_holder_releases(
    sync_backend: RedisBackend, async_backend: AsyncRedisBackend
) -> None:
    holder = Lock("job", sync_backend, owner_id="holder")
    holder.acquire()
    waiter = asyncio.ensure_future(AsyncLock("job", async_backend).acquire(wait=10))
    await asyncio.sleep(0.05)
    holder.release()
    assert await asyncio.wait_for(waiter, 2) is True


def single_server_only(backend: BaseBackend) -> None:
    if backend.is_cluster:
        pytest.skip("python-redis-lock takes single-server clients only")


def test_the_lock_property_explains_a_cluster_has_no_python_redis_lock(
    sync_backend: RedisBackend,
) -> None:
    if not sync_backend.is_cluster:
        pytest.skip("a cluster case")
    with pytest.raises(NotImplementedError, match="Redis Cluster"):
        _ = Lock("job", sync_backend).lock


def test_lock_property_is_python_redis_lock_on_the_same_key(sync_backend: RedisBackend) -> None:
    single_server_only(sync_backend)
    lock = Lock("job", sync_backend, ttl=1_500, owner_id="me")
    assert isinstance(lock.lock, redis_lock.Lock)
    assert lock.lock._name == lock.key
    assert lock.lock.id == "me"
    assert lock.lock._expire == 2  # seconds, rounded up


def test_python_redis_lock_releases_a_lock_taken_by_lock(sync_backend: RedisBackend) -> None:
    single_server_only(sync_backend)
    lock = Lock("job", sync_backend, owner_id="me")
    lock.acquire()
    redis_lock.Lock(sync_backend.conn, name=lock.full_name, id="me").release()
    assert lock.get_holder() is None


def test_lock_releases_a_lock_taken_by_python_redis_lock(sync_backend: RedisBackend) -> None:
    single_server_only(sync_backend)
    lock = Lock("job", sync_backend, owner_id="me")
    assert redis_lock.Lock(sync_backend.conn, name=lock.full_name, id="me").acquire(blocking=False)
    assert lock.is_held()
    assert lock.release() is True


def test_sub_second_ttl_never_becomes_zero_for_python_redis_lock(
    sync_backend: RedisBackend,
) -> None:
    single_server_only(sync_backend)
    lock = Lock("job", sync_backend, ttl=100)
    assert lock.lock._expire == 1


def test_async_lock_has_no_python_redis_lock(async_backend: AsyncRedisBackend) -> None:
    with pytest.raises(NotImplementedError, match="sync Lock"):
        _ = AsyncLock("job", async_backend).lock


async def test_async_acquire_wait_does_not_block_event_loop(
    async_backend: AsyncRedisBackend,
) -> None:
    await AsyncLock("job", async_backend, owner_id="holder").acquire()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.ensure_future(ticker())
    acquired = await AsyncLock("job", async_backend, owner_id="waiter").acquire(wait=0.3)
    ticking.cancel()
    assert acquired is False
    assert ticks >= 10
