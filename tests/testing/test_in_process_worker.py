"""``alsek_worker`` / ``InProcessWorker``: tasks run in this process until their queues are
empty (``join``), against a real Redis and against fakeredis, for sync and async tasks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest

from alsek import AsyncBroker, Broker, task
from alsek.core.backoff import ConstantBackoff
from alsek.core.message import Message
from alsek.exceptions import MultipleBrokersError
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from alsek.storage.result import AsyncResultStore, ResultStore
from alsek.testing import InProcessWorker, JoinTimeoutError

#: Retry backoff of the tests' flaky tasks (ms).
QUICK = ConstantBackoff(50, floor=0, ceiling=50, zero_override=False)
#: How long a test waits for something that happens at once on a healthy machine (ms).
PATIENCE_MS = 20_000

Start = Callable[..., InProcessWorker]


@dataclass
class Components:
    """A sync and an async broker and result store on one Redis (real or fake)."""

    broker: Broker
    results: ResultStore
    async_backend: Callable[[], AsyncRedisBackend]

    def async_components(self) -> tuple[AsyncBroker, AsyncResultStore]:
        backend = self.async_backend()
        return AsyncBroker(backend), AsyncResultStore(backend)


@pytest.fixture(params=["redis", "fakeredis"])
def components(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> Components:
    if request.param == "fakeredis":
        host = f"fake-{namespace}"  # sync and async fake clients share a server by host name
        sync = RedisBackend(fakeredis.FakeRedis(host=host, decode_responses=True), namespace)

        def make_async() -> AsyncRedisBackend:
            client = fakeredis.FakeAsyncRedis(host=host, decode_responses=True)
            return AsyncRedisBackend(client, namespace)

    else:
        sync = RedisBackend(redis_url, namespace=namespace)

        def make_async() -> AsyncRedisBackend:
            return AsyncRedisBackend(redis_url, namespace=namespace)

    return Components(Broker(sync), ResultStore(sync), make_async)


def result(components: Components, message: Message) -> Any:
    return components.results.get(message, timeout=PATIENCE_MS)


# -- join ------------------------------------------------------------------------------------------


def test_join_returns_once_every_message_ran(alsek_worker: Start, components: Components) -> None:
    @task(components.broker, queue="math", result_store=components.results)
    def add(a: int, b: int) -> int:
        return a + b

    @task(components.broker, queue="other", result_store=components.results)
    def mul(a: int, b: int) -> int:
        return a * b

    worker = alsek_worker(add, mul)
    messages = [add.generate(args=(i, 1)) for i in range(20)] + [mul.generate(args=(3, 4))]
    worker.join(timeout=PATIENCE_MS)
    # Everything ran before join returned: the results are there without waiting.
    stored = [components.results.get(message) for message in messages]
    assert stored == [*range(1, 21), 12]


def test_join_waits_for_retries_and_callbacks(alsek_worker: Start, components: Components) -> None:
    attempts: list[int] = []

    @task(
        components.broker, queue="q", max_retries=3, backoff=QUICK, result_store=components.results
    )
    def flaky(message: Message) -> str:
        attempts.append(message.retries)
        if message.retries < 2:
            raise ConnectionError("not yet")
        return "done"

    @task(components.broker, queue="q", result_store=components.results)
    def then(message: Message) -> str:
        return f"after {message.previous_result}"

    worker = alsek_worker(flaky, then)
    root = flaky.generate(callback=then.defer().generate())
    worker.join(timeout=PATIENCE_MS)
    assert attempts == [0, 1, 2]
    assert components.results.get(root, descendants=True) == ["done", "after done"]


def test_join_reraises_the_tasks_own_exception_once(
    alsek_worker: Start, components: Components
) -> None:
    class CardDeclined(Exception):
        pass

    @task(components.broker, queue="pay", max_retries=1, backoff=QUICK)
    def charge(amount: int) -> None:
        raise CardDeclined(f"{amount} is over the limit")

    worker = alsek_worker(charge)
    message = charge.generate(args=(5000,))
    with pytest.raises(CardDeclined, match="5000 is over the limit") as raised:
        worker.join(timeout=PATIENCE_MS)
    assert any(message.uuid in note for note in raised.value.__notes__)
    assert components.broker.in_dlq(message)  # raised once the message was done
    assert [failure.message.uuid for failure in worker.failures] == [message.uuid]
    worker.join(timeout=PATIENCE_MS)  # raised once: the queue is empty now


def test_join_without_fail_fast_returns_and_keeps_the_failures(
    alsek_worker: Start, components: Components
) -> None:
    @task(components.broker, queue="pay", max_retries=0)
    def charge(amount: int) -> None:
        raise ValueError(f"declined {amount}")

    worker = alsek_worker(charge)
    charge.generate(args=(1,))
    charge.generate(args=(2,))
    worker.join(timeout=PATIENCE_MS, fail_fast=False)
    assert sorted(str(failure.exception) for failure in worker.failures) == [
        "declined 1",
        "declined 2",
    ]
    with pytest.raises(ValueError, match="declined"):
        worker.join(timeout=PATIENCE_MS)  # fail_fast raises those not raised yet


def test_a_task_timeout_reaches_join_as_timeout_error(
    alsek_worker: Start, components: Components
) -> None:
    release = threading.Event()

    @task(components.broker, queue="slow", timeout=100, max_retries=0)
    def stuck() -> None:
        release.wait(PATIENCE_MS / 1000)

    worker = alsek_worker(stuck)
    stuck.generate()
    try:
        with pytest.raises(TimeoutError):
            worker.join(timeout=PATIENCE_MS)
    finally:
        release.set()


# -- what join says when it times out ------------------------------------------------------------


def test_join_timeout_names_delayed_unserved_and_running_messages(
    alsek_worker: Start, components: Components
) -> None:
    release = threading.Event()

    @task(components.broker, queue="q")
    def busy() -> None:
        release.wait(PATIENCE_MS / 1000)

    @task(components.broker, queue="q")
    def later() -> None: ...

    @task(components.broker, queue="q")
    def unserved() -> None: ...

    worker = alsek_worker(busy, later)  # it claims only its own tasks: unserved stays queued
    running = busy.generate()
    later.generate(delay=600_000)
    unserved.generate()
    unserved.generate()
    try:
        with pytest.raises(JoinTimeoutError) as raised:
            worker.join(timeout=300)
    finally:
        release.set()
    text = str(raised.value)
    assert text.startswith("join() timed out after 300 ms; still left: queue 'q': ")
    assert "2 ready of 'unserved', a task this worker does not serve" in text
    assert "1 delayed" in text
    assert f"running: {running.summary}" in text


# -- async tasks ----------------------------------------------------------------------------------


async def test_async_tasks_run_on_the_workers_own_loop(
    alsek_worker: Start, components: Components
) -> None:
    broker, results = components.async_components()
    try:

        @task(broker, queue="aq", result_store=results)
        async def shout(text: str) -> str:
            return text.upper()

        worker = alsek_worker(shout)
        messages = [await shout.generate(args=(word,)) for word in ("a", "b", "c")]
        worker.join(timeout=PATIENCE_MS)  # blocks this loop: the worker has its own
        assert [await results.get(message) for message in messages] == ["A", "B", "C"]
    finally:
        await broker.backend.conn.aclose()


async def test_sync_and_async_tasks_sharing_a_queue_both_run_promptly(
    alsek_worker: Start, components: Components
) -> None:
    """A submit wakes one consumer of its queue; when the other kind's pool takes the wake,
    ``join`` wakes the pool that serves the message instead of waiting out its idle backoff
    (a minute here, far beyond the join's timeout)."""
    broker, results = components.async_components()
    try:

        @task(broker, queue="shared", result_store=results)
        async def shout(text: str) -> str:
            return text.upper()

        @task(components.broker, queue="shared", result_store=components.results)
        def whisper(text: str) -> str:
            return text.lower()

        minute = ConstantBackoff(60_000, floor=60_000, ceiling=60_000, zero_override=False)
        worker = alsek_worker(shout, whisper, backoff=minute)
        for word in ("a", "b", "c", "d", "e"):
            loud = await shout.generate(args=(word,))
            quiet = whisper.generate(args=(word.upper(),))
            worker.join(timeout=PATIENCE_MS)
            assert (await results.get(loud), components.results.get(quiet)) == (
                word.upper(),
                word,
            )
    finally:
        await broker.backend.conn.aclose()


# -- process tasks, bad input --------------------------------------------------------------------


def test_process_tasks_run_in_threads_of_this_process(
    alsek_worker: Start, components: Components
) -> None:
    seen: list[int] = []

    @task(components.broker, queue="cpu", mechanism="process")
    def crunch(n: int) -> None:
        seen.append(n)  # a list of this process: visible only if it ran here

    worker = alsek_worker(crunch)
    crunch.generate(args=(7,))
    worker.join(timeout=PATIENCE_MS)
    assert seen == [7]


def test_bad_input_is_refused_clearly(components: Components) -> None:
    with pytest.raises(ValueError, match="needs at least one task"):
        InProcessWorker()
    with pytest.raises(TypeError, match=r"Not alsek tasks: .*decorated with @task"):
        InProcessWorker(print)

    @task(components.broker, queue="q")
    def one() -> None: ...

    @task(Broker(components.broker.backend), queue="q")
    def two() -> None: ...

    with pytest.raises(ValueError, match="concurrency must be > 0, got 0"):
        InProcessWorker(one, concurrency=0)
    with pytest.raises(MultipleBrokersError):
        InProcessWorker(one, two).start()
    worker = InProcessWorker(one, one).start()  # given twice, served once
    try:
        with pytest.raises(RuntimeError, match="has started already"):
            worker.start()
    finally:
        worker.stop()


async def test_an_async_task_on_a_fake_server_object_is_refused_clearly(namespace: str) -> None:
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)

    @task(AsyncBroker(AsyncRedisBackend(client, namespace)), queue="q")
    async def one() -> None: ...

    with pytest.raises(TypeError, match=r"share a server by host name"):
        InProcessWorker(one).start()


def test_the_worker_stops_and_releases_what_still_runs(components: Components) -> None:
    release = threading.Event()
    started = threading.Event()

    @task(components.broker, queue="q")
    def busy() -> None:
        started.set()
        release.wait(PATIENCE_MS / 1000)

    worker = InProcessWorker(busy, grace_period=0).start()
    message = busy.generate()
    assert started.wait(PATIENCE_MS / 1000)
    worker.stop(timeout=PATIENCE_MS)
    release.set()
    assert components.broker.exists(message)  # released: it runs again at the next worker
    with InProcessWorker(busy) as again:
        again.join(timeout=PATIENCE_MS)
    assert not components.broker.exists(message)
