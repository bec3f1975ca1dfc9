"""StatusTrackerIntegrityScanner on a real Redis: no keyspace scan, no lost race."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.broker import ClaimSource
from alsek.core.broker.effects import effect_commands
from alsek.core.message import Message
from alsek.core.status import StatusTracker, TaskStatus
from alsek.core.status.integrity import StatusTrackerIntegrityScanner
from alsek.storage.backends.redis.asyncio import AsyncRedisBackend
from tests.polling import eventually
from tests.status.conftest import Kit, make

OWNER = "lock:test-host:process:1:lease:abc"


def scanner_for(kit: Kit, **kwargs: Any) -> StatusTrackerIntegrityScanner:
    return StatusTrackerIntegrityScanner(kit.tracker, kit.broker, trigger=None, **kwargs)


def submit(kit: Kit) -> Message:
    message = make()
    kit.broker.submit(message, effects=kit.tracker.effects(message, TaskStatus.SUBMITTED))
    return message


def claim(kit: Kit) -> Message:
    [message] = kit.broker.claim(
        [ClaimSource("q")], 1, OWNER, status=kit.tracker.claim_status()
    ).messages
    return message


def live(client: redis.Redis, namespace: str) -> list[str]:
    return list(client.zrange(f"{namespace}:status:{{q}}:live", 0, -1))


def test_a_status_whose_message_was_deleted_becomes_unknown(
    sync_kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = submit(sync_kit)
    updates = sync_kit.tracker.listen_to_updates(message, auto_exit=False)
    assert next(updates).value is TaskStatus.SUBMITTED
    sync_kit.broker.remove(message)  # behind the tracker's back
    scanner_for(sync_kit).scan()
    assert sync_kit.tracker.get(message).value is TaskStatus.UNKNOWN
    assert next(updates).value is TaskStatus.UNKNOWN  # published too
    updates.close()
    assert live(redis_client, namespace) == []
    assert redis_client.pttl(sync_kit.tracker._key(message)) > sync_kit.tracker.ttl - 5000


def test_a_running_status_whose_worker_and_message_are_gone_becomes_unknown(
    sync_kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    submit(sync_kit)
    message = claim(sync_kit)
    redis_client.delete(
        f"{namespace}:queues:{{q}}:messages:{message.uuid}", sync_kit.broker.lease_key(message)
    )
    scanner_for(sync_kit).scan()
    assert sync_kit.tracker.get(message).value is TaskStatus.UNKNOWN


def test_a_status_whose_message_exists_is_left_alone(
    sync_kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    message = submit(sync_kit)
    scanner_for(sync_kit).scan()
    assert sync_kit.tracker.get(message).value is TaskStatus.SUBMITTED
    assert live(redis_client, namespace) == [f"work:{message.uuid}"]


def test_a_leased_message_is_not_marked(
    sync_kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    submit(sync_kit)
    message = claim(sync_kit)
    redis_client.delete(f"{namespace}:queues:{{q}}:messages:{message.uuid}")  # lease stays
    scanner_for(sync_kit).scan()
    assert sync_kit.tracker.get(message).value is TaskStatus.RUNNING


class _RacingScanner(StatusTrackerIntegrityScanner):
    """Lets a handler write SUCCEEDED between the scanner's read and its write."""

    racer: Message

    def _mode(self, raw: str | None) -> str:
        self.status_tracker.set(self.racer, TaskStatus.SUCCEEDED)
        return super()._mode(raw)


def test_a_handler_writing_succeeded_during_the_scan_wins(sync_kit: Kit) -> None:
    message = submit(sync_kit)
    sync_kit.broker.remove(message)  # the ack; its SUCCEEDED comes during the scan
    scanner = _RacingScanner(sync_kit.tracker, sync_kit.broker, trigger=None)
    scanner.racer = message
    scanner.scan()
    assert sync_kit.tracker.get(message).value is TaskStatus.SUCCEEDED


def test_vanished_statuses_and_stray_index_entries_are_dropped_quietly(
    sync_kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    expired = submit(sync_kit)
    redis_client.delete(sync_kit.tracker._key(expired))  # as if its TTL ran out
    finished = submit(sync_kit)
    sync_kit.tracker.set(finished, TaskStatus.SUCCEEDED)
    index = f"{namespace}:status:{{q}}:live"
    redis_client.zadd(index, {f"work:{finished.uuid}": 1, "no-separator": 1, "bad name:x": 1})
    scanner_for(sync_kit).scan()
    assert live(redis_client, namespace) == []
    assert sync_kit.tracker.get(finished).value is TaskStatus.SUCCEEDED
    assert not sync_kit.tracker.exists(expired)


def test_many_statuses_are_settled_in_batches(
    sync_kit: Kit, redis_client: redis.Redis, namespace: str
) -> None:
    submit(sync_kit)  # registers the queue
    orphans = [make() for _ in range(1_200)]  # statuses with no message at all
    pipe = redis_client.pipeline(transaction=False)
    for orphan in orphans:
        for command in effect_commands(sync_kit.tracker.effects(orphan, TaskStatus.RUNNING)):
            pipe.execute_command(*command)
    pipe.execute()
    scanner_for(sync_kit).scan()
    assert {sync_kit.tracker.get(orphan).value for orphan in orphans} == {TaskStatus.UNKNOWN}
    assert len(live(redis_client, namespace)) == 1


def test_unknown_keeps_no_expiry_when_the_tracker_has_none(
    sync_kit: Kit, redis_client: redis.Redis
) -> None:
    tracker = StatusTracker(sync_kit.backend, ttl=None)
    message = make()
    sync_kit.broker.submit(message, effects=tracker.effects(message, TaskStatus.SUBMITTED))
    sync_kit.broker.remove(message)
    StatusTrackerIntegrityScanner(tracker, sync_kit.broker, trigger=None).scan()
    assert tracker.get(message).value is TaskStatus.UNKNOWN
    assert redis_client.pttl(tracker._key(message)) == -1


def test_async_backends_are_refused(sync_kit: Kit, redis_url: str) -> None:
    from alsek.core.status import AsyncStatusTracker

    tracker = AsyncStatusTracker(AsyncRedisBackend(redis_url))
    with pytest.raises(ValueError, match="Async backends not supported"):
        StatusTrackerIntegrityScanner(tracker, sync_kit.broker)


def test_the_trigger_schedules_the_scan(sync_kit: Kit) -> None:
    message = submit(sync_kit)
    sync_kit.broker.remove(message)
    idle = scanner_for(sync_kit)
    assert not idle.scheduler.running
    scanner = StatusTrackerIntegrityScanner(
        sync_kit.tracker, sync_kit.broker, trigger=IntervalTrigger(seconds=1)
    )
    try:
        assert scanner.scheduler.get_job("integrity_scan") is not None
        eventually(lambda: sync_kit.tracker.get(message).value is TaskStatus.UNKNOWN)
    finally:
        scanner.scheduler.shutdown(wait=True)
