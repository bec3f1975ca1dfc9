"""Building Redis backends: accepted connections, refused input, lazy clients, other processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from typing import Any

import dill
import fakeredis
import pytest
import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from alsek.storage.backends import AsyncRedisBackend, LazyClient, RedisBackend
from alsek.storage.backends.base import BaseBackend
from alsek.storage.serialization import BinarySerializer
from alsek.testing import SentinelServers
from tests.polling import call

BACKENDS = [RedisBackend, AsyncRedisBackend]


def client_for(backend_class: type[BaseBackend], url: str, **kwargs: Any) -> Any:
    """A client of the kind ``backend_class`` accepts."""
    client_class = redis.Redis if backend_class is RedisBackend else redis.asyncio.Redis
    return client_class.from_url(url, **kwargs)


def wrong_client_for(backend_class: type[BaseBackend], url: str) -> Any:
    """A decoding client of the other kind (sync for async, async for sync)."""
    other = AsyncRedisBackend if backend_class is RedisBackend else RedisBackend
    return client_for(other, url, decode_responses=True)


async def close(client: Any) -> None:
    if isinstance(client, redis.asyncio.Redis):
        await client.aclose()
    else:
        client.close()


@pytest.fixture
async def closing() -> AsyncIterator[Callable[[Any], Any]]:
    """Register clients (or backends) to close when the test ends."""
    opened: list[Any] = []
    yield lambda thing: opened.append(thing) or thing
    for thing in opened:
        await close(thing.conn if isinstance(thing, BaseBackend) else thing)


@pytest.mark.parametrize("backend_class", BACKENDS)
async def test_url_conn_builds_decoding_client(
    backend_class: type[BaseBackend], redis_url: str, closing: Callable[[Any], Any]
) -> None:
    backend: Any = closing(backend_class(redis_url))
    assert isinstance(backend.conn, backend_class.CLIENT_CLASS)  # type: ignore[arg-type]
    assert backend.conn.connection_pool.connection_kwargs["decode_responses"] is True


@pytest.mark.parametrize("backend_class", BACKENDS)
async def test_no_conn_means_local_default_server(
    backend_class: type[BaseBackend], closing: Callable[[Any], Any]
) -> None:
    backend: Any = closing(backend_class())
    kwargs = backend.conn.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("localhost", 6379, 0)
    assert kwargs["decode_responses"] is True


@pytest.mark.parametrize("backend_class", BACKENDS)
async def test_decoding_client_is_used_as_is(
    backend_class: type[BaseBackend], redis_url: str, closing: Callable[[Any], Any]
) -> None:
    client = closing(client_for(backend_class, redis_url, decode_responses=True))
    assert backend_class(client).conn is client  # type: ignore[call-arg]


async def test_sync_backend_accepts_redis_subclass(redis_url: str) -> None:
    class TracingRedis(redis.Redis):
        pass

    client = TracingRedis.from_url(redis_url, decode_responses=True)
    assert RedisBackend(client).conn is client
    client.close()


@pytest.mark.parametrize("backend_class", BACKENDS)
@pytest.mark.parametrize("conn", [42, b"redis://localhost", object()])
def test_unsupported_conn_type_raises_value_error_naming_it(
    backend_class: type[BaseBackend], conn: Any
) -> None:
    with pytest.raises(ValueError, match=type(conn).__name__):
        backend_class(conn)  # type: ignore[call-arg]


@pytest.mark.parametrize("backend_class", BACKENDS)
async def test_client_of_the_other_kind_raises_value_error_naming_it(
    backend_class: type[BaseBackend], redis_url: str, closing: Callable[[Any], Any]
) -> None:
    client = closing(wrong_client_for(backend_class, redis_url))
    with pytest.raises(ValueError, match=type(client).__qualname__):
        backend_class(client)  # type: ignore[call-arg]


@pytest.mark.parametrize("backend_class", BACKENDS)
async def test_client_without_decode_responses_raises_value_error(
    backend_class: type[BaseBackend], redis_url: str, closing: Callable[[Any], Any]
) -> None:
    client = closing(client_for(backend_class, redis_url))
    with pytest.raises(ValueError, match="decode_responses=True"):
        backend_class(client)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("backend_class", "fake_class"),
    [(RedisBackend, fakeredis.FakeRedis), (AsyncRedisBackend, fakeredis.FakeAsyncRedis)],
)
def test_fakeredis_client_without_decode_responses_raises_value_error(
    backend_class: type[BaseBackend], fake_class: type
) -> None:
    with pytest.raises(ValueError, match="decode_responses=True"):
        backend_class(fake_class())  # type: ignore[call-arg]


@pytest.mark.parametrize("backend_class", BACKENDS)
@pytest.mark.parametrize(
    "namespace", ["has space", "tab\there", "{tagged}", "half{", "app:v2", "lock", 7, None]
)
def test_bad_namespace_raises_value_error_naming_it(
    backend_class: type[BaseBackend], namespace: Any
) -> None:
    with pytest.raises(ValueError, match="namespace") as caught:
        backend_class(LazyClient(lambda: None), namespace=namespace)  # type: ignore[call-arg]
    assert repr(namespace) in str(caught.value)


@pytest.mark.parametrize("backend_class", BACKENDS)
def test_an_empty_namespace_is_refused(backend_class: type[BaseBackend]) -> None:
    with pytest.raises(ValueError, match="namespace must not be empty"):
        backend_class(LazyClient(lambda: None), namespace="")  # type: ignore[call-arg]


# LazyClient


@pytest.mark.parametrize("backend_class", BACKENDS)
async def test_lazy_client_is_not_called_until_conn_is_read(
    backend_class: type[BaseBackend], redis_url: str, closing: Callable[[Any], Any]
) -> None:
    calls: list[Any] = []

    def build() -> Any:
        calls.append(client_for(backend_class, redis_url, decode_responses=True))
        return calls[-1]

    backend: Any = backend_class(LazyClient(build))  # type: ignore[call-arg]
    assert calls == []
    first = closing(backend).conn
    assert backend.conn is first
    assert calls == [first]


@pytest.mark.parametrize("backend_class", BACKENDS)
async def test_lazy_client_result_is_checked_when_resolved(
    backend_class: type[BaseBackend], redis_url: str, closing: Callable[[Any], Any]
) -> None:
    client = closing(client_for(backend_class, redis_url))
    backend: Any = backend_class(LazyClient(lambda: client))  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="decode_responses=True"):
        _ = backend.conn


def test_lazy_client_get_calls_function_every_time() -> None:
    counter = iter(range(10))
    lazy = LazyClient(lambda: next(counter))
    assert [lazy.get(), lazy.get()] == [0, 1]


# from_url and from_settings


async def test_from_url_builds_sync_backend_with_settings(redis_url: str, namespace: str) -> None:
    backend = RedisBackend.from_url(redis_url, namespace=namespace, serializer=BinarySerializer())
    backend.set("k", (1, 2))
    assert (backend.namespace, backend.serializer) == (namespace, BinarySerializer())
    assert RedisBackend(redis_url, namespace=namespace, serializer=BinarySerializer()).get("k") == (
        1,
        2,
    )
    backend.conn.close()


async def test_from_url_builds_async_backend(redis_url: str, namespace: str) -> None:
    backend = AsyncRedisBackend.from_url(redis_url, namespace=namespace)
    assert isinstance(backend, AsyncRedisBackend)
    await backend.set("k", "v")
    assert await backend.get("k") == "v"
    await backend.conn.aclose()


@pytest.mark.parametrize("backend_class", BACKENDS)
def test_from_url_rejects_non_string(backend_class: type[BaseBackend]) -> None:
    with pytest.raises(ValueError, match="url"):
        backend_class.from_url(None)  # type: ignore[arg-type]


_CHILD = textwrap.dedent(
    """
    import asyncio, inspect, json, sys
    import dill

    decoded = dill.loads(sys.stdin.buffer.read())
    backend = decoded["backend"].from_settings(decoded["settings"])

    async def read():
        value = backend.get("k")
        return await value if inspect.isawaitable(value) else value

    print(json.dumps([type(backend).__name__, backend.namespace, asyncio.run(read())]))
    """
)


@pytest.mark.parametrize("backend_class", BACKENDS)
async def test_encoded_backend_reads_same_data_in_another_process(
    backend_class: type[BaseBackend], redis_url: str, namespace: str, closing: Callable[[Any], Any]
) -> None:
    backend: Any = closing(backend_class(redis_url, namespace=namespace))  # type: ignore[call-arg]
    result = backend.set("k", {"from": "parent"})
    if backend.IS_ASYNC:
        await result
    expected = f'["{backend_class.__name__}", "{namespace}", {{"from": "parent"}}]'
    assert read_in_another_process(backend) == expected


def read_in_another_process(backend: BaseBackend) -> str:
    """What ``_CHILD`` prints for ``backend``, rebuilt from its encoding in a new interpreter."""
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=backend.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    return completed.stdout.decode().strip()


SENTINELS = {
    RedisBackend: redis.sentinel.Sentinel,
    AsyncRedisBackend: redis.asyncio.sentinel.Sentinel,
}


@pytest.mark.parametrize("backend_class", BACKENDS)
async def test_a_sentinel_managed_backend_is_rebuilt_with_sentinels_of_its_own(
    backend_class: type[BaseBackend],
    sentinel_servers: SentinelServers,
    namespace: str,
    closing: Callable[[Any], Any],
) -> None:
    """A worker process gets a new Sentinel-managed pool (never its parent's sockets), which
    asks the sentinels for the master again."""
    sentinel = SENTINELS[backend_class](sentinel_servers.sentinel_addresses, socket_timeout=5)
    master = sentinel.master_for(sentinel_servers.master_name, decode_responses=True)
    backend: Any = closing(backend_class(master, namespace=namespace))  # type: ignore[call-arg]
    await call(backend.set, "k", {"from": "parent"})
    try:
        rebuilt: Any = closing(
            backend_class.from_settings(dill.loads(backend.encode())["settings"])
        )
        pool = rebuilt.conn.connection_pool
        assert type(pool) is type(master.connection_pool)
        assert pool is not master.connection_pool
        assert pool.sentinel_manager is not sentinel
        assert pool.service_name == sentinel_servers.master_name
        assert await call(rebuilt.get, "k") == {"from": "parent"}
        assert read_in_another_process(backend).endswith('{"from": "parent"}]')
    finally:
        await call(backend.delete, "k")
