"""A ``LazyClient`` is resolved once, also when threads first use the backend together (an
in-process worker's threads and the test's): two clients could reach two fakeredis servers."""

from __future__ import annotations

import threading
from typing import Any

import fakeredis

from alsek.storage.backends import LazyClient, RedisBackend


def test_threads_that_first_ask_together_share_one_client() -> None:
    entered, release = threading.Event(), threading.Event()
    made: list[Any] = []

    def make() -> fakeredis.FakeRedis:
        made.append(1)
        entered.set()
        release.wait(10)
        return fakeredis.FakeRedis(decode_responses=True)

    backend = RedisBackend(LazyClient(make))
    got: list[Any] = []
    first = threading.Thread(target=lambda: got.append(backend.conn))
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=lambda: got.append(backend.conn))
    second.start()
    second.join(0.2)  # time for a second resolution to start, were it allowed
    release.set()
    first.join(10)
    second.join(10)
    assert len(made) == 1
    assert got[0] is got[1]
