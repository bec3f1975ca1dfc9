"""Evidence a running task leaves in Redis, so tests can see what happened inside the pool.

The location comes from the environment (``ALSEK_POOLS_PROBE_URL`` and ``ALSEK_POOLS_PROBE_NS``),
which every child process of a pool inherits; keys live under ``<namespace>:probe:`` so the
test's namespace clean-up removes them. Everything here is plain Redis commands, so an async
twin only needs another client.

Keys (``U`` a message uuid):

* ``starts:U`` / ``done:U``: how many times the task started / returned normally.
* ``order``: uuids in the order their runs started.
* ``attempts:U``: one JSON record per start (``retries``, ``error`` recorded on the message,
  ``pid``, ``at`` ms).
* ``beat:U``: wall-clock ms of the last heartbeat of a long task.
* ``hook:<hook>:U``: the exception (or ``"-"``) a task hook was called with.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

URL_VAR = "ALSEK_POOLS_PROBE_URL"
NAMESPACE_VAR = "ALSEK_POOLS_PROBE_NS"

_clients: dict[tuple[int, str], redis.Redis] = {}


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
        _clients[key] = redis.Redis.from_url(url, decode_responses=True)
    return _clients[key]


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
        }
    )
