"""An idle pool blocks on Redis until work is due; the shortest such wait must not stall."""

from __future__ import annotations

import time

import pytest

from alsek.core.broker import Broker
from alsek.storage.backends.redis.sync import RedisBackend

#: Pool behaviour that depends on the server: on Redis 6.2, Valkey 8.1 and a cluster.
pytestmark = pytest.mark.servers("redis", "valkey", "cluster")


def test_a_one_millisecond_wait_for_work_returns_promptly(redis_url: str, namespace: str) -> None:
    # A pool whose next message is due in 1 ms waits 1 ms. Redis 6.2 read a 0.001 s BLPOP
    # timeout as 0 ("forever"), so the pool stalled until the client's 5 s socket timeout.
    broker = Broker(RedisBackend(redis_url, namespace=namespace))
    started = time.monotonic()
    assert broker.wait_for_work(["pools"], 1) is False
    assert time.monotonic() - started < 1.0
    broker.backend.conn.close()
