"""``redis_location``: where a client connects, as a URL whose password is never shown."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio
from redis.sentinel import Sentinel

from alsek.storage.backends.location import redis_location


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost", "redis://localhost:6379/0"),
        ("redis://:pa55@10.0.0.1:6380/2", "redis://:***@10.0.0.1:6380/2"),
        ("rediss://worker:pa55@cache.internal:6390/1", "rediss://worker:***@cache.internal:6390/1"),
        ("unix://:pa55@/run/redis.sock?db=3", "unix://:***@/run/redis.sock?db=3"),
    ],
)
def test_a_url_is_shown_with_its_password_masked(url: str, shown: str) -> None:
    assert redis_location(redis.Redis.from_url(url)) == shown
    assert redis_location(redis.asyncio.Redis.from_url(url)) == shown


def test_a_sentinel_managed_master_names_its_sentinels_and_service() -> None:
    sentinel = Sentinel([("s1", 26379), ("s2", 26380)], password="pa55")
    client = sentinel.master_for("jobs", decode_responses=True)
    assert redis_location(client) == "redis+sentinel://:***@s1:26379,s2:26380/jobs/0"


def test_an_unknown_client_is_named_by_its_type() -> None:
    assert redis_location(object()) == "a object client"
