"""Fixtures for the pool tests: a ``Lab`` per pool kind, and pool subprocesses cleaned up."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from poolharness import KINDS, Lab, PoolKind, PoolProcess, subprocess_env
from poolwork import probe


@pytest.fixture(params=sorted(KINDS))
def pool_kind(request: pytest.FixtureRequest) -> PoolKind:
    """Each pool kind in turn."""
    return KINDS[request.param]


@pytest.fixture
def probe_env(redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the tasks' evidence at this test's namespace (pool children inherit it)."""
    monkeypatch.setenv(probe.URL_VAR, redis_url)
    monkeypatch.setenv(probe.NAMESPACE_VAR, namespace)


@pytest.fixture
def signal_handlers() -> Iterator[None]:
    """Put back the SIGTERM/SIGINT handlers a pool built in this process installed."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.fixture
def lab(
    pool_kind: PoolKind, redis_url: str, namespace: str, probe_env: None, signal_handlers: None
) -> Iterator[Lab]:
    """Broker, tracker and store of this test, and pools of ``pool_kind`` over its tasks."""
    built = Lab(pool_kind, redis_url, namespace)
    yield built
    built.broker.backend.conn.close()


@pytest.fixture
def spawn_pool(
    redis_url: str, namespace: str, tmp_path: Path
) -> Iterator[Callable[[PoolKind, list[str]], PoolProcess]]:
    """Start pool subprocesses (``args``: the whole command line); each is killed with its
    whole session at the end of the test."""
    started: list[PoolProcess] = []

    def spawn(kind: PoolKind, args: list[str]) -> PoolProcess:
        process = PoolProcess(args, subprocess_env(kind, redis_url, namespace), tmp_path)
        started.append(process)
        return process

    yield spawn
    for process in started:
        process.kill_group()
