"""The standalone limiters on real Redis: under concurrent threads and processes each lets
exactly as many through as its limit (counts, not timings); a dead holder's slot frees once
its TTL passes; a barrier opens exactly when its last party arrives. Then the asyncio twins,
and the refusals of bad arguments.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from alsek.core.limits import (
    AsyncBarrier,
    AsyncConcurrentRateLimiter,
    AsyncWindowRateLimiter,
    Barrier,
    BucketRateLimiter,
    ConcurrentRateLimiter,
    RateLimitExceeded,
    WindowRateLimiter,
)
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from tests.polling import eventually

#: Processes of the cross-process tests (each makes several attempts).
PROCESSES = 4
DAY_MS = 24 * 60 * 60 * 1000


@pytest.fixture
def backend(redis_url: str, namespace: str) -> Iterator[RedisBackend]:
    backend = RedisBackend(redis_url, namespace=namespace)
    yield backend
    backend.conn.close()


def server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


# -- attempts from threads and from processes -----------------------------------------------------


def hold_while_everyone_tries(limiter: Any, meeting: Any, raise_on_failure: bool = False) -> bool:
    """Try the limiter; whatever the answer, wait until every other attempt is made before
    letting go, so that no slot is given back before the last attempt."""
    with limiter.acquire(raise_on_failure=raise_on_failure) as got:
        meeting.wait(30)
        return bool(got)


def in_threads(count: int, attempt: Callable[[Any], bool]) -> list[bool]:
    meeting = threading.Barrier(count)
    answers: list[bool] = []
    lock = threading.Lock()

    def run() -> None:
        answer = attempt(meeting)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == count
    return answers


def _process_attempts(kind: str, url: str, namespace: str, meeting: Any, results: Any) -> None:
    """In a child process: build the limiter anew (own connections) and try it."""
    backend = RedisBackend(url, namespace=namespace)
    limiter = LIMITERS[kind](backend)
    results.put(hold_while_everyone_tries(limiter, meeting))


LIMITERS: dict[str, Callable[[RedisBackend], Any]] = {
    "concurrent": lambda backend: ConcurrentRateLimiter(key="k", limit=3, backend=backend),
    "window": lambda backend: WindowRateLimiter(
        key="k", limit=3, window_ms=DAY_MS, backend=backend
    ),
    "bucket": lambda backend: BucketRateLimiter(
        key="k", limit=3, bucket_ms=DAY_MS, backend=backend
    ),
}


def in_processes(kind: str, url: str, namespace: str) -> list[bool]:
    context = multiprocessing.get_context()
    meeting, results = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(target=_process_attempts, args=(kind, url, namespace, meeting, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    answers = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    return answers


@pytest.mark.parametrize("kind", sorted(LIMITERS))
def test_concurrent_threads_get_exactly_the_limit(kind: str, backend: RedisBackend) -> None:
    limiter = LIMITERS[kind](backend)
    start = server_ms(backend.conn)
    answers = in_threads(12, lambda meeting: hold_while_everyone_tries(limiter, meeting))
    if kind == "bucket" and start // DAY_MS != server_ms(backend.conn) // DAY_MS:
        pytest.skip("the test ran across midnight UTC: two buckets")  # about once in 40 000 runs
    assert answers.count(True) == 3


@pytest.mark.parametrize("kind", sorted(LIMITERS))
def test_concurrent_processes_get_exactly_the_limit(
    kind: str, backend: RedisBackend, redis_url: str, namespace: str
) -> None:
    start = server_ms(backend.conn)
    answers = in_processes(kind, redis_url, namespace)
    if kind == "bucket" and start // DAY_MS != server_ms(backend.conn) // DAY_MS:
        pytest.skip("the test ran across midnight UTC: two buckets")
    assert answers.count(True) == 3


# -- concurrency limits ---------------------------------------------------------------------------


def test_a_released_slot_is_free_again_and_nothing_is_left(backend: RedisBackend) -> None:
    limiter = ConcurrentRateLimiter(key="k", limit=1, backend=backend)
    held = limiter.acquire()
    with held, pytest.raises(RateLimitExceeded, match="at its limit of 1"), limiter.acquire():
        pass
    with limiter.acquire() as got:
        assert got is True
    holders = f"{backend.namespace}:limits:{{k}}:holders"
    assert backend.conn.zcard(holders) == 0


def test_the_slot_is_given_back_when_the_block_raises(backend: RedisBackend) -> None:
    limiter = ConcurrentRateLimiter(key="k", limit=1, backend=backend)
    with pytest.raises(KeyError), limiter.acquire():
        raise KeyError("the work failed")
    with limiter.acquire(raise_on_failure=False) as got:
        assert got


def _hold_and_die(url: str, namespace: str, ttl: int) -> None:
    limiter = ConcurrentRateLimiter(
        key="k", limit=1, backend=RedisBackend(url, namespace=namespace), ttl=ttl
    )
    with limiter.acquire():
        os._exit(3)  # dies holding the slot: no release


def test_a_dead_holders_slot_frees_once_its_ttl_passed(
    backend: RedisBackend, redis_url: str, namespace: str
) -> None:
    ttl = 1_500
    limiter = ConcurrentRateLimiter(key="k", limit=1, backend=backend, ttl=ttl)
    before = server_ms(backend.conn)
    child = multiprocessing.get_context().Process(
        target=_hold_and_die, args=(redis_url, namespace, ttl)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 3
    with limiter.acquire(raise_on_failure=False) as got:
        assert not got or server_ms(backend.conn) - before >= ttl  # still held, unless slow

    def free() -> bool:
        with limiter.acquire(raise_on_failure=False) as got:
            return bool(got)

    eventually(free, timeout=15, interval=0.05, what="the dead holder's slot")
    assert server_ms(backend.conn) - before >= ttl
    assert backend.conn.pttl(f"{namespace}:limits:{{k}}:holders") <= ttl


# -- window and bucket limits ---------------------------------------------------------------------


def test_a_window_lets_more_through_once_old_uses_leave_it(backend: RedisBackend) -> None:
    limiter = WindowRateLimiter(key="k", limit=2, window_ms=300, backend=backend)
    first = server_ms(backend.conn)
    for _ in range(2):
        with limiter.acquire():
            pass
    with limiter.acquire(raise_on_failure=False) as got:
        assert not got or server_ms(backend.conn) - first >= 300

    def room() -> bool:
        with limiter.acquire(raise_on_failure=False) as got:
            return bool(got)

    eventually(room, timeout=10, interval=0.02, what="room in the window")
    assert server_ms(backend.conn) - first >= 300
    window = f"{backend.namespace}:limits:{{k}}:window"
    assert 0 < backend.conn.zcard(window) <= 2 and 0 < backend.conn.pttl(window) <= 300


def test_a_new_bucket_starts_its_count_over(backend: RedisBackend) -> None:
    limiter = BucketRateLimiter(key="k", limit=2, bucket_ms=200, backend=backend)
    first_bucket = server_ms(backend.conn) // 200
    taken = 0
    while server_ms(backend.conn) // 200 == first_bucket:
        with limiter.acquire(raise_on_failure=False) as got:
            taken += bool(got)
        if taken == 2:
            break
    with limiter.acquire(raise_on_failure=False) as got:
        assert not got or server_ms(backend.conn) // 200 != first_bucket

    def room() -> bool:
        with limiter.acquire(raise_on_failure=False) as got:
            return bool(got)

    eventually(room, timeout=10, interval=0.02, what="a new bucket")
    assert server_ms(backend.conn) // 200 > first_bucket
    assert 0 < backend.conn.pttl(f"{backend.namespace}:limits:{{k}}:bucket") <= 200


# -- barriers -------------------------------------------------------------------------------------


def test_a_barrier_opens_exactly_when_its_last_party_arrives(backend: RedisBackend) -> None:
    barrier = Barrier(key="b", parties=3, backend=backend)
    arrived = f"{backend.namespace}:limits:{{b}}:arrived"
    returned: list[bool] = []
    waiters = [threading.Thread(target=lambda: returned.append(barrier.wait())) for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    eventually(lambda: backend.conn.scard(arrived) == 2, what="two parties")
    assert returned == []  # two of three arrived: closed
    assert barrier.wait(timeout_ms=10_000) is True  # the third opens it at once
    for waiter in waiters:
        waiter.join(10)
    assert returned == [True, True]
    assert barrier.wait(timeout_ms=0) is True  # open: a late party goes through
    assert backend.conn.scard(arrived) == 3  # and is not counted


def test_a_waiter_gives_up_after_its_timeout(backend: RedisBackend) -> None:
    barrier = Barrier(key="b", parties=2, backend=backend)
    assert barrier.wait(timeout_ms=50) is False
    assert barrier.wait(timeout_ms=50) is True  # the first arrival still counts


def _wait_at_barrier(url: str, namespace: str, results: Any) -> None:
    barrier = Barrier(key="b", parties=PROCESSES, backend=RedisBackend(url, namespace=namespace))
    results.put(barrier.wait(timeout_ms=30_000))


def test_a_barrier_across_processes(redis_url: str, namespace: str) -> None:
    context = multiprocessing.get_context()
    results = context.Queue()
    processes = [
        context.Process(target=_wait_at_barrier, args=(redis_url, namespace, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    assert [results.get(timeout=60) for _ in processes] == [True] * PROCESSES
    for process in processes:
        process.join(30)


# -- the asyncio twins ----------------------------------------------------------------------------


@pytest.fixture
async def async_backend(redis_url: str, namespace: str) -> Any:
    backend = AsyncRedisBackend(redis_url, namespace=namespace)
    yield backend
    await backend.conn.aclose()


async def attempts_at_once(limiter: Any, count: int) -> list[bool]:
    """``count`` tasks try ``limiter`` and let go once every one of them has tried."""
    tried: list[bool] = []
    everyone_tried = asyncio.Event()

    async def attempt() -> bool:
        async with limiter.acquire(raise_on_failure=False) as got:
            tried.append(got)
            if len(tried) == count:
                everyone_tried.set()
            await everyone_tried.wait()
            return bool(got)

    return list(await asyncio.gather(*(attempt() for _ in range(count))))


@pytest.mark.parametrize("kind", ["concurrent", "window"])
async def test_async_limiters_let_exactly_the_limit_through(kind: str, async_backend: Any) -> None:
    limiter = (
        AsyncConcurrentRateLimiter(key="c", limit=2, backend=async_backend)
        if kind == "concurrent"
        else AsyncWindowRateLimiter(key="w", limit=2, window_ms=DAY_MS, backend=async_backend)
    )
    assert (await attempts_at_once(limiter, 8)).count(True) == 2


async def test_async_acquire_raises_rate_limit_exceeded(async_backend: Any) -> None:
    limiter = AsyncConcurrentRateLimiter(key="c", limit=1, backend=async_backend)
    async with limiter.acquire():
        with pytest.raises(RateLimitExceeded):
            async with limiter.acquire():
                pass


async def test_an_async_barrier_opens_for_its_parties(async_backend: Any) -> None:
    barrier = AsyncBarrier(key="b", parties=3, backend=async_backend)
    results = await asyncio.gather(*(barrier.wait(timeout_ms=10_000) for _ in range(3)))
    assert results == [True, True, True]


# -- refusals -------------------------------------------------------------------------------------


def test_bad_arguments_are_refused_by_name(backend: RedisBackend) -> None:
    with pytest.raises(ValueError, match=r"contains '\{'"):
        ConcurrentRateLimiter(key="a{b}", limit=1, backend=backend)
    with pytest.raises(ValueError, match="limit must be an int > 0"):
        WindowRateLimiter(key="k", limit=0, window_ms=10, backend=backend)
    with pytest.raises(ValueError, match="bucket_ms must be an int > 0"):
        BucketRateLimiter(key="k", limit=1, bucket_ms=-1, backend=backend)
    with pytest.raises(ValueError, match="timeout_ms must be"):
        Barrier(key="b", parties=2, backend=backend).wait(timeout_ms=-5)


def test_a_limiter_of_the_wrong_kind_names_its_twin(
    backend: RedisBackend, redis_url: str, namespace: str
) -> None:
    with pytest.raises(TypeError, match="use AsyncConcurrentRateLimiter"):
        ConcurrentRateLimiter(
            key="k", limit=1, backend=AsyncRedisBackend(redis_url, namespace=namespace)
        )
    with pytest.raises(TypeError, match=r"use Barrier$"):
        AsyncBarrier(key="b", parties=2, backend=backend)
