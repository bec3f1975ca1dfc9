"""Each pool command, given no options, builds the pool its class builds with no arguments:
every option defaults to the constructor's default."""

from __future__ import annotations

import inspect
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from alsek.cli.cli import main
from alsek.core.worker.asyncio import AsyncSingleProcessWorkerPool
from alsek.core.worker.sync import ProcessWorkerPool, ThreadWorkerPool
from alsek.utils.logging import get_logger
from alsek.utils.scanning import collect_async_tasks, collect_tasks

#: Each command, the pool class it builds, and how its tasks are collected.
COMMANDS: dict[str, tuple[type, Callable[[str], Any]]] = {
    "thread-pool": (ThreadWorkerPool, collect_tasks),
    "process-pool": (ProcessWorkerPool, collect_tasks),
    "async-pool": (AsyncSingleProcessWorkerPool, collect_async_tasks),
}
#: Options that configure no pool.
NOT_POOL_OPTIONS = {"package", "log_level"}

TASKS_SOURCE = """\
from alsek.core.broker import AsyncBroker, Broker
from alsek.core.task import AsyncTask, Task
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend

broker = Broker(RedisBackend({url!r}, namespace={namespace!r}))
async_broker = AsyncBroker(AsyncRedisBackend({url!r}, namespace={namespace!r}))


def add(a, b):
    return a + b


async def async_add(a, b):
    return a + b


in_threads = Task(add, broker=broker, name="in_threads", mechanism="thread")
in_processes = Task(add, broker=broker, name="in_processes", mechanism="process")
in_a_loop = AsyncTask(async_add, broker=async_broker, name="in_a_loop")
"""


@pytest.fixture
def tasks_module(
    redis_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An importable module with a thread, a process and an async task."""
    name = f"cli_default_tasks_{namespace.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(TASKS_SOURCE.format(url=redis_url, namespace=namespace))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def process_state() -> Iterator[None]:
    """Put back what building pools and the command's logging set-up change in this process."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    logger, root = get_logger(), logging.getLogger()
    saved = (list(logger.handlers), logger.level, logger.propagate)
    saved_root = (list(root.handlers), root.level)
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    logger.handlers[:], logger.level, logger.propagate = saved
    root.handlers[:], root.level = saved_root


def record_runs(command: str, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make the pool of ``command`` record itself instead of running; returns the record."""
    pool_class, _ = COMMANDS[command]
    built: list[Any] = []

    def record(pool: Any) -> None:
        built.append(pool)

    async def record_async(pool: Any) -> None:
        built.append(pool)

    is_async = inspect.iscoroutinefunction(pool_class.run)
    monkeypatch.setattr(pool_class, "run", record_async if is_async else record)
    return built


def built_by_command(command: str, package: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The pool ``alsek <command> <package>`` builds, with no options (it is not run)."""
    built = record_runs(command, monkeypatch)
    result = CliRunner().invoke(main, [command, package])
    assert result.exit_code == 0, result.output
    assert len(built) == 1
    return built[0]


def setting(pool: Any, option: str) -> Any:
    """What ``--<option>`` set on ``pool``."""
    if option.startswith("consumer_backoff_"):
        return getattr(pool.backoff, option.removeprefix("consumer_backoff_"))
    return getattr(pool, option)


@pytest.mark.usefixtures("process_state")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_defaults_to_the_pool_constructors_default(
    command: str, tasks_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool_class, collect = COMMANDS[command]
    by_command = built_by_command(command, tasks_module, monkeypatch)
    by_class = pool_class(tasks=list(collect(tasks_module)))

    options = [p.name for p in main.commands[command].params]
    pool_options = sorted(set(options) - NOT_POOL_OPTIONS)
    assert len(pool_options) == len(options) - len(NOT_POOL_OPTIONS)
    assert {o: setting(by_command, o) for o in pool_options} == {
        o: setting(by_class, o) for o in pool_options
    }
    assert by_command.backoff == by_class.backoff
