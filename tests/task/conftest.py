"""Fixtures for the task tests: a broker, tracker and store of one kind (sync or async)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from alsek.core.broker import AsyncBroker, Broker, ClaimSource
from alsek.core.message import Message
from alsek.core.status import AsyncStatusTracker, StatusTracker
from alsek.core.task import AsyncTask, Task
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import AsyncResultStore, ResultStore
from tests.polling import call
from tests.task.functions import add, async_add

OWNER = "lock:test-host:process:1:lease:task-tests"


class Kit:
    """A backend of one kind with a broker, a tracker and a result store on it."""

    def __init__(self, kind: str, url: str, namespace: str) -> None:
        self.kind = kind
        self.url = url
        self.namespace = namespace
        self.backend: Any = self.new_backend(url)
        self.broker: Any = (Broker if kind == "sync" else AsyncBroker)(self.backend)
        self.tracker: Any = self.new_tracker(self.backend)
        self.store: Any = self.new_store(self.backend)

    def new_backend(self, url: str) -> Any:
        backend_class = RedisBackend if self.kind == "sync" else AsyncRedisBackend
        return backend_class(url, namespace=self.namespace)

    def new_tracker(self, backend: Any) -> Any:
        return (StatusTracker if self.kind == "sync" else AsyncStatusTracker)(backend)

    def new_store(self, backend: Any) -> Any:
        return (ResultStore if self.kind == "sync" else AsyncResultStore)(backend)

    @property
    def task_class(self) -> type[Task] | type[AsyncTask]:
        return Task if self.kind == "sync" else AsyncTask

    def task(self, function: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        """A task of this kit's kind on its broker (``add`` / ``async_add`` by default)."""
        if function is None:
            function = add if self.kind == "sync" else async_add
        kwargs.setdefault("queue", "q")
        return self.task_class(function, broker=kwargs.pop("broker", self.broker), **kwargs)

    async def claim(self, n: int = 100, queue: str = "q", **kwargs: Any) -> list[Message]:
        claim = await call(self.broker.claim, [ClaimSource(queue)], n, OWNER, **kwargs)
        return list(claim.messages)

    async def close(self, backend: Any = None) -> None:
        """Close ``backend``'s connections (default: the kit's own backend)."""
        backend = backend or self.backend
        if self.kind == "sync":
            backend.conn.close()
        else:
            await backend.conn.aclose()


@pytest.fixture(params=["sync", "async"])
async def kit(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> AsyncIterator[Kit]:
    """Broker, tracker and store, sync or async, in this test's namespace."""
    built = Kit(request.param, redis_url, namespace)
    yield built
    await built.close()


@pytest.fixture
def sync_kit(redis_url: str, namespace: str) -> Iterator[Kit]:
    """The sync kit only."""
    built = Kit("sync", redis_url, namespace)
    yield built
    built.backend.conn.close()


@pytest.fixture
def other_db_url(redis_url: str, namespace: str) -> Iterator[str]:
    """Another database of the test server: a Redis the broker's scripts cannot write to."""
    parts = urlsplit(redis_url)
    db = 2 if parts.path.strip("/") == "1" else 1
    url = urlunsplit(parts._replace(path=f"/{db}"))
    yield url
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"*{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def namespace_keys(client: redis.Redis, namespace: str) -> list[str]:
    """Every key of the namespace (lease locks included), sorted."""
    found = set(client.scan_iter(match=f"{namespace}:*")) | set(
        client.scan_iter(match=f"lock:{namespace}:*")
    )
    return sorted(found)
