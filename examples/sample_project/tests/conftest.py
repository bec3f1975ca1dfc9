"""Point the shop at the test Redis before anything talks to it, and clean up after each test.

alsek's pytest plugin provides ``alsek_redis_url`` (a throwaway server for the session, or
``$ALSEK_TEST_REDIS_URL``) and ``alsek_worker``. With ``SHOP_TEST_REDIS=fakeredis`` the shop
uses fakeredis instead, and no server is started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from shop import settings


@pytest.fixture(scope="session", autouse=True)
def shop_redis_url(request: pytest.FixtureRequest) -> str:
    """The URL the shop uses in this session."""
    if os.environ.get("SHOP_TEST_REDIS") == "fakeredis":
        url = f"{settings.FAKE}shop-tests"
    else:
        url = request.getfixturevalue("alsek_redis_url")
    os.environ["SHOP_REDIS_URL"] = url
    return url


@pytest.fixture(autouse=True)
def clean_shop(shop_redis_url: str) -> Iterator[None]:
    """Delete the shop's keys after each test (only its namespace: the server may be shared)."""
    yield
    client = settings.redis_client()
    prefix = settings.NAMESPACE
    keys = [*client.scan_iter(f"{prefix}:*"), *client.scan_iter(f"lock:{prefix}:*")]
    if keys:
        client.delete(*keys)
    client.close()
