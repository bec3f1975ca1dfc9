"""Fixtures for the pool tests: a ``Lab`` per pool kind, its pools and subprocesses cleaned up."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from poolharness import KINDS, Lab, PoolKind
from poolwork import probe


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(ability): the body needs an ability some pool kinds lack (``PoolKind.lacks``); "
        "it is skipped for them, with their reason",
    )


@pytest.fixture(params=sorted(KINDS))
def pool_kind(request: pytest.FixtureRequest) -> PoolKind:
    """Each pool kind in turn; skips the test for a kind lacking an ability it ``needs``."""
    kind = KINDS[request.param]
    for marker in request.node.iter_markers("needs"):
        for ability in marker.args:
            if ability in kind.lacks:
                pytest.skip(f"{kind.name} pool lacks {ability}: {kind.lacks[ability]}")
    return kind


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
def make_lab(
    redis_url: str, namespace: str, tmp_path: Path, probe_env: None, signal_handlers: None
) -> Iterator[Callable[[PoolKind], Lab]]:
    """Build labs in this test's namespace; each is closed (subprocesses killed) afterwards."""
    built: list[Lab] = []

    def make(kind: PoolKind) -> Lab:
        built.append(Lab(kind, redis_url, namespace, tmp_path))
        return built[-1]

    yield make
    for lab in built:
        lab.close()


@pytest.fixture
def lab(pool_kind: PoolKind, make_lab: Callable[[PoolKind], Lab]) -> Lab:
    """A lab running pools of ``pool_kind``."""
    return make_lab(pool_kind)
