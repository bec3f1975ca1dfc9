"""``StatusTracker.history``: every status a message had, with the time of each write, written
in the same round trip as the status (inside the broker's scripts), bounded and expiring."""

from __future__ import annotations

import redis

from alsek.core.status import TaskStatus
from alsek.core.status.base import HISTORY_LENGTH
from tests.polling import call
from tests.status.conftest import Kit, make
from tests.status.test_transitions import claim_one, submitted


async def test_a_life_leaves_every_status_in_order_with_its_time(kit: Kit) -> None:
    message = await submitted(kit)
    claimed = await claim_one(kit, status=kit.tracker.claim_status())
    await call(kit.broker.ack, claimed, effects=kit.tracker.effects(claimed, TaskStatus.SUCCEEDED))
    history = await call(kit.tracker.history, message)
    assert [update.value for update in history] == [
        TaskStatus.SUBMITTED,
        TaskStatus.RUNNING,
        TaskStatus.SUCCEEDED,
    ]
    times = [update.at for update in history]
    assert all(isinstance(at, int) for at in times)
    assert times == sorted(times)
    current = await call(kit.tracker.get, message)
    assert current.value is TaskStatus.SUCCEEDED and current.at is not None


async def test_set_alone_records_history_with_details(kit: Kit) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.RUNNING, {"step": 1})
    await call(kit.tracker.set, message, TaskStatus.RUNNING, {"step": 2})
    history = await call(kit.tracker.history, message)
    assert [update.details for update in history] == [{"step": 1}, {"step": 2}]


async def test_history_keeps_the_latest_and_expires_with_the_status(
    kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = make()
    for step in range(HISTORY_LENGTH + 5):
        await call(kit.tracker.set, message, TaskStatus.RUNNING, step)
    history = await call(kit.tracker.history, message)
    assert [update.details for update in history] == list(range(5, HISTORY_LENGTH + 5))
    key = f"{namespace}:{kit.tracker.get_history_name(message)}"
    assert 0 < redis_client.pttl(key) <= kit.tracker.ttl


async def test_delete_removes_the_history(kit: Kit) -> None:
    message = make()
    await call(kit.tracker.set, message, TaskStatus.SUCCEEDED)
    await call(kit.tracker.delete, message)
    assert await call(kit.tracker.history, message) == []
