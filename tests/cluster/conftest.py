"""Fixtures of the scale-out tests: a failover run in this test's namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from failover import FailoverRun
from failwork import settings


@pytest.fixture
def failover_run(
    _redis_server_url: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, int], FailoverRun]]:
    """``failover_run(url, wait_replicas)``: pools, producer and evidence on ``url``; the
    evidence lives on the suite's Redis 6.2 server, which no fault touches."""
    made: list[FailoverRun] = []

    def make(url: str, wait_replicas: int) -> FailoverRun:
        monkeypatch.setenv(settings.URL_VAR, url)
        monkeypatch.setenv(settings.NAMESPACE_VAR, namespace)
        monkeypatch.setenv(settings.EVIDENCE_VAR, _redis_server_url)
        monkeypatch.setenv(settings.WAIT_REPLICAS_VAR, str(wait_replicas))
        made.append(FailoverRun(url, _redis_server_url, namespace, tmp_path, wait_replicas))
        return made[-1]

    yield make
    for run in made:
        run.close()
