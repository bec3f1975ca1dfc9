"""Fixtures of the fault tests: a lab on a Redis server of its own, and the figures file.

Each test gets a fresh ``redis-server`` (even when ``ALSEK_TEST_REDIS_URL`` is set): these tests
restart it, kill its clients and measure its memory, which must not touch anything else.
Figures a test records in ``figures`` are printed and merged into ``results.json`` (beside
this file, not versioned); ``docs/reliability.md`` quotes the last full run.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlab import AOF_ARGS, QUICK, FaultLab

from alsek.testing import RedisServer

RESULTS = Path(__file__).resolve().parent / "results.json"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether the test body passed (the figures say so)."""
    report = yield
    if report.when == "call":
        item.stash[_PASSED] = report.passed
    return report


_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[Callable[..., FaultLab]]:
    """Build a lab (``aof=True``: a server that writes every command to disk before
    answering). Its pools and its server are stopped afterwards, whatever happened."""
    built: list[tuple[FaultLab, RedisServer]] = []

    def make(aof: bool = False) -> FaultLab:
        server = RedisServer(extra_args=AOF_ARGS if aof else ()).start()
        lab = FaultLab(server, f"alsek-faults-{uuid.uuid4().hex[:8]}", tmp_path / "logs")
        built.append((lab, server))
        return lab

    yield make
    for lab, server in built:
        try:
            lab.close()
        finally:
            server.stop()


@pytest.fixture
def lab(make_lab: Callable[..., FaultLab]) -> FaultLab:
    """A lab on a fresh Redis server."""
    return make_lab()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """What the test measured; printed and saved in ``results.json`` under the test's name."""
    measured: dict[str, Any] = {}
    started = time.monotonic()
    yield measured
    if not measured:
        return
    measured["seconds"] = round(time.monotonic() - started, 1)
    measured["passed"] = request.node.stash.get(_PASSED, False)
    measured["quick_sizes"] = QUICK
    print(f"\n{request.node.name}: {json.dumps(measured)}")
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    saved[request.node.name] = measured
    RESULTS.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
