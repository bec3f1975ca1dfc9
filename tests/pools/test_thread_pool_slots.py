"""A thread pool's slot is free once its run ended: the next message starts on another worker
thread while the first one still writes its outcome (``after_process``, the ack's round trip).
At most one message per slot writes its outcome that way, so the pool never runs more messages
at once than it has threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from alsek.core.broker import Broker, ClaimSource
from alsek.core.message import Message
from alsek.core.middleware import Middleware
from alsek.core.task import task
from alsek.core.worker.sync.inprocess import InProcessThreadPool
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.storage.result import ResultStore

pytestmark = pytest.mark.servers("redis", "valkey")

#: Generous: how long a test waits for something that happens at once on a healthy machine.
PATIENCE_SECONDS = 30


@contextmanager
def serving(pool: InProcessThreadPool, release: threading.Event | None = None) -> Iterator[None]:
    """Run ``pool`` in a thread of its own (so no signal handler is involved) within the block;
    then set ``release`` (a held outcome must not block the stop) and stop it."""
    thread = threading.Thread(target=pool.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        if release is not None:
            release.set()
        pool.stop(PATIENCE_SECONDS * 1000)
        thread.join(PATIENCE_SECONDS)
    assert not thread.is_alive()


class HoldFirstOutcome(Middleware):
    """Holds the outcome of the ``first`` message (in ``after_process``) until ``release``."""

    def __init__(self) -> None:
        self.first: str | None = None
        self.writing = threading.Event()
        self.release = threading.Event()

    def after_process(self, message: Message, result: Any, exception: BaseException | None) -> Any:
        if message.uuid == self.first:
            self.writing.set()
            self.release.wait(PATIENCE_SECONDS)


def test_the_next_message_starts_while_the_first_writes_its_outcome(
    redis_url: str, namespace: str
) -> None:
    backend = RedisBackend(redis_url, namespace=namespace)
    broker, store = Broker(backend), ResultStore(backend)
    hold = HoldFirstOutcome()
    broker.add_middleware(hold)

    @task(broker, queue="slots", result_store=store)
    def count(n: int) -> int:
        return n

    first = count.generate(args=(1,))
    hold.first = first.uuid
    pool = InProcessThreadPool(tasks=[count], n_threads=1, backoff=None)
    with serving(pool, hold.release):
        assert hold.writing.wait(PATIENCE_SECONDS)  # the only slot's run ended; its outcome waits
        second = count.generate(args=(2,))
        # Before, the slot stayed taken until the first outcome was written: the second
        # message waited for the release, which never came before the deadline.
        assert store.get(second, timeout=PATIENCE_SECONDS * 1000) == 2
        assert not store.exists(first)  # still being written
        hold.release.set()
        assert store.get(first, timeout=PATIENCE_SECONDS * 1000) == 1


def test_outcomes_being_written_hold_at_most_one_extra_message_per_slot(
    redis_url: str, namespace: str
) -> None:
    backend = RedisBackend(redis_url, namespace=namespace)
    broker, store = Broker(backend), ResultStore(backend)
    release = threading.Event()
    held: list[str] = []

    class HoldEveryOutcome(Middleware):
        def after_process(self, message: Message, result: Any, exception: Any) -> Any:
            held.append(message.uuid)
            release.wait(PATIENCE_SECONDS)

    broker.add_middleware(HoldEveryOutcome())

    @task(broker, queue="slots", result_store=store)
    def echo(n: int) -> int:
        return n

    messages = [echo.generate(args=(n,)) for n in range(4)]
    pool = InProcessThreadPool(tasks=[echo], n_threads=1, backoff=None)
    with serving(pool, release):
        pause = threading.Event()  # never set: a poll's pause
        for _ in range(PATIENCE_SECONDS * 20):
            if len(held) >= 2:
                break
            pause.wait(0.05)
        assert len(held) == 2  # the first writes, the second writes too: the slot is taken
        assert pool.free_slots() == 0
        assert not any(store.exists(m) for m in messages)
        release.set()
        assert [store.get(m, timeout=PATIENCE_SECONDS * 1000) for m in messages] == [0, 1, 2, 3]


def test_a_future_is_reported_done_once_and_only_when_its_outcome_is_written(
    redis_url: str, namespace: str
) -> None:
    # Subclasses (the testing worker's join) read _on_complete as "done": the run's end,
    # which frees the slot earlier, must not go through it.
    backend = RedisBackend(redis_url, namespace=namespace)
    broker, store = Broker(backend), ResultStore(backend)
    reports: list[tuple[str, bool]] = []

    class Reporting(InProcessThreadPool):
        def _on_complete(self, future: Any) -> None:
            reports.append((future.message.uuid, future.complete))
            super()._on_complete(future)

    @task(broker, queue="slots", result_store=store)
    def echo(n: int) -> int:
        return n

    messages = [echo.generate(args=(n,)) for n in range(3)]
    pool = Reporting(tasks=[echo], n_threads=2, backoff=None)
    with serving(pool):
        assert [store.get(m, timeout=PATIENCE_SECONDS * 1000) for m in messages] == [0, 1, 2]
    assert sorted(reports) == sorted((m.uuid, True) for m in messages)


@pytest.mark.parametrize("until_thread_exit", [False, True])
def test_complete_only_on_thread_exit_keeps_the_slot_until_the_outcome_is_written(
    redis_url: str, namespace: str, until_thread_exit: bool
) -> None:
    # That option counts a slot busy until its thread is done with the message: the run's end
    # must not free it.
    backend = RedisBackend(redis_url, namespace=namespace)
    broker = Broker(backend)

    @task(broker, queue="slots")
    def noop() -> None:
        return None

    message = noop.generate()
    pool = InProcessThreadPool(
        tasks=[noop], n_threads=1, backoff=None, complete_only_on_thread_exit=until_thread_exit
    )
    [claimed] = broker.claim([ClaimSource("slots")], 1, pool.owner_id).messages
    assert claimed.uuid == message.uuid
    pool.submit_message(claimed)
    future = pool._futures[message.uuid]
    assert (future._on_run_end is None) is until_thread_exit
    deadline = time.monotonic() + PATIENCE_SECONDS
    while message.uuid in pool._futures and time.monotonic() < deadline:
        pool._reap_done(block_seconds=1)  # returns at each notice of the future
    assert message.uuid not in pool._futures  # done: acked, and forgotten
