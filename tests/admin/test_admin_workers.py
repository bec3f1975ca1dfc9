"""``workers()``: every pool kind registers, beats, says what it runs, and leaves the list when
it stops gracefully or is killed."""

from __future__ import annotations

import os
import signal
import socket
import time
from types import ModuleType

import pytest
from opsfixtures import HEARTBEAT_MS, AdminView, Pools

from alsek import __version__
from alsek.core.worker.heartbeat import MISSED_BEATS
from tests.polling import until

#: What each kind of test pool serves, and its slots (``conftest.POOL_OPTIONS``).
SERVES = {
    "thread": ({"ops": ["add", "boom", "sleepy"], "side": ["side"]}, 2),
    "process": ({"ops": ["crunch"]}, 2),
    "async": ({"pings": ["ping"]}, 3),
}

pytestmark = pytest.mark.slow  # pools in subprocesses


async def listed(admin: AdminView, pid: int) -> list:
    return [worker for worker in await admin.workers() if worker.pid == pid]


@pytest.mark.parametrize("kind", sorted(SERVES))
async def test_a_pool_registers_with_what_it_serves(
    kind: str, admin: AdminView, pools: Pools
) -> None:
    pool = pools.start(kind)
    [worker] = await until(lambda: listed(admin, pool.pid), 30, f"{kind} pool registered")
    serves, slots = SERVES[kind]
    assert worker.kind == kind
    assert worker.host == socket.gethostname()
    assert worker.version == __version__
    assert worker.queues == list(serves)
    assert worker.tasks == sorted(t for tasks in serves.values() for t in tasks)
    assert (worker.slots, worker.busy, worker.alive, worker.state) == (slots, 0, True, "running")
    assert worker.started_at <= worker.last_beat_at
    first_beat = worker.last_beat_at

    async def beat_again() -> bool:
        [again] = await listed(admin, pool.pid)
        return again.last_beat_at > first_beat

    await until(beat_again, 10, "a later beat")
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0, pool.output()
    assert await listed(admin, pool.pid) == []


async def test_busy_slots_are_reported(ops: ModuleType, admin: AdminView, pools: Pools) -> None:
    pool = pools.start("thread")
    await until(lambda: listed(admin, pool.pid), 30, "registered")
    for _ in range(2):
        ops.sleepy.generate(args=(30,))

    async def both_busy() -> bool:
        [worker] = await listed(admin, pool.pid)
        return worker.busy == 2

    await until(both_busy, 20, "2 busy slots reported")


async def test_a_killed_pool_leaves_the_list_within_its_beat_timeout(
    admin: AdminView, pools: Pools
) -> None:
    pool = pools.start("process")
    [worker] = await until(lambda: listed(admin, pool.pid), 30, "registered")
    os.killpg(pool.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    timeout_s = HEARTBEAT_MS * MISSED_BEATS / 1000
    await until(lambda: _gone(admin, pool.pid), timeout_s + 5, "the killed pool left the list")
    # It does not leave before its last beat times out (the beat it had just sent at most).
    assert time.monotonic() - killed_at >= timeout_s - HEARTBEAT_MS / 1000 - 0.05
    assert worker.id not in {w.id for w in await admin.workers()}


async def _gone(admin: AdminView, pid: int) -> bool:
    return not await listed(admin, pid)
