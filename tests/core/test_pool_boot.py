"""What a pool announces when it starts, and how it waits for Redis to answer (real pools on the
suite's Redis, not run)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from alsek.core.broker import Broker
from alsek.core.steps.drivers import run
from alsek.core.task import Task
from alsek.core.worker import ProcessWorkerPool
from alsek.exceptions import RedisAccessError
from alsek.storage.backends.redis.sync import RedisBackend
from alsek.testing import RedisServer


def add(a: int, b: int) -> int:
    return a + b


@pytest.fixture(autouse=True)
def signal_handlers() -> Iterator[None]:
    """Put back the SIGTERM/SIGINT handlers building a pool installs."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def pool_over(url: str, namespace: str, **options: object) -> ProcessWorkerPool:
    broker = Broker(RedisBackend(url, namespace=namespace))
    tasks = [
        Task(add, broker=broker, name=name, queue=queue, mechanism="process")
        for name, queue in (("add", "math"), ("plus", "math"), ("sum_up", "reports"))
    ]
    return ProcessWorkerPool(tasks=tasks, n_processes=1, **options)  # type: ignore[arg-type]


def test_boot_lines_name_redis_and_every_queue_in_claim_order(
    redis_url: str, namespace: str
) -> None:
    lines = pool_over(redis_url, namespace, queues=["reports", "urgent"])._boot_lines()
    assert f"Redis at {redis_url}, namespace {namespace!r}" in lines
    assert lines[-3:] == [
        "Queue 'reports': sum_up",
        "Queue 'urgent': no task declares it (messages routed to it run here)",
        "Not consuming queue 'math' (of add, plus)",
    ]


def test_task_specific_mode_lists_the_tasks_each_queue_is_claimed_for(
    redis_url: str, namespace: str
) -> None:
    pool = pool_over(redis_url, namespace, task_specific_mode=True)
    assert pool._boot_lines()[-2:] == ["Queue 'math': add, plus", "Queue 'reports': sum_up"]


def test_a_reachable_redis_is_reached_at_once(redis_url: str, namespace: str) -> None:
    assert run(pool_over(redis_url, namespace)._reach_redis_steps()) is True


def test_waiting_for_redis_ends_with_a_stop_signal(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    never_started = RedisServer()
    pool = pool_over(never_started.url, namespace)
    rests: list[int] = []

    def rest_then_stop(timeout_ms: int) -> None:
        rests.append(timeout_ms)
        if len(rests) == 3:
            pool.stop_signal.exit_event.set()

    pool._rest = rest_then_stop  # type: ignore[method-assign]
    assert run(pool._reach_redis_steps()) is False
    assert rests == sorted(rests) and rests[0] < rests[-1]  # backing off
    failures = [r for r in caplog.records if "Cannot reach Redis" in r.getMessage()]
    assert len(failures) == 1
    assert never_started.url in failures[0].getMessage()


def test_refused_credentials_end_the_wait_at_once(
    make_redis_server: type[RedisServer], namespace: str
) -> None:
    server = make_redis_server(config_lines=("requirepass right-one",))
    pool = pool_over(f"redis://:wrong-one@127.0.0.1:{server.port}/0", namespace)
    with pytest.raises(RedisAccessError, match=r"Redis at redis://:\*\*\*@127\.0\.0\.1:\d+/0 "):
        run(pool._reach_redis_steps())


def test_a_database_redis_does_not_have_ends_the_wait_at_once(
    redis_url: str, namespace: str
) -> None:
    pool = pool_over(redis_url.rsplit("/", 1)[0] + "/99", namespace)
    with pytest.raises(RedisAccessError, match=r"refused the pool \(.*DB index.*\); check its URL"):
        run(pool._reach_redis_steps())
