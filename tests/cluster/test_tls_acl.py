"""TLS (``rediss://``) and ACL users through every connection alsek makes: the producer's
backend, the pub/sub hub of its waiters, an ``alsek thread-pool`` and its process groups, which
rebuild their clients from the URL's settings in another process.

The server has its default user switched off and is reached only through a TLS proxy, so any
connection that dropped the TLS settings or the credentials on the way would fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from alsek.core.status import TaskStatus
from alsek.testing import ClusterServers, RedisServer, TlsProxy, acl_user_url, add_acl_user
from tests.subprocesses import SessionProcess

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # tlswork, as the pool imports it

from tlswork import tasks  # noqa: E402

pytestmark = pytest.mark.slow

USER, PASSWORD = "alsek-worker", "s3cret pass"
ALSEK_COMMAND = str(Path(sys.executable).with_name("alsek"))


@pytest.fixture
def serve(tmp_path: Path, namespace: str) -> Iterator[Callable[[str], SessionProcess]]:
    """``serve(url)``: ``alsek thread-pool tlswork.tasks`` (one process group) on ``url``."""
    started: list[SessionProcess] = []

    def start(url: str) -> SessionProcess:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            tasks.URL_VAR: url,
            tasks.NAMESPACE_VAR: namespace,
        }
        args = [ALSEK_COMMAND, "thread-pool", "tlswork.tasks", "--n_threads", "4"]
        args += ["--n_processes", "1", "--log-level", "WARNING"]
        started.append(SessionProcess("tls-pool", args, env, tmp_path))
        return started[-1]

    yield start
    for process in started:
        process.kill_session()


def run_some(url: str, namespace: str, pool: SessionProcess) -> None:
    """Submit messages and wait for each (through the hub: pub/sub over the same URL)."""
    task = tasks.build(url, namespace)
    messages = task.generate_many(args_list=[(i,) for i in range(20)])
    try:
        for i, message in enumerate(messages):
            assert task.status_tracker.wait_for(message, TaskStatus.SUCCEEDED, timeout=30) is (
                TaskStatus.SUCCEEDED
            ), pool.output(3000)
            assert task.result_store.get(message, timeout=10_000) == 2 * i
    finally:
        task.broker.backend.conn.close()


def clients_of(server: RedisServer, client: Any) -> list[dict[str, Any]]:
    """The connections ``server`` holds, but the one asking."""
    return [c for c in client.client_list() if c.get("cmd") != "client|list"]


def test_a_pool_and_its_process_groups_run_over_tls_as_an_acl_user(
    make_redis_server: Callable[..., RedisServer],
    make_tls_proxy: Callable[[int], TlsProxy],
    serve: Callable[[str], SessionProcess],
    namespace: str,
) -> None:
    server = make_redis_server(flavour="valkey")
    add_acl_user([server], USER, PASSWORD)
    url = acl_user_url(make_tls_proxy(server.port).url, USER, PASSWORD)
    server.command("ACL", "SETUSER", "default", "off")  # from here on only USER gets in
    pool = serve(url)
    run_some(url, namespace, pool)
    inspector = redis.Redis.from_url(url, decode_responses=True)
    try:
        connections = clients_of(server, inspector)
        assert {c["user"] for c in connections} == {USER}
        assert any(int(c.get("sub", 0)) for c in connections)  # the pool hears revocations
    finally:
        inspector.close()
    assert pool.alive, pool.output(3000)


def test_a_cluster_pool_runs_over_tls_as_an_acl_user(
    make_cluster_servers: Callable[..., ClusterServers],
    serve: Callable[[str], SessionProcess],
    namespace: str,
) -> None:
    cluster = make_cluster_servers(tls=True, replicas_per_master=0)
    add_acl_user(cluster.servers, USER, PASSWORD)
    url = acl_user_url(cluster.tls_url, USER, PASSWORD).replace("rediss://", "rediss+cluster://")
    pool = serve(url)
    run_some(url, namespace, pool)
    for server in cluster.servers:
        users = {c["user"] for c in clients_of(server, server.client())}
        assert users <= {USER, "default"}
        assert USER in users, f"{server!r}: no connection of {USER}"
    assert pool.alive, pool.output(3000)
