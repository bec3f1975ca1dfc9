"""Single servers of both flavours: the right binary, config lines applied, restart and kill."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from polling import eventually

from alsek.testing import RedisServer, find_server_binary, processes


@pytest.mark.parametrize(
    ("flavour", "binary_name", "version_field", "version_prefix"),
    [
        ("redis", "redis-server", "redis_version", "6.2."),
        ("valkey", "valkey-server", "valkey_version", "8.1."),
    ],
)
def test_each_flavour_runs_its_own_server_version(
    make_redis_server: Callable[..., RedisServer],
    flavour: str,
    binary_name: str,
    version_field: str,
    version_prefix: str,
) -> None:
    assert os.path.basename(find_server_binary(flavour)) == binary_name  # type: ignore[arg-type]
    server = make_redis_server(flavour=flavour)
    client = server.client()
    try:
        assert client.ping()
        assert str(client.info("server")[version_field]).startswith(version_prefix)
    finally:
        client.close()


def test_unknown_flavour_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'redis', 'valkey'"):
        find_server_binary("keydb")  # type: ignore[arg-type]


def test_config_lines_reach_the_server(make_redis_server: Callable[..., RedisServer]) -> None:
    server = make_redis_server(flavour="valkey", config_lines=("maxmemory-policy allkeys-lru",))
    assert server.command("CONFIG", "GET", "maxmemory-policy") == {
        "maxmemory-policy": "allkeys-lru"
    }


def test_a_bad_config_line_fails_start_with_the_servers_complaint() -> None:
    server = RedisServer(config_lines=("no-such-directive yes",))
    with pytest.raises(RuntimeError, match="no-such-directive"):
        server.start()
    server.stop()
    assert not server.running


def test_kill_keeps_the_directory_and_restart_serves_the_same_port(
    make_redis_server: Callable[..., RedisServer],
) -> None:
    server = make_redis_server(flavour="valkey")
    port, directory = server.port, server.directory
    server.kill()
    assert not server.running
    assert directory is not None and directory.is_dir()
    server.start()
    assert server.port == port
    assert server.command("PING") is True


def test_a_server_started_from_a_short_lived_thread_outlives_the_thread(
    make_redis_server: Callable[..., RedisServer],
) -> None:
    # The parent-death signal follows the thread that forked: the harness forks from one
    # long-lived thread so that this server is not killed when its starting thread ends.
    started: list[RedisServer] = []
    thread = threading.Thread(target=lambda: started.append(make_redis_server()))
    thread.start()
    thread.join()
    # join() returns a little before the OS thread is gone: wait for the kernel to see it go.
    task = Path(f"/proc/self/task/{thread.native_id}")
    eventually(lambda: not task.exists(), what="the starting thread gone from the kernel")
    (server,) = started
    client = redis.Redis(port=server.port, socket_timeout=5)
    try:
        for _ in range(3):  # several round trips, well after the thread has gone
            assert client.ping()
    finally:
        client.close()
    assert server.running


def test_a_picked_port_taken_before_the_start_is_replaced_by_a_free_one() -> None:
    """Parallel test workers can pick the same free port: the second server moves on."""
    server = RedisServer()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    squatter.bind(server.address)
    squatter.listen()
    taken = server.port
    try:
        server.start()
        assert server.port != taken
        client = server.client()
        try:
            assert client.ping()
        finally:
            client.close()
    finally:
        server.stop()
        squatter.close()


def test_a_picked_port_another_server_answers_on_is_replaced_too() -> None:
    """The other server answers PING on the port before ours fails to bind: only our own
    process answering counts as ready."""
    squatter = RedisServer().start()
    server = RedisServer()
    server.port = squatter.port  # as if the pick had collided with the squatter's
    try:
        server.start()
        assert server.port != squatter.port
        assert processes.serving_pid(server.port) == server.pid
        assert processes.serving_pid(squatter.port) == squatter.pid
    finally:
        server.stop()
        squatter.stop()


def test_a_port_the_caller_chose_is_never_changed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = RedisServer(port=port, startup_timeout_seconds=5)
        with pytest.raises(RuntimeError, match="Address already in use"):
            server.start()
        server.stop()
        assert server.port == port
