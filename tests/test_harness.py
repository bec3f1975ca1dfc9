"""The test harness itself: a real server answers, and a namespace is cleaned after use."""

from __future__ import annotations

import redis

from alsek.testing import RedisServer, find_redis_server_binary


def test_session_server_is_real_redis(redis_client: redis.Redis) -> None:
    info = redis_client.info("server")
    major, minor = (int(part) for part in str(info["redis_version"]).split(".")[:2])
    assert (major, minor) >= (6, 2)


def test_binary_is_found() -> None:
    assert find_redis_server_binary().endswith("redis-server")


def test_server_restart_keeps_port_and_stop_removes_directory() -> None:
    server = RedisServer(extra_args=("--appendonly", "yes", "--appendfsync", "always"))
    with server:
        client = redis.Redis.from_url(server.url)
        client.set("survives", "1")
        port = server.port
        server.restart()
        assert server.port == port
        assert client.get("survives") == b"1"
        client.close()
        directory = server._dir
    assert directory is not None
    import os

    assert not os.path.exists(directory)
    assert not server.running
