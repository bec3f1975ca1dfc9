"""What ``alsek <kind>-pool`` tells its operator: what it serves and where Redis is (password
masked), "online" only once Redis answered, the tasks' own logs in the pool's format, and a
failure's traceback once. Every pool kind runs in a real subprocess."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from poolharness import ALSEK_COMMAND, CLI_IDLE_OPTIONS, Lab, PoolProcess

from alsek.core.task import Task
from alsek.exceptions import TaskFailedError
from alsek.testing import RedisServer
from tests.polling import eventually

pytestmark = pytest.mark.slow  # every test starts the command in a subprocess

#: Package run by the logging tests: a task that logs through the application's own logger,
#: and one that always fails (retried once), on the lab's Redis and namespace.
LOUD_SOURCE = """\
import logging

from alsek.core.task import {task_class}
from poolwork import {work}, probe

broker, _, store = {work}.components(*probe.location())
app_log = logging.getLogger("userapp.billing")


{define} chatty(word):
    app_log.info("task says %s", word)
    return word


{define} broken():
    raise ValueError("no good at all")


options = dict(broker=broker, queue="loud", mechanism={mechanism!r}, result_store=store)
chatty_task = {task_class}(chatty, name="chatty", max_retries=0, **options)
broken_task = {task_class}(broken, name="broken", max_retries=1, backoff=None, **options)
"""

#: Package whose one task's broker is on the Redis at ``{url}``.
REMOTE_SOURCE = """\
from alsek.core.broker import {broker_class}
from alsek.core.task import {task_class}
from alsek.storage.backends.redis.{backend_module} import {backend_class}

broker = {broker_class}({backend_class}({url!r}, namespace="remote"))


{define} ping():
    return "pong"


ping_task = {task_class}(ping, broker=broker, queue="remote", mechanism={mechanism!r})
"""


def source_for(lab: Lab, template: str, **fields: str) -> str:
    """``template`` filled in for the lab's pool kind (sync or async tasks)."""
    is_async = lab.kind.name == "async"
    return template.format(
        task_class="AsyncTask" if is_async else "Task",
        broker_class="AsyncBroker" if is_async else "Broker",
        backend_class="AsyncRedisBackend" if is_async else "RedisBackend",
        backend_module="asyncio" if is_async else "sync",
        work="async_work" if is_async else "sync_work",
        define="async def" if is_async else "def",
        mechanism=lab.kind.mechanism,
        **fields,
    )


@pytest.fixture
def package_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory the pool subprocesses import packages from."""
    path = tmp_path / "packages"
    path.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(path))
    return path


def serve(lab: Lab, package_dir: Path, name: str, source: str, *options: str) -> PoolProcess:
    """Write module ``name`` and start ``alsek <kind>-pool name`` on it."""
    (package_dir / f"{name}.py").write_text(source)
    command = [ALSEK_COMMAND, lab.kind.command, name, *lab.kind.cli_capacity(2)]
    return lab.spawn([*command, *CLI_IDLE_OPTIONS, *options])


def logged(pool: PoolProcess, pattern: str, timeout: float = 20) -> str:
    """Wait until the pool's stderr matches ``pattern``; return the stderr."""
    return str(
        eventually(
            lambda: re.search(pattern, pool.stderr(), re.MULTILINE) and pool.stderr(),
            timeout=timeout,
            what=f"{pattern!r} in the pool's log",
        )
    )


def stop(pool: PoolProcess) -> None:
    pool.signal(signal.SIGTERM)
    assert pool.wait(20) == 0, pool.output()


def test_task_logs_and_failures_show_in_the_pools_format(lab: Lab, package_dir: Path) -> None:
    pool = serve(lab, package_dir, "loud_tasks", source_for(lab, LOUD_SOURCE))
    options = {"broker": lab.broker, "queue": "loud", "mechanism": lab.kind.mechanism}
    chatty = Task(lambda word: None, name="chatty", **options).generate(args=("hello",))
    broken = Task(lambda: None, name="broken", backoff=None, **options).generate()
    assert lab.store.get(chatty, timeout=20_000) == "hello"
    with pytest.raises(TaskFailedError):
        lab.store.get(broken, timeout=20_000)
    log = logged(pool, r"retries exhausted(.|\n)*no good at all")
    stop(pool)

    line = r"^\[[-\d :.]+\] \[[^]]+\] \[[^]]+\] "
    assert re.search(line + r"\[INFO\] userapp\.billing: task says hello$", log, re.M), log
    retry = re.findall(line + r"\[WARNING\] alsek\S*: .*'broken'.*; retrying$", log, re.M)
    assert len(retry) == 1, log
    assert "failed (ValueError: no good at all); retrying" in retry[0]
    failed = re.search(line + r"\[ERROR\] alsek\S*: .*'broken'.*retries exhausted\n", log, re.M)
    assert failed is not None, log
    assert log[failed.end() :].startswith("Traceback (most recent call last)"), log
    assert log.count("Traceback (most recent call last)") == 1, log
    assert log.count('raise ValueError("no good at all")') == 1, log


def test_the_pool_says_what_it_serves_and_where_then_goes_online(
    lab: Lab, package_dir: Path
) -> None:
    pool = serve(lab, package_dir, "loud_tasks", source_for(lab, LOUD_SOURCE))
    log = logged(pool, r"pool online")
    stop(pool)
    lines = log.splitlines()
    where = lab.url.removesuffix("/0") if lab.url.endswith("/0") else lab.url
    redis_line = next(i for i, text in enumerate(lines) if f"Redis at {where}" in text)
    assert f"namespace {lab.namespace!r}" in lines[redis_line]
    queue_line = next(i for i, text in enumerate(lines) if "Queue 'loud': broken, chatty" in text)
    online_line = next(i for i, text in enumerate(lines) if "pool online" in text)
    assert redis_line < online_line and queue_line < online_line


@pytest.fixture
def later_server() -> Iterator[RedisServer]:
    """A Redis server (password ``s3cret``) on a port of its own, not started yet."""
    server = RedisServer(config_lines=("requirepass s3cret",))
    yield server
    server.stop()


def test_an_unreachable_redis_is_named_once_and_waited_for(
    lab: Lab, package_dir: Path, later_server: RedisServer
) -> None:
    url = f"redis://:s3cret@127.0.0.1:{later_server.port}/0"
    source = source_for(lab, REMOTE_SOURCE, url=url)
    pool = serve(lab, package_dir, "remote_tasks", source)
    masked = re.escape(f"redis://:***@127.0.0.1:{later_server.port}/0")
    logged(pool, rf"\[ERROR\] .*Cannot reach Redis at {masked} .*retrying until it answers$")
    assert "online" not in pool.stderr()
    assert pool.alive
    later_server.start()
    log = logged(pool, r"pool online", timeout=30)
    stop(pool)
    assert len(re.findall("Cannot reach Redis", log)) == 1, log
    assert "s3cret" not in log


def test_a_stop_while_waiting_for_redis_ends_the_pool_cleanly(
    lab: Lab, package_dir: Path, later_server: RedisServer
) -> None:
    source = source_for(lab, REMOTE_SOURCE, url=later_server.url)
    pool = serve(lab, package_dir, "remote_tasks", source)
    logged(pool, r"Cannot reach Redis")
    stop(pool)
    assert "Stopped before Redis answered" in pool.stderr()
    assert "Traceback" not in pool.stderr()


def test_credentials_redis_refuses_end_the_pool_in_one_line(
    lab: Lab, package_dir: Path, make_redis_server: type[RedisServer]
) -> None:
    server = make_redis_server(config_lines=("requirepass right-one",))
    url = f"redis://:wrong-one@127.0.0.1:{server.port}/0"
    pool = serve(lab, package_dir, "remote_tasks", source_for(lab, REMOTE_SOURCE, url=url))
    assert pool.wait(30) != 0, pool.output()
    log = pool.stderr()
    (line,) = [text for text in log.splitlines() if "refused" in text]
    assert line.startswith("Error: Redis at redis://:***@127.0.0.1:"), line
    assert "check the credentials" in line
    assert "wrong-one" not in log and "Traceback" not in log
    assert "online" not in log
