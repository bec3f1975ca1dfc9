"""``alsek scheduler PACKAGE``: two replicas run a package's trigger tasks (sync and async) side
by side, and each tick yields exactly one message; a package without trigger tasks, or one
that cannot be imported, is refused in one line."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis

from alsek.core.broker import Broker, ClaimSource
from alsek.storage.backends.redis.sync import RedisBackend
from tests.polling import eventually
from tests.subprocesses import SessionProcess

ALSEK = str(Path(sys.executable).with_name("alsek"))

PACKAGE_SOURCE = """\
import json
import os

from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.broker import AsyncBroker, Broker
from alsek.core.middleware import Middleware
from alsek.core.task import task
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from alsek.storage.backends.redis.sync import RedisBackend

URL, NAMESPACE = {url!r}, {namespace!r}
broker = Broker(RedisBackend(URL, namespace=NAMESPACE))
async_broker = AsyncBroker(AsyncRedisBackend(URL, namespace=NAMESPACE))


class Witness(Middleware):
    \"\"\"Records every message this process submits, with its pid.\"\"\"

    def after_submit(self, message):
        record = json.dumps([message.task_name, message.uuid, os.getpid()])
        broker.backend.conn.rpush(NAMESPACE + ":submitted", record)


class AsyncWitness(Middleware):
    async def after_submit(self, message):
        record = json.dumps([message.task_name, message.uuid, os.getpid()])
        await async_broker.backend.conn.rpush(NAMESPACE + ":submitted", record)


broker.add_middleware(Witness())
async_broker.add_middleware(AsyncWitness())


@task(broker, queue="ticks", trigger=IntervalTrigger(seconds=1))
def tick() -> None:
    pass


@task(async_broker, queue="ticks", trigger=IntervalTrigger(seconds=1))
async def async_tick() -> None:
    pass
"""


def write_package(root: Path, name: str, source: str) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text(source)


def scheduler_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return env


def submitted(client: redis.Redis, namespace: str) -> list[tuple[str, str, int]]:
    return [tuple(json.loads(raw)) for raw in client.lrange(f"{namespace}:submitted", 0, -1)]


@pytest.mark.slow
def test_two_schedulers_yield_one_message_per_tick(
    tmp_path: Path, redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    write_package(tmp_path, "schedpkg", PACKAGE_SOURCE.format(url=redis_url, namespace=namespace))
    replicas = [
        SessionProcess(
            "scheduler", [ALSEK, "scheduler", "schedpkg"], scheduler_env(tmp_path), tmp_path
        )
        for _ in range(2)
    ]
    try:
        # Both replicas must be scheduling before the ticks are counted: one alone can make
        # the ticks while the other is still importing (a loaded machine), and a SIGTERM then
        # finds it without its handler.
        for replica in replicas:
            eventually(
                lambda replica=replica: "Scheduler online" in replica.stderr(),
                timeout=60,
                interval=0.1,
                what="a replica online",
            )

        def ticks_of_both_tasks() -> bool:
            counts = Counter(name for name, _, _ in set(submitted(redis_client, namespace)))
            return counts["tick"] >= 3 and counts["async_tick"] >= 3

        eventually(ticks_of_both_tasks, timeout=30, interval=0.1, what="three ticks of each task")
        for replica in replicas:
            replica.signal(signal.SIGTERM)
        for replica in replicas:
            assert replica.wait(20) == 0, replica.output()
            output = replica.output()
            assert "Scheduled 'tick'" in output and "Scheduled 'async_tick'" in output
    finally:
        for replica in replicas:
            replica.kill_session()
    records = submitted(redis_client, namespace)
    per_uuid = Counter(uuid for _, uuid, _ in records)
    assert set(per_uuid.values()) == {1}, per_uuid  # no tick was submitted twice
    broker = Broker(RedisBackend(redis_url, namespace=namespace))
    claimed = broker.claim([ClaimSource("ticks")], 1_000, owner_id="test").messages
    assert sorted(m.uuid for m in claimed) == sorted(per_uuid)  # one message per tick
    broker.backend.conn.close()


def test_a_package_without_trigger_tasks_is_refused(tmp_path: Path) -> None:
    write_package(tmp_path, "plain", "x = 1\n")
    process = SessionProcess(
        "scheduler", [ALSEK, "scheduler", "plain"], scheduler_env(tmp_path), tmp_path
    )
    assert process.wait(30) == 1
    assert "Error: 'plain' has no trigger tasks" in process.output()


def test_a_package_that_cannot_be_imported_is_refused(tmp_path: Path) -> None:
    write_package(tmp_path, "broken", "raise RuntimeError('no database')\n")
    process = SessionProcess(
        "scheduler", [ALSEK, "scheduler", "broken"], scheduler_env(tmp_path), tmp_path
    )
    assert process.wait(30) == 1
    assert "Cannot import 'broken': RuntimeError: no database" in process.output()
