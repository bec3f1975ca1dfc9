"""Evidence a running task leaves in Redis, so tests can see what happened inside the pool.

The location comes from the environment (``ALSEK_POOLS_PROBE_URL`` and ``ALSEK_POOLS_PROBE_NS``),
which every child process of a pool inherits; keys live under ``<namespace>:probe:`` so the
test's namespace clean-up removes them. Everything here is plain Redis commands: sync tasks use
``client()``, async tasks ``async_client()`` (one per event loop, as asyncio clients are bound to
the loop they first ran on).

Keys (``U`` a message uuid):

* ``starts:U`` / ``done:U``: how many times the task started / returned normally.
* ``order``: uuids in the order their runs started.
* ``attempts:U``: one JSON record per start (``retries``, ``error`` recorded on the message,
  ``pid``, ``at`` ms).
* ``beat:U``: wall-clock ms of the last heartbeat of a long task.
* ``hook:<hook>:U``: the exception (or ``"-"``) a task hook was called with.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import weakref
from typing import Any

import redis
import redis.asyncio

from alsek.storage.backends.clients import client_from_url

URL_VAR = "ALSEK_POOLS_PROBE_URL"
NAMESPACE_VAR = "ALSEK_POOLS_PROBE_NS"

_clients: dict[tuple[int, str], redis.Redis] = {}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
    weakref.WeakKeyDictionary()
)
_backends: dict[tuple[int, str], Any] = {}
_async_backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
    weakref.WeakKeyDictionary()
)


def now_ms() -> int:
    """Wall-clock milliseconds (comparable between processes of one machine)."""
    return int(time.time() * 1000)


def location() -> tuple[str, str]:
    """The probe's Redis URL and namespace, from the environment."""
    return os.environ[URL_VAR], os.environ[NAMESPACE_VAR]


def client() -> redis.Redis:
    """A client for this process (a forked child must not reuse its parent's sockets)."""
    url, _ = location()
    key = (os.getpid(), url)
    if key not in _clients:
        _clients[key] = client_from_url(url, asyncio=False)
    return _clients[key]


def async_client() -> redis.asyncio.Redis:
    """A client for the running event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _async_clients:
        _async_clients[loop] = client_from_url(location()[0], asyncio=True)
    return _async_clients[loop]


async def close_async_client() -> None:
    """Close the running loop's client, if it has one (before the loop closes)."""
    loop = asyncio.get_running_loop()
    conn = _async_clients.pop(loop, None)
    if conn is not None:
        await conn.aclose()
    backend = _async_backends.pop(loop, None)
    if backend is not None:
        await backend.conn.aclose()


def backend() -> Any:
    """An alsek ``RedisBackend`` in the probe's namespace, for this process."""
    from alsek.storage.backends.redis.sync import RedisBackend

    url, namespace = location()
    cache_key = (os.getpid(), f"backend:{url}:{namespace}")
    if cache_key not in _backends:
        _backends[cache_key] = RedisBackend(url, namespace=namespace)
    return _backends[cache_key]


def async_backend() -> Any:
    """An alsek ``AsyncRedisBackend`` in the probe's namespace, for the running loop."""
    from alsek.storage.backends.redis.asyncio import AsyncRedisBackend

    loop = asyncio.get_running_loop()
    if loop not in _async_backends:
        url, namespace = location()
        _async_backends[loop] = AsyncRedisBackend(url, namespace=namespace)
    return _async_backends[loop]


def key(*parts: str) -> str:
    """``<namespace>:probe:<parts...>``."""
    return ":".join((location()[1], "probe", *parts))


def attempt_record(message: Any) -> str:
    """What a start records about the message's delivery."""
    details = message.exception_details
    return json.dumps(
        {
            "retries": message.retries,
            "error": details.name if details is not None else None,
            "pid": os.getpid(),
            "at": now_ms(),
            "owner": (message.linked_lock or {}).get("owner_id"),
        }
    )
