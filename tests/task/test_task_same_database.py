"""``same_database``: whether a status or result write can ride along with a broker call.

Each case checks the answer against what the clients really share: a key written through one
client is (or is not) read through the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import fakeredis
import pytest
import redis

from alsek.core.task.effects import same_database


def _with_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def _shares_keys(a: Any, b: Any, key: str) -> bool:
    a.set(key, "1", px=60_000)
    try:
        return b.get(key) is not None
    finally:
        a.delete(key)


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for client in made:
        client.close()


def _pairs(redis_url: str) -> list[tuple[str, Any, Any]]:
    one_server = fakeredis.FakeServer()
    base = urlsplit(redis_url).path.strip("/") or "0"
    other_db = 2 if base == "1" else 1
    return [
        ("one client", *(2 * [redis.Redis.from_url(redis_url)])),
        ("same url", redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)),
        (
            "other db",
            redis.Redis.from_url(redis_url),
            redis.Redis.from_url(_with_db(redis_url, other_db)),
        ),
        ("fake, same host", fakeredis.FakeRedis(host="h1"), fakeredis.FakeRedis(host="h1")),
        ("fake, other host", fakeredis.FakeRedis(host="h1"), fakeredis.FakeRedis(host="h2")),
        ("fake, other db", fakeredis.FakeRedis(host="h1"), fakeredis.FakeRedis(host="h1", db=3)),
        (
            "fake, one server object",
            fakeredis.FakeRedis(server=one_server, host="h3"),
            fakeredis.FakeRedis(server=one_server, host="h4"),
        ),
        (
            "fake, two server objects",
            fakeredis.FakeRedis(server=fakeredis.FakeServer()),
            fakeredis.FakeRedis(server=fakeredis.FakeServer()),
        ),
    ]


def test_same_database_says_whether_two_clients_share_keys(
    redis_url: str, namespace: str, clients: list[Any]
) -> None:
    expected = {
        "one client": True,
        "same url": True,
        "other db": False,
        "fake, same host": True,
        "fake, other host": False,
        "fake, other db": False,
        "fake, one server object": True,
        "fake, two server objects": False,
    }
    for label, a, b in _pairs(redis_url):
        clients.extend((a, b))
        shared = _shares_keys(a, b, f"{namespace}:probe")
        assert shared is expected[label], label
        assert same_database(a, b) is shared, label


def test_a_fakeredis_client_never_shares_a_real_servers_database(redis_url: str) -> None:
    parts = urlsplit(redis_url)
    real = redis.Redis.from_url(redis_url)
    fake = fakeredis.FakeRedis(
        host=parts.hostname, port=parts.port, db=real.connection_pool.connection_kwargs.get("db", 0)
    )
    try:
        assert not same_database(real, fake)
    finally:
        real.close()
        fake.close()
