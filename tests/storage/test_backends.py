"""The backend contract: every test runs against real Redis and fakeredis, sync and asyncio.

Test bodies are written once; ``call`` awaits when the backend is async, and ``items``/``next_item``
drive sync and async iterators alike. A ``Target`` bundles the backend under test, a sync client
on the same data (to check TTLs and subscriber counts directly), and a factory for further
backends of the same kind (other namespaces, a second publisher).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio

from alsek.storage.backends import AsyncRedisBackend, BaseBackend, RedisBackend
from alsek.storage.serialization import BinarySerializer
from alsek.types import Empty

KINDS = ["redis", "redis-async", "fakeredis", "fakeredis-async"]


@dataclass
class Target:
    """The backend under test, a raw sync client on the same data, and a backend factory."""

    backend: BaseBackend
    raw: redis.Redis
    make: Callable[[str], BaseBackend]
    is_real_redis: bool
    _made: list[BaseBackend] = field(default_factory=list)

    def another(self, namespace: str) -> BaseBackend:
        backend = self.make(namespace)
        self._made.append(backend)
        return backend


async def call(backend: BaseBackend, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``backend.method`` and await the result when the backend is async."""
    result = getattr(backend, method)(*args, **kwargs)
    return await result if inspect.isawaitable(result) else result


async def items(iterable: Any) -> list[Any]:
    """Everything a sync iterable or an async iterator yields."""
    if hasattr(iterable, "__aiter__"):
        return [item async for item in iterable]
    return list(iterable)


async def next_item(iterator: Any, timeout: float = 5.0) -> Any:
    """The next item; a blocking sync iterator is advanced in a thread."""
    if hasattr(iterator, "__anext__"):
        return await asyncio.wait_for(iterator.__anext__(), timeout)
    return await asyncio.wait_for(asyncio.to_thread(next, iterator), timeout)


async def close_iterator(iterator: Any) -> None:
    if hasattr(iterator, "aclose"):
        await iterator.aclose()
    else:
        iterator.close()


async def close_backend(backend: BaseBackend) -> None:
    conn = backend.conn  # type: ignore[attr-defined]
    if isinstance(conn, redis.asyncio.Redis):
        await conn.aclose()
    else:
        conn.close()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


def subscribers(raw: redis.Redis, channel: str) -> int:
    return int(raw.pubsub_numsub(channel)[0][1])


@pytest.fixture(params=KINDS)
async def target(
    request: pytest.FixtureRequest, redis_url: str, namespace: str
) -> AsyncIterator[Target]:
    kind: str = request.param
    if kind.startswith("fakeredis"):
        # Clients share a fake server through its host name (not a FakeServer object), so their
        # connection settings stay picklable and encode/from_settings can be tested too.
        host = f"fake-{namespace}"
        raw: redis.Redis = fakeredis.FakeRedis(host=host, decode_responses=True)
        if kind == "fakeredis":

            def make(ns: str) -> BaseBackend:
                return RedisBackend(fakeredis.FakeRedis(host=host, decode_responses=True), ns)

        else:

            def make(ns: str) -> BaseBackend:
                client = fakeredis.FakeAsyncRedis(host=host, decode_responses=True)
                return AsyncRedisBackend(client, ns)

    else:
        raw = redis.Redis.from_url(redis_url, decode_responses=True)
        backend_class = RedisBackend if kind == "redis" else AsyncRedisBackend

        def make(ns: str) -> BaseBackend:
            return backend_class(redis_url, namespace=ns)

    result = Target(make(namespace), raw, make, is_real_redis=not kind.startswith("fakeredis"))
    yield result
    for backend in [result.backend, *result._made]:
        await close_backend(backend)
    raw.close()


# Names


async def test_full_name_adds_prefix_once(target: Target) -> None:
    backend = target.backend
    assert backend.full_name("a:b") == f"{backend.namespace}:a:b"
    assert backend.full_name(backend.full_name("a:b")) == f"{backend.namespace}:a:b"


async def test_short_name_strips_prefix_once(target: Target) -> None:
    backend = target.backend
    assert backend.short_name(f"{backend.namespace}:a:b") == "a:b"
    assert backend.short_name("a:b") == "a:b"


async def test_in_namespace_requires_prefix_with_colon(target: Target) -> None:
    backend = target.backend
    assert backend.in_namespace(f"{backend.namespace}:x")
    assert not backend.in_namespace(f"{backend.namespace}x")


async def test_short_name_treats_namespace_regex_characters_literally(target: Target) -> None:
    backend = target.another("a.b")
    assert backend.short_name("axb:key") == "axb:key"
    assert backend.short_name("a.b:key") == "key"


# set / get / exists / delete


async def test_set_then_get_returns_value(target: Target) -> None:
    await call(target.backend, "set", "k", {"a": [1, 2]})
    assert await call(target.backend, "get", "k") == {"a": [1, 2]}


async def test_set_stores_under_full_name(target: Target) -> None:
    await call(target.backend, "set", "k", 1)
    assert target.raw.get(f"{target.backend.namespace}:k") == "1"


async def test_get_missing_uses_backend_default(target: Target) -> None:
    if target.backend.IS_ASYNC:
        with pytest.raises(KeyError):
            await call(target.backend, "get", "missing")
    else:
        assert await call(target.backend, "get", "missing") is None


async def test_get_missing_with_empty_raises_key_error_naming_key(target: Target) -> None:
    with pytest.raises(KeyError, match="missing"):
        await call(target.backend, "get", "missing", default=Empty)


async def test_get_missing_with_empty_instance_raises_key_error(target: Target) -> None:
    with pytest.raises(KeyError):
        await call(target.backend, "get", "missing", default=Empty())


async def test_get_missing_with_default_returns_default(target: Target) -> None:
    assert await call(target.backend, "get", "missing", default="fallback") == "fallback"


async def test_get_stored_none_is_not_missing(target: Target) -> None:
    await call(target.backend, "set", "k", None)
    assert await call(target.backend, "get", "k", default=Empty) is None


async def test_exists_returns_bool(target: Target) -> None:
    assert await call(target.backend, "exists", "k") is False
    await call(target.backend, "set", "k", 1)
    assert await call(target.backend, "exists", "k") is True


async def test_set_nx_on_existing_key_raises_and_keeps_value(target: Target) -> None:
    await call(target.backend, "set", "k", "first")
    with pytest.raises(KeyError, match="already exists"):
        await call(target.backend, "set", "k", "second", nx=True)
    assert await call(target.backend, "get", "k") == "first"


async def test_set_nx_on_new_key_stores(target: Target) -> None:
    await call(target.backend, "set", "k", "v", nx=True)
    assert await call(target.backend, "get", "k") == "v"


async def test_set_with_ttl_sets_expiry_in_ms(target: Target) -> None:
    await call(target.backend, "set", "k", 1, ttl=60_000)
    assert 55_000 < target.raw.pttl(target.backend.full_name("k")) <= 60_000


async def test_set_without_ttl_keeps_existing_expiry(target: Target) -> None:
    await call(target.backend, "set", "k", 1, ttl=60_000)
    await call(target.backend, "set", "k", 2)
    assert 55_000 < target.raw.pttl(target.backend.full_name("k")) <= 60_000
    assert await call(target.backend, "get", "k") == 2


async def test_set_with_nx_and_ttl_sets_expiry(target: Target) -> None:
    await call(target.backend, "set", "k", 1, nx=True, ttl=60_000)
    assert 55_000 < target.raw.pttl(target.backend.full_name("k")) <= 60_000


async def test_set_without_ttl_on_new_key_never_expires(target: Target) -> None:
    await call(target.backend, "set", "k", 1)
    assert target.raw.pttl(target.backend.full_name("k")) == -1


async def test_key_with_short_ttl_expires(target: Target) -> None:
    await call(target.backend, "set", "k", 1, ttl=100)
    assert await call(target.backend, "exists", "k")
    deadline = time.monotonic() + 5
    while await call(target.backend, "exists", "k"):
        assert time.monotonic() < deadline, "key outlived its 100 ms TTL"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("ttl", [0, -5, 1.5, True, "100"])
async def test_set_rejects_bad_ttl_and_writes_nothing(target: Target, ttl: Any) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await call(target.backend, "set", "k", 1, ttl=ttl)
    assert not await call(target.backend, "exists", "k")


async def test_set_unencodable_value_raises_type_error_naming_key(target: Target) -> None:
    with pytest.raises(TypeError, match="'the-key'"):
        await call(target.backend, "set", "the-key", object())
    assert not await call(target.backend, "exists", "the-key")


async def test_set_unencodable_value_keeps_previous_value(target: Target) -> None:
    await call(target.backend, "set", "k", "old")
    with pytest.raises(TypeError):
        await call(target.backend, "set", "k", {1, 2})
    assert await call(target.backend, "get", "k") == "old"


async def test_binary_serializer_round_trips_non_json_values(target: Target) -> None:
    backend = target.another(target.backend.namespace)
    backend.serializer = BinarySerializer()
    await call(backend, "set", "k", (1, {2, 3}))
    assert await call(backend, "get", "k") == (1, {2, 3})


async def test_delete_removes_key(target: Target) -> None:
    await call(target.backend, "set", "k", 1)
    await call(target.backend, "delete", "k")
    assert not await call(target.backend, "exists", "k")


async def test_delete_missing_raises_key_error_naming_key(target: Target) -> None:
    with pytest.raises(KeyError, match="gone"):
        await call(target.backend, "delete", "gone")


async def test_delete_missing_ok_does_not_raise(target: Target) -> None:
    assert await call(target.backend, "delete", "gone", missing_ok=True) is None


# Priority sets


async def test_priority_get_returns_lowest_score_without_removing(target: Target) -> None:
    await call(target.backend, "priority_add", "p", "b", 5)
    await call(target.backend, "priority_add", "p", "a", 1)
    assert await call(target.backend, "priority_get", "p") == "a"
    assert await call(target.backend, "priority_get", "p") == "a"


async def test_priority_get_on_empty_set_returns_none(target: Target) -> None:
    assert await call(target.backend, "priority_get", "p") is None


async def test_priority_iter_yields_members_lowest_score_first(target: Target) -> None:
    for member, score in [("c", 3), ("a", 1), ("b", 2.5)]:
        await call(target.backend, "priority_add", "p", member, score)
    assert await items(target.backend.priority_iter("p")) == ["a", "b", "c"]


async def test_priority_add_existing_member_updates_score(target: Target) -> None:
    await call(target.backend, "priority_add", "p", "a", 1)
    await call(target.backend, "priority_add", "p", "b", 2)
    await call(target.backend, "priority_add", "p", "a", 3)
    assert await items(target.backend.priority_iter("p")) == ["b", "a"]


async def test_priority_remove_removes_member(target: Target) -> None:
    await call(target.backend, "priority_add", "p", "a", 1)
    await call(target.backend, "priority_add", "p", "b", 2)
    await call(target.backend, "priority_remove", "p", "a")
    assert await items(target.backend.priority_iter("p")) == ["b"]


async def test_priority_set_is_namespaced(target: Target) -> None:
    await call(target.backend, "priority_add", "p", "a", 1)
    assert target.raw.zrange(f"{target.backend.namespace}:p", 0, -1) == ["a"]


# Pub/sub


async def test_sub_receives_decoded_message_published_by_another_client(target: Target) -> None:
    channel = f"{target.backend.namespace}-channel"
    stream = target.backend.sub(channel)
    receiving = asyncio.ensure_future(next_item(stream))
    await wait_until(lambda: subscribers(target.raw, channel) == 1)
    publisher = target.another(target.backend.namespace)
    await call(publisher, "pub", channel, {"status": "done"})
    entry = await asyncio.wait_for(receiving, 5)
    assert entry["type"] == "message"
    assert entry["channel"] == channel
    assert entry["data"] == {"status": "done"}
    await close_iterator(stream)


async def test_pub_channel_is_not_namespaced(target: Target) -> None:
    channel = f"{target.backend.namespace}-plain"
    pubsub = target.raw.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    await call(target.backend, "pub", channel, [1])
    message = pubsub.get_message(timeout=5)
    pubsub.close()
    assert message is not None and message["data"] == "[1]"


async def test_closing_sub_unsubscribes(target: Target) -> None:
    channel = f"{target.backend.namespace}-closing"
    stream = target.backend.sub(channel)
    receiving = asyncio.ensure_future(next_item(stream))
    await wait_until(lambda: subscribers(target.raw, channel) == 1)
    await call(target.backend, "pub", channel, "hello")
    assert (await asyncio.wait_for(receiving, 5))["data"] == "hello"
    await close_iterator(stream)
    await wait_until(lambda: subscribers(target.raw, channel) == 0)


async def test_pub_unencodable_value_raises_type_error(target: Target) -> None:
    with pytest.raises(TypeError, match="the-channel"):
        await call(target.backend, "pub", "the-channel", object())


# scan / count / clear_namespace


async def test_scan_yields_short_names_of_own_namespace_only(target: Target) -> None:
    other = target.another(f"{target.backend.namespace}-other")
    await call(target.backend, "set", "a:1", 1)
    await call(target.backend, "set", "b:1", 1)
    await call(other, "set", "a:2", 1)
    assert sorted(await items(target.backend.scan())) == ["a:1", "b:1"]


async def test_scan_filters_by_pattern(target: Target) -> None:
    await call(target.backend, "set", "a:1", 1)
    await call(target.backend, "set", "b:1", 1)
    assert await items(target.backend.scan("a:*")) == ["a:1"]


async def test_scan_accepts_pattern_with_namespace_prefix(target: Target) -> None:
    await call(target.backend, "set", "a:1", 1)
    pattern = target.backend.full_name("a:*")
    assert await items(target.backend.scan(pattern)) == ["a:1"]


async def test_scan_treats_namespace_glob_characters_literally(target: Target) -> None:
    base = target.backend.namespace
    starred = target.another(f"{base}*")
    lookalike = target.another(f"{base}x")
    await call(starred, "set", "k", 1)
    await call(lookalike, "set", "k", 1)
    assert await items(starred.scan()) == ["k"]
    assert await call(starred, "count") == 1


async def test_count_counts_matching_keys(target: Target) -> None:
    for name in ["a:1", "a:2", "b:1"]:
        await call(target.backend, "set", name, 1)
    assert await call(target.backend, "count") == 3
    assert await call(target.backend, "count", "a:*") == 2


async def test_clear_namespace_deletes_own_keys_and_returns_count(target: Target) -> None:
    other = target.another(f"{target.backend.namespace}-other")
    for name in ["a", "b", "c"]:
        await call(target.backend, "set", name, 1)
    await call(target.backend, "priority_add", "p", "x", 1)
    await call(other, "set", "survivor", 1)
    assert await call(target.backend, "clear_namespace") == 4
    assert await call(target.backend, "count") == 0
    assert await call(other, "get", "survivor") == 1


async def test_clear_namespace_leaves_keys_outside_the_prefix(target: Target) -> None:
    lock_key = f"lock:{target.backend.namespace}:held"
    target.raw.set(lock_key, "owner")
    await call(target.backend, "set", "a", 1)
    assert await call(target.backend, "clear_namespace") == 1
    assert target.raw.get(lock_key) == "owner"


async def test_clear_namespace_deletes_more_than_one_batch(target: Target) -> None:
    total = 2_345
    target.raw.mset({f"{target.backend.namespace}:k{i}": "1" for i in range(total)})
    assert await call(target.backend, "clear_namespace") == total
    assert await call(target.backend, "count") == 0


async def test_clear_namespace_on_empty_namespace_returns_zero(target: Target) -> None:
    assert await call(target.backend, "clear_namespace") == 0


# encode / from_settings


async def test_encode_from_settings_rebuilds_backend_reading_same_data(target: Target) -> None:
    import dill

    await call(target.backend, "set", "k", "v")  # the pool now holds a live connection
    decoded = dill.loads(target.backend.encode())
    rebuilt = decoded["backend"].from_settings(decoded["settings"])
    target._made.append(rebuilt)
    assert type(rebuilt) is type(target.backend)
    assert rebuilt.namespace == target.backend.namespace
    assert rebuilt.serializer == target.backend.serializer
    assert await call(rebuilt, "get", "k") == "v"


async def test_from_settings_creates_a_new_connection_pool(target: Target) -> None:
    import dill

    decoded = dill.loads(target.backend.encode())
    rebuilt = decoded["backend"].from_settings(decoded["settings"])
    target._made.append(rebuilt)
    assert rebuilt.conn.connection_pool is not target.backend.conn.connection_pool


# Flags and repr


async def test_flags_describe_backend(target: Target) -> None:
    assert target.backend.SUPPORTS_PUBSUB is True
    assert target.backend.IS_ASYNC is isinstance(target.backend, AsyncRedisBackend)


async def test_repr_shows_namespace_and_serializer(target: Target) -> None:
    text = repr(target.backend)
    assert target.backend.namespace in text
    assert "JsonSerializer()" in text
