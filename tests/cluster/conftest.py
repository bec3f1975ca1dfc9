"""Fixtures of the scale-out tests: a primary with its replica, a failover run in this test's
namespace."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from failover import FailoverRun
from failwork import settings

from alsek.testing import RedisServer
from alsek.testing.server import REPLICATION_LINES, replicas_caught_up


@pytest.fixture
def replicated(
    make_redis_server: Callable[..., RedisServer],
) -> Callable[..., tuple[RedisServer, RedisServer]]:
    """``replicated(flavour="redis")``: a primary and its replica, linked and caught up."""

    def make(flavour: str = "redis") -> tuple[RedisServer, RedisServer]:
        primary = make_redis_server(flavour=flavour, config_lines=REPLICATION_LINES)
        replica = make_redis_server(
            flavour=flavour,
            config_lines=(*REPLICATION_LINES, f"replicaof 127.0.0.1 {primary.port}"),
        )
        deadline = time.monotonic() + 10
        while not replicas_caught_up(primary, [replica]) or not _linked(replica):
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.02)
        return primary, replica

    return make


def _linked(replica: RedisServer) -> bool:
    return replica.info("replication").get("master_link_status") == "up"


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
