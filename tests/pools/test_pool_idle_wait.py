"""An idle pool blocks on Redis until work is due; the shortest such wait must not stall, the
claim pipelined behind it comes back with the wake-up, and a stop's wake-up starts nothing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from alsek.core.broker import Broker, ClaimSource
from alsek.core.steps.drivers import run
from alsek.core.task import task
from alsek.core.worker.idle import pipelined
from alsek.core.worker.sync.inprocess import InProcessThreadPool
from alsek.storage.backends.redis.sync import RedisBackend

#: Pool behaviour that depends on the server: on Redis 6.2, Valkey 8.1 and a cluster.
pytestmark = pytest.mark.servers("redis", "valkey", "cluster")


def test_a_one_millisecond_wait_for_work_returns_promptly(redis_url: str, namespace: str) -> None:
    # A pool whose next message is due in 1 ms waits 1 ms. Redis 6.2 read a 0.001 s BLPOP
    # timeout as 0 ("forever"), so the pool stalled until the client's 5 s socket timeout.
    broker = Broker(RedisBackend(redis_url, namespace=namespace))
    started = time.monotonic()
    assert broker.wait_for_work(["pools"], 1) is False
    assert time.monotonic() - started < 1.0
    broker.backend.conn.close()


def _broker_and_task(redis_url: str, namespace: str) -> tuple[Broker, Any]:
    broker = Broker(RedisBackend(redis_url, namespace=namespace))

    @task(broker, queue="pools")
    def idle_probe() -> None:
        """Never run here: the tests only claim it."""

    return broker, idle_probe


@pytest.mark.servers("redis", "valkey")  # a Cluster pool waits and claims in two round trips
def test_the_idle_wait_returns_with_the_claim_that_ran_behind_it(
    redis_url: str, namespace: str
) -> None:
    broker, idle_probe = _broker_and_task(redis_url, namespace)
    message = idle_probe.generate()  # its wake token is waiting: the BLPOP returns at once
    wait = broker._wait_steps(["pools"], 1_000, False)
    claim = broker._claim_steps([ClaimSource("pools")], 4, "idle-test", 30_000, None, "r1")
    woken, claimed = run(pipelined(wait, claim), broker.backend.conn)
    assert woken is True
    assert [m.uuid for m in claimed.messages] == [message.uuid]
    broker.backend.conn.close()


@pytest.mark.servers("redis", "valkey")
def test_a_stop_that_ends_the_idle_wait_gives_back_what_the_wait_claimed(
    redis_url: str, namespace: str
) -> None:
    broker, idle_probe = _broker_and_task(redis_url, namespace)
    done: dict[str, Any] = {}

    def build_and_wait() -> None:  # off the main thread: the pool installs no signal handlers
        pool = InProcessThreadPool(tasks=[idle_probe], n_threads=2, backoff=None)
        pool._idle = True  # as after a claim that found nothing
        pool.stop_signal.exit_event.set()
        idle_probe.generate()  # ready, with a wake token: the wait claims it at once
        run(pool._claim_or_wait_steps(pool.free_slots()))
        done["running"] = pool.busy_slots()

    thread = threading.Thread(target=build_and_wait)
    thread.start()
    thread.join(30)
    assert done == {"running": 0}  # nothing started
    # Released, not leased: another consumer claims it at once, its attempt not counted.
    claim = broker.claim([ClaimSource("pools")], 4, "other")
    assert len(claim.messages) == 1
    assert claim.messages[0].retries == 0
    broker.backend.conn.close()
