"""Evidence a running task leaves in Redis, so the tests can count executions from outside.

The probe lives in its own Redis database (``ALSEK_FAULTS_PROBE_URL``, db 1 of the test's
server), so alsek's keyspace (db 0) holds only alsek's keys for the hygiene checker.

Every attempt of a message gets a random token and writes, with ``HSET`` (idempotent, so a
write repeated after a dropped connection counts once):

* ``starts`` field ``<uuid>|<token>``: JSON ``{"pid", "at", "retries", "error", "kind"}``;
* ``ends`` field ``<uuid>|<token>``: the wall-clock ms the function returned.

A write that meets a Redis outage (the restart and connection-cut scenarios) is repeated until
it lands, so a task never fails because of its own evidence.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
import weakref
from typing import Any

import redis
import redis.asyncio

URL_VAR = "ALSEK_FAULTS_PROBE_URL"
STARTS = "starts"
ENDS = "ends"
COUNT = "count"
#: How long an evidence write keeps trying through a Redis outage.
WRITE_PATIENCE_SECONDS = 60.0
_OUTAGE = (redis.ConnectionError, redis.TimeoutError)

_clients: dict[int, redis.Redis] = {}
_async_clients: weakref.WeakKeyDictionary[Any, redis.asyncio.Redis] = weakref.WeakKeyDictionary()


def now_ms() -> int:
    """Wall-clock ms, comparable between the processes of one machine."""
    return int(time.time() * 1000)


def client() -> redis.Redis:
    """This process's client (a forked child must not reuse its parent's sockets)."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = redis.Redis.from_url(os.environ[URL_VAR], decode_responses=True)
    return _clients[pid]


def async_client() -> redis.asyncio.Redis:
    """The running event loop's client."""
    loop = asyncio.get_running_loop()
    if loop not in _async_clients:
        url = os.environ[URL_VAR]
        _async_clients[loop] = redis.asyncio.Redis.from_url(url, decode_responses=True)
    return _async_clients[loop]


def start_record(message: Any, kind: str) -> tuple[str, str]:
    """(field, JSON) recording that an attempt of ``message`` starts."""
    details = message.exception_details
    record = {
        "pid": os.getpid(),
        "at": now_ms(),
        "retries": message.retries,
        "error": details.name if details is not None else None,
        "kind": kind,
    }
    return f"{message.uuid}|{uuid.uuid4().hex[:12]}", json.dumps(record)


def _patiently(write: Any) -> Any:
    deadline = time.monotonic() + WRITE_PATIENCE_SECONDS
    while True:
        try:
            return write()
        except _OUTAGE:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def _patiently_async(write: Any) -> Any:
    deadline = time.monotonic() + WRITE_PATIENCE_SECONDS
    while True:
        try:
            return await write()
        except _OUTAGE:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def started(message: Any, kind: str) -> str:
    """Record the start of an attempt; returns its field (for ``ended``)."""
    field, record = start_record(message, kind)
    _patiently(lambda: client().hset(STARTS, field, record))
    return field


def ended(field: str) -> None:
    """Record that the attempt's function returned."""
    _patiently(lambda: client().hset(ENDS, field, now_ms()))


def counted() -> None:
    """Count one run on a single key (constant memory: the memory scenario)."""
    _patiently(lambda: client().incr(COUNT))


async def started_async(message: Any, kind: str) -> str:
    """``started`` for async tasks."""
    field, record = start_record(message, kind)
    await _patiently_async(lambda: async_client().hset(STARTS, field, record))
    return field


async def ended_async(field: str) -> None:
    """``ended`` for async tasks."""
    await _patiently_async(lambda: async_client().hset(ENDS, field, now_ms()))
