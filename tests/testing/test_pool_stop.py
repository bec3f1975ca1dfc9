"""``pool.run()`` and ``pool.stop(timeout)``: starting and stopping a pool from Python, for every
pool kind, each built and run in a thread of its own as an embedding program would (so no
signal handler is involved)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import holdwork
import pytest
import redis

from alsek import AsyncBroker, Broker, task
from alsek.core.worker import ProcessWorkerPool, ThreadWorkerPool
from alsek.core.worker.asyncio import AsyncSingleProcessWorkerPool
from alsek.core.worker.sync import InProcessThreadPool
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from alsek.storage.result import ResultStore

KINDS = ["thread", "inprocess", "process", "async"]
#: Generous: how long a test waits for something that happens at once on a healthy machine.
PATIENCE_SECONDS = 30


class Serving:
    """A pool of ``kind`` over the ``hold`` task, built and run in a thread of its own."""

    def __init__(self, kind: str, url: str, namespace: str, stop_first: bool = False) -> None:
        self.kind, self.url, self.namespace, self.stop_first = kind, url, namespace, stop_first
        self.pool: Any = None
        self.error: BaseException | None = None
        self.built = threading.Event()
        self.thread = threading.Thread(target=self._serve, name=f"serving-{kind}", daemon=True)

    def start(self) -> Serving:
        self.thread.start()
        assert self.built.wait(PATIENCE_SECONDS) and self.error is None, self.error
        return self

    def _serve(self) -> None:
        try:
            if self.kind == "async":
                asyncio.run(self._serve_async())
                return
            mechanism = "process" if self.kind == "process" else "thread"
            hold, _ = holdwork.sync_task(self.url, self.namespace, mechanism)
            if self.kind == "thread":
                self.pool = ThreadWorkerPool(tasks=[hold], n_threads=2, n_processes=1)
            elif self.kind == "inprocess":
                self.pool = InProcessThreadPool(tasks=[hold], n_threads=2)
            else:
                self.pool = ProcessWorkerPool(tasks=[hold], n_processes=2)
            self._run(self.pool.run)
        except BaseException as error:
            self.error = error
        finally:
            self.built.set()

    async def _serve_async(self) -> None:
        hold, _ = holdwork.async_task(self.url, self.namespace)
        try:
            self.pool = AsyncSingleProcessWorkerPool(tasks=[hold], n_tasks=2)
            if self.stop_first:
                await self.pool.stop()
            self.built.set()
            await self.pool.run()
        finally:
            await hold.broker.backend.conn.aclose()

    def _run(self, run: Any) -> None:
        if self.stop_first:
            self.pool.stop()
        self.built.set()
        run()

    def stop(self, timeout: int | None = None) -> None:
        """``pool.stop(timeout)``; the async pool's awaited in an event loop of this thread."""
        if self.kind == "async":
            asyncio.run(self.pool.stop(timeout))
        else:
            self.pool.stop(timeout)

    def run_again(self) -> None:
        if self.kind == "async":
            asyncio.run(self.pool.run())
        else:
            self.pool.run()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def servings() -> Iterator[list[Serving]]:
    made: list[Serving] = []
    yield made
    for serving in made:
        if serving.pool is not None and serving.thread.is_alive():
            serving.stop(timeout=PATIENCE_SECONDS * 1000)


@pytest.fixture
def serve(kind: str, redis_url: str, namespace: str, servings: list[Serving]) -> Any:
    def start(stop_first: bool = False) -> Serving:
        serving = Serving(kind, redis_url, namespace, stop_first)
        servings.append(serving)
        return serving.start()

    return start


class Held:
    """A message of the ``hold`` task, submitted from this thread, that the test releases."""

    def __init__(self, kind: str, url: str, namespace: str, client: redis.Redis) -> None:
        backend = RedisBackend(url, namespace=namespace)
        self.results = ResultStore(backend)
        name = "hold_async" if kind == "async" else "hold"
        producer = task(Broker(backend), queue="hold", name=name, result_store=self.results)
        self.key = f"{namespace}:release:{uuid.uuid4().hex[:8]}"
        self.client = client
        self.message = producer(holdwork.hold).generate(args=(url, self.key))

    def wait_started(self) -> None:
        started = self.client.blpop([f"{self.key}:started"], PATIENCE_SECONDS)
        assert started, "the held message never started"

    def release(self) -> None:
        self.client.lpush(self.key, 1)

    def result(self) -> Any:
        return self.results.get(self.message, timeout=PATIENCE_SECONDS * 1000)


@pytest.fixture
def held(kind: str, redis_url: str, namespace: str, redis_client: redis.Redis) -> Held:
    return Held(kind, redis_url, namespace, redis_client)


def test_stop_lets_the_running_message_finish_then_returns_once_run_returned(
    serve: Any, held: Held
) -> None:
    serving = serve()
    held.wait_started()
    stopper = threading.Thread(target=serving.stop, daemon=True)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive(), "stop() returned while a message was still running"
    held.release()
    stopper.join(PATIENCE_SECONDS)
    assert not stopper.is_alive()
    serving.thread.join(PATIENCE_SECONDS)
    assert not serving.thread.is_alive() and serving.error is None, serving.error
    assert held.result() == "released"  # finished within the grace period, not given back


def test_stop_raises_timeout_error_when_run_has_not_returned_in_time(
    serve: Any, held: Held
) -> None:
    serving = serve()
    held.wait_started()
    with pytest.raises(TimeoutError, match=r"did not stop within 100 ms.*call stop\(\) again"):
        serving.stop(timeout=100)
    assert serving.thread.is_alive()
    held.release()
    serving.stop()
    serving.thread.join(PATIENCE_SECONDS)
    assert not serving.thread.is_alive() and serving.error is None, serving.error
    assert held.result() == "released"


def test_a_pool_stopped_before_it_runs_returns_from_run_at_once(serve: Any) -> None:
    serving = serve(stop_first=True)
    serving.thread.join(PATIENCE_SECONDS)
    assert not serving.thread.is_alive() and serving.error is None, serving.error


def test_a_pool_runs_once(serve: Any) -> None:
    serving = serve()
    serving.stop()
    with pytest.raises(RuntimeError, match="has run already: build a new pool"):
        serving.run_again()


def test_wake_ends_a_wait_for_work_with_one_token_at_most(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    broker = Broker(RedisBackend(redis_url, namespace=namespace))
    broker.wake(["a", "b"])
    broker.wake(["a"])
    assert redis_client.llen(f"{namespace}:queues:{{a}}:wake") == 1
    assert broker.wait_for_work(["a"], PATIENCE_SECONDS * 1000) is True
    assert broker.wait_for_work(["b"], PATIENCE_SECONDS * 1000) is True
    assert broker.wait_for_work(["a", "b"], 10) is False


async def test_async_wake_ends_a_wait_for_work(redis_url: str, namespace: str) -> None:
    broker = AsyncBroker(AsyncRedisBackend(redis_url, namespace=namespace))
    try:
        await broker.wake(["a"])
        assert await broker.wait_for_work(["a"], PATIENCE_SECONDS * 1000) is True
    finally:
        await broker.backend.conn.aclose()


STOPPED_THEN_SIGTERM = """
import os, signal, sys, threading
sys.path.insert(0, {here!r})
import holdwork
from alsek.core.worker.sync import InProcessThreadPool

hold, _ = holdwork.sync_task({url!r}, {namespace!r}, "thread")
pool = InProcessThreadPool(tasks=[hold], n_threads=1)  # main thread: installs the handlers
serving = threading.Thread(target=pool.run)
serving.start()
pool.stop()
serving.join()
os.kill(os.getpid(), signal.SIGTERM)  # the app's own shutdown, later: not a second signal
print("survived")
"""


def test_a_stopped_pool_no_longer_hears_stop_signals(redis_url: str, namespace: str) -> None:
    script = STOPPED_THEN_SIGTERM.format(
        here=str(Path(__file__).parent), url=redis_url, namespace=namespace
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip()) == (0, "survived"), done.stderr
