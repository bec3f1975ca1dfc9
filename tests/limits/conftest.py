"""What the task-limit tests share: a broker on the test server and a raw client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from alsek.core.broker import Broker
from alsek.storage.backends import RedisBackend
from alsek.storage.backends.clients import client_from_url


@pytest.fixture
def broker(redis_url: str, namespace: str) -> Iterator[Broker]:
    backend = RedisBackend(redis_url, namespace=namespace)
    yield Broker(backend)
    backend.conn.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    conn = client_from_url(redis_url, asyncio=False)
    yield conn
    conn.close()
