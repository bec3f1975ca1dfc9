"""The completion tally: how the benchmark learns, cheaply and exactly, when work is done.

A benchmark task calls ``done()`` as its last statement. That counts the message in the process
and reads the clock; a daemon thread of the process writes what it counted to Redis every
``FLUSH_SECONDS``, in one round trip. A worker thus pays about a microsecond per message
instead of a Redis call, and the benchmark reads two small keys to know how many messages are
done and when the first and the last of them finished (clock readings taken in the tasks, so
the polling interval does not blur the figures).

Keys, under ``settings.completions_key()``: ``:count`` (INCRBY) and ``:times``, a sorted set
whose member ``first`` keeps the earliest finish (``ZADD LT``) and ``last`` the latest
(``ZADD GT``; Redis 6.2 or newer). A ``multiprocessing`` child (alsek's process pool) writes
what is left when it exits, so a child replaced after one message (``--max-tasks-per-child 1``)
loses nothing; ``done(flush=True)`` writes at once.

The latency task calls ``started(sent_at)`` first: the seconds from its submit to its start go
to the list ``:latency``, in the same transaction as the count, so a count that has reached N
comes with N samples. ``peers/bullmq/completions.mjs`` writes the same keys from Node.

Standard library and redis-py only: the peers' virtualenv imports it too.
"""

from __future__ import annotations

import os
import threading
import time
from multiprocessing import util

import redis

from apps import settings

#: How often a worker process writes its tally: the times come from the tasks, so this only
#: decides how soon the benchmark sees the end (at 10 ms it cost a busy process ~5 % of its CPU).
FLUSH_SECONDS = 0.05


class _Tally:
    """One process's count of finished messages, written to Redis by a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # a flush at exit waits for one in flight
        self._pending = 0
        self._first = 0.0
        self._last = 0.0
        self._latencies: list[float] = []
        self._client = redis.Redis.from_url(settings.redis_url())
        self._prefix = settings.completions_key()
        threading.Thread(target=self._flush_forever, name="bench-tally", daemon=True).start()
        # Run at the exit of a multiprocessing child (which skips atexit handlers).
        util.Finalize(self, self.flush, exitpriority=100)

    def add(self) -> None:
        now = time.time()
        with self._lock:
            if not self._pending:
                self._first = now
            self._pending += 1
            self._last = now

    def started(self, sent_at: float) -> None:
        delay = time.time() - sent_at
        with self._lock:
            self._latencies.append(delay)

    def flush(self) -> None:
        with self._writing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            pending, first, last = self._pending, self._first, self._last
            latencies, self._latencies = self._latencies, []
            self._pending = 0
        if not pending and not latencies:
            return
        pipe = self._client.pipeline(transaction=True)  # the reader sees count and times agree
        if latencies:
            pipe.rpush(f"{self._prefix}:latency", *latencies)
        if pending:
            pipe.incrby(f"{self._prefix}:count", pending)
            pipe.zadd(f"{self._prefix}:times", {"first": first}, lt=True)
            pipe.zadd(f"{self._prefix}:times", {"last": last}, gt=True)
        pipe.execute()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()


_tally: _Tally | None = None
_creating = threading.Lock()


def _forget() -> None:
    """In a forked child: the parent's tally (and its thread) did not come along."""
    global _tally, _creating
    _tally, _creating = None, threading.Lock()


os.register_at_fork(after_in_child=_forget)


def _current() -> _Tally:
    """This process's tally, started on first use."""
    global _tally
    if _tally is None:
        with _creating:
            if _tally is None:
                _tally = _Tally()
    return _tally


def done(flush: bool = False) -> None:
    """Count one finished message; ``flush`` writes the tally now (a process about to exit)."""
    tally = _current()
    tally.add()
    if flush:
        tally.flush()


def started(sent_at: float) -> None:
    """Record how long ago (``time.time()`` seconds) the running message was submitted."""
    _current().started(sent_at)


def read(client: redis.Redis, namespace: str) -> tuple[int, float | None, float | None]:
    """``(count, first, last)`` of the run in ``namespace`` so far (``time.time()`` seconds)."""
    prefix = settings.completions_key(namespace)
    pipe = client.pipeline(transaction=True)
    pipe.get(f"{prefix}:count")
    pipe.zscore(f"{prefix}:times", "first")
    pipe.zscore(f"{prefix}:times", "last")
    count, first, last = pipe.execute()
    return int(count or 0), first, last


def latencies(client: redis.Redis, namespace: str) -> list[float]:
    """Submit-to-start delays (seconds) the latency task recorded in ``namespace`` so far."""
    values = client.lrange(f"{settings.completions_key(namespace)}:latency", 0, -1)
    return [float(value) for value in values]


def reset(client: redis.Redis, namespace: str) -> None:
    """Forget every completion (and latency sample) of the run in ``namespace``."""
    prefix = settings.completions_key(namespace)
    client.delete(f"{prefix}:count", f"{prefix}:times", f"{prefix}:latency")
