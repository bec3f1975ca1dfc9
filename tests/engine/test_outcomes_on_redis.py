"""Outcome plans on a real Redis: a hook runs exactly when its outcome happened, and a dead
letter requeued through its task starts afresh. Every body runs for sync and async tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from alsek.core.backoff import ConstantBackoff
from alsek.core.future.outcome import Plan, error_plan, run_plan, run_plan_async, success_plan
from alsek.core.message import Message
from alsek.core.status import TaskStatus
from alsek.exceptions import TaskFailedError
from tests.polling import call, until
from tests.task.conftest import Kit


@pytest.fixture(params=["sync", "async"])
async def kit(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> AsyncIterator[Kit]:
    built = Kit(request.param, redis_url, namespace)
    yield built
    await built.close()


async def run(kit: Kit, plan: Plan) -> None:
    if kit.kind == "sync":
        run_plan(plan)
    else:
        await run_plan_async(plan)


def tracked(kit: Kit, **options: Any) -> tuple[Any, list[str]]:
    """A task with a tracker and a store whose hooks record their calls."""
    task = kit.task(status_tracker=kit.tracker, result_store=kit.store, **options)
    hooks: list[str] = []
    for name in ("on_retry", "on_failure", "on_success", "on_revocation"):
        setattr(task, name, lambda *args, _name=name, **kwargs: hooks.append(_name))
    return task, hooks


async def lost_lease(kit: Kit, task: Any) -> Message:
    """A message whose lease expired and went to another worker; returns the stale copy."""
    await call(task.generate, args=(1, 2))
    [stale] = await kit.claim(1, lease_ttl=50)
    await until(lambda: kit.claim(1), what="the message claimed by another worker")
    return stale


async def test_on_retry_does_not_run_when_the_broker_refuses_the_retry(kit: Kit) -> None:
    task, hooks = tracked(kit, max_retries=3)
    stale = await lost_lease(kit, task)
    await run(kit, error_plan(task, stale, ValueError("boom")))
    assert hooks == []
    assert (await call(kit.tracker.get, stale)).value is TaskStatus.SUBMITTED


async def test_on_failure_does_not_run_when_the_broker_refuses_the_failure(kit: Kit) -> None:
    task, hooks = tracked(kit, max_retries=0)
    stale = await lost_lease(kit, task)
    await run(kit, error_plan(task, stale, ValueError("boom")))
    assert hooks == []
    assert not await call(kit.broker.in_dlq, stale)


async def test_on_retry_runs_once_the_broker_retried(kit: Kit) -> None:
    task, hooks = tracked(kit, max_retries=3)
    await call(task.generate, args=(1, 2))
    [message] = await kit.claim(1)
    await run(kit, error_plan(task, message, ValueError("boom")))
    assert hooks == ["on_retry"]
    assert (await call(kit.tracker.get, message)).value is TaskStatus.RETRYING


async def test_on_success_runs_after_a_repeated_ack_whose_first_reply_was_lost(kit: Kit) -> None:
    task, hooks = tracked(kit)
    await call(task.generate, args=(1, 2))
    [message] = await kit.claim(1)
    # The first ack reached Redis, but its reply was lost: the plan's ack is its repeat.
    assert await call(kit.broker.ack, message.clone(), effects=task.success_effects(message, 3))
    await run(kit, success_plan(task, message, 3))
    assert hooks == ["on_success"]
    assert await call(kit.store.get, message) == 3
    assert (await call(kit.tracker.get, message)).value is TaskStatus.SUCCEEDED


async def test_a_dead_letter_requeued_through_its_task_starts_afresh(kit: Kit) -> None:
    old = kit.task(
        status_tracker=kit.tracker,
        result_store=kit.store,
        max_retries=0,
        backoff=ConstantBackoff(60_000, floor=0, ceiling=60_000),
    )
    message = await call(old.generate, args=(1, 2))
    [claimed] = await kit.claim(1)
    await run(kit, error_plan(old, claimed, ValueError("boom")))
    with pytest.raises(TaskFailedError):
        await call(kit.store.get, message)
    [dead] = await call(kit.broker.dlq_list, "q")

    # The task as deployed now: a shorter backoff.
    current = kit.task(
        status_tracker=kit.tracker,
        result_store=kit.store,
        backoff=ConstantBackoff(100, floor=0, ceiling=100),
    )
    again = await call(current.requeue_from_dlq, dead.message)
    assert again.retries == 0
    assert again.backoff_settings == current.backoff.settings
    assert (await call(kit.tracker.get, message)).value is TaskStatus.SUBMITTED
    with pytest.raises(KeyError):  # no result yet, and no longer "failed for good"
        await call(kit.store.get, message)
    [queued] = await kit.claim(1)
    assert queued.backoff_settings == current.backoff.settings


async def test_requeue_through_another_task_is_refused(kit: Kit) -> None:
    other = kit.task(lambda: None, queue="q")
    message = Message("add", queue="q")
    with pytest.raises(ValueError, match="belongs to task 'add'"):
        await call(other.requeue_from_dlq, message)
