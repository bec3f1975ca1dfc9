"""The task the failover pools serve: it records each run on the evidence server.

Evidence (a plain Redis server that does not fail over), keys under ``<namespace>:``:

* ``runs`` (HASH): uuid -> how many times the task started on it;
* ``starts`` (ZSET): ``<uuid>:<run>`` -> wall-clock ms the run started;
* ``done`` (ZSET): uuid -> wall-clock ms its first run returned (``NX``);
* ``done:<queue>`` (ZSET): the same, per queue.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from alsek.core.broker import Broker
from alsek.core.message import Message
from alsek.core.task import Task
from alsek.storage.backends import RedisBackend
from failwork import settings

_clients: dict[int, redis.Redis] = {}


def now_ms() -> int:
    """Wall-clock ms, comparable between the processes of one machine."""
    return int(time.time() * 1000)


def evidence() -> redis.Redis:
    """This process's client of the evidence server."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = redis.Redis.from_url(settings.evidence_url(), decode_responses=True)
    return _clients[pid]


def key(*parts: str) -> str:
    """``<namespace>:<parts...>`` on the evidence server."""
    return ":".join((settings.namespace(), *parts))


def record(index: int, message: Message) -> int:
    """Record a run of ``message``, work a little, record that it returned."""
    client = evidence()
    run = client.hincrby(key("runs"), message.uuid, 1)
    client.zadd(key("starts"), {f"{message.uuid}:{run}": now_ms()})
    time.sleep(settings.WORK_SECONDS)
    at = now_ms()
    pipe = client.pipeline(transaction=False)
    pipe.zadd(key("done"), {message.uuid: at}, nx=True)
    pipe.zadd(key("done", message.queue), {message.uuid: at}, nx=True)
    pipe.execute()
    return index


def broker(url: str | None = None) -> Broker:
    """The pools' (and the producer's) broker, on the failing-over Redis."""
    return Broker(
        RedisBackend(url or settings.url(), namespace=settings.namespace()),
        wait_replicas=settings.wait_replicas(),
        wait_timeout_ms=settings.WAIT_TIMEOUT_MS,
    )


def build(on: Broker) -> Task:
    """The recording task (no retries: a run that fails is reported, not hidden)."""
    options: dict[str, Any] = {"max_retries": 0, "backoff": None, "timeout": 60_000}
    return Task(record, on, queue=settings.QUEUES[0], **options)
