"""Fixtures of the operator tests (``tests/admin`` and ``tests/cli``): the ``opswork`` tasks in
this test's namespace, an admin of each kind (sync and async), and worker pools run by the
``alsek`` command in subprocesses. Each of those directories' conftest imports them."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import opsenv
import pytest

from alsek.admin import Admin, AsyncAdmin
from alsek.core.broker import AsyncBroker
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from tests.polling import call
from tests.subprocesses import SessionProcess

HERE = Path(__file__).resolve().parent
ALSEK_COMMAND = str(Path(sys.executable).with_name("alsek"))
#: Beats of the test pools: short, so a killed pool leaves the list within seconds.
HEARTBEAT_MS = 300
#: Options that keep an idle test pool responsive to stop signals.
IDLE_OPTIONS = (
    "--consumer_backoff_factor", "100",
    "--consumer_backoff_floor", "100",
    "--consumer_backoff_ceiling", "200",
    "--grace_period", "2000",
)  # fmt: skip
#: The options that make each pool command small.
POOL_OPTIONS = {
    "thread": ("thread-pool", "--n_threads", "2", "--n_processes", "1"),
    "process": ("process-pool", "--n_processes", "2"),
    "async": ("async-pool", "--n_tasks", "3"),
}


@pytest.fixture
def ops_env(redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of ``opswork`` (and of pool subprocesses)."""
    monkeypatch.setenv(opsenv.URL_VAR, redis_url)
    monkeypatch.setenv(opsenv.NAMESPACE_VAR, namespace)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def ops(ops_env: dict[str, str]) -> Iterator[ModuleType]:
    """``opswork``, imported for this test's namespace."""
    module = importlib.import_module("opswork")
    module = importlib.reload(module)
    yield module
    module.broker.backend.conn.close()


class Pools:
    """Pool subprocesses of one test, killed with their children at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.spawned: list[SessionProcess] = []

    def start(self, kind: str, *options: str, package: str = "opswork") -> SessionProcess:
        """``alsek <kind>-pool opswork`` with short beats, and ``options``."""
        command, *sizes = POOL_OPTIONS[kind]
        args = [ALSEK_COMMAND, command, package, *sizes, *IDLE_OPTIONS]
        args += ["--heartbeat_interval", str(HEARTBEAT_MS), *options]
        process = SessionProcess(f"{kind}-pool", args, self.env, self.log_dir)
        self.spawned.append(process)
        return process

    def close(self) -> None:
        for process in self.spawned:
            process.kill_session()


@pytest.fixture
def pools(ops_env: dict[str, str], tmp_path: Path) -> Iterator[Pools]:
    """Start worker pools in subprocesses (killed afterwards)."""
    started = Pools(ops_env, tmp_path)
    yield started
    started.close()


class AdminView:
    """``Admin`` or ``AsyncAdmin`` behind one awaitable interface (``await view.queues()``)."""

    def __init__(self, admin: Any) -> None:
        self.admin = admin

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.admin, name)

        async def invoke(*args: Any, **kwargs: Any) -> Any:
            return await call(method, *args, **kwargs)

        return invoke


@pytest.fixture(params=["sync", "async"])
async def admin(
    request: pytest.FixtureRequest, ops: ModuleType, redis_url: str, namespace: str
) -> AsyncIterator[AdminView]:
    """An ``Admin`` over ``opswork``'s broker, or an ``AsyncAdmin`` over a broker of the same
    Redis and namespace."""
    if request.param == "sync":
        yield AdminView(Admin(ops.broker))
        return
    broker = AsyncBroker(AsyncRedisBackend(redis_url, namespace=namespace))
    yield AdminView(AsyncAdmin(broker))
    await broker.backend.conn.aclose()
