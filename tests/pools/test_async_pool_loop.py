"""The async pool's event loop: uvloop or asyncio's own, as asked (``loop=``, ``--loop``)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from typing import Any

import pytest

from alsek import AsyncBroker, task
from alsek.core.worker.asyncio import AsyncSingleProcessWorkerPool
from alsek.storage.backends import AsyncRedisBackend
from alsek.utils.loops import check_loop_name, loop_kind, run_on_loop
from tests.polling import eventually

uvloop = pytest.importorskip("uvloop")


class LoopProbe:
    """A pool over one task that records the type of the loop it runs on, in a thread."""

    def __init__(self, url: str, namespace: str, loop: str) -> None:
        self.url, self.namespace, self.loop = url, namespace, loop
        self.seen: list[type] = []
        self.error: BaseException | None = None
        self.pool: AsyncSingleProcessWorkerPool | None = None
        self.pool_loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            run_on_loop(self._main(), self.loop)
        except BaseException as error:
            self.error = error

    async def _main(self) -> None:
        broker = AsyncBroker(AsyncRedisBackend(self.url, namespace=self.namespace))

        @task(broker, queue="loops")
        async def where() -> None:
            self.seen.append(type(asyncio.get_running_loop()))

        self.pool = AsyncSingleProcessWorkerPool(tasks=[where], n_tasks=2, loop=self.loop)
        self.pool_loop = asyncio.get_running_loop()
        try:
            await where.generate()
            await self.pool.run()
        finally:
            await broker.backend.conn.aclose()

    def stop(self) -> None:
        if self.pool is not None and self.pool_loop is not None:
            asyncio.run_coroutine_threadsafe(self.pool.stop(), self.pool_loop).result(30)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the pool did not stop"


@pytest.mark.parametrize(("loop", "expected"), [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_the_pool_runs_on_the_loop_it_is_asked_for(
    redis_url: str, namespace: str, loop: str, expected: str
) -> None:
    probe = LoopProbe(redis_url, namespace, loop)
    probe.thread.start()
    try:
        eventually(lambda: probe.seen or probe.error, timeout=30, what="the task ran")
        assert probe.error is None, probe.error
        (seen,) = probe.seen
        assert (seen.__module__.startswith("uvloop")) is (expected == "uvloop"), seen
        assert seen is (uvloop.Loop if expected == "uvloop" else asyncio.SelectorEventLoop)
    finally:
        probe.stop()
    assert probe.error is None, probe.error


def test_auto_takes_uvloop_when_installed(redis_url: str, namespace: str) -> None:
    probe = LoopProbe(redis_url, namespace, "auto")
    probe.thread.start()
    try:
        eventually(lambda: probe.seen or probe.error, timeout=30, what="the task ran")
        assert probe.seen == [uvloop.Loop], probe.error
    finally:
        probe.stop()


def test_a_pool_awaited_on_another_loop_says_how_to_start_it(namespace: str) -> None:
    async def main() -> None:
        backend = AsyncRedisBackend("redis://127.0.0.1:1/0", namespace=namespace)

        @task(AsyncBroker(backend), queue="loops")
        async def noop() -> None: ...

        pool = AsyncSingleProcessWorkerPool(tasks=[noop], loop="uvloop")
        await pool.run()

    with pytest.raises(RuntimeError, match=r"built with loop='uvloop' but runs on asyncio's loop"):
        asyncio.run(main())


def test_asking_for_uvloop_without_it_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    with pytest.raises(ValueError, match=r"uvloop, which is not installed: pip install"):
        check_loop_name("uvloop")
    assert check_loop_name("auto") == "auto"


def test_a_bad_loop_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"loop must be one of auto, asyncio, uvloop, not 'tokio'"):
        AsyncSingleProcessWorkerPool(tasks=[], loop="tokio")  # type: ignore[arg-type]


def test_loop_kind_names_both() -> None:
    assert run_on_loop(_kind(), "uvloop") == "uvloop"
    assert run_on_loop(_kind(), "asyncio") == "asyncio"


async def _kind() -> str:
    return loop_kind(asyncio.get_running_loop())


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("", r"Error: Invalid value for '--loop'"),
        (
            "import sys; sys.modules['uvloop'] = None\n",
            r"Error: loop='uvloop' asks for uvloop, which is not installed",
        ),
    ],
    ids=["bad-name", "not-installed"],
)
def test_the_cli_refuses_a_loop_in_one_line(setup: str, expected: str) -> None:
    name = "uvloop" if setup else "tokio"
    code = f"{setup}from alsek.cli.cli import main\nmain()"
    done = subprocess.run(
        [sys.executable, "-c", code, "async-pool", "json", "--loop", name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert _one_error_line(done.stderr, expected), done.stderr


def _one_error_line(stderr: str, pattern: str) -> Any:
    errors = [line for line in stderr.splitlines() if line.startswith("Error")]
    return len(errors) == 1 and re.search(pattern, errors[0]) and "Traceback" not in stderr
