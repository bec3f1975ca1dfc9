"""The task() decorator: which class it builds, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.task import AsyncTask, AsyncTriggerTask, Task, TriggerTask, task
from alsek.core.task.decorator import _parse_base_task
from alsek.utils.scanning import _is_async_task, _is_task
from tests.task.conftest import Kit


def plain() -> int:
    return 1


async def coroutine() -> int:
    return 1


@pytest.fixture
async def async_kit(redis_url: str, namespace: str):  # type: ignore[no-untyped-def]
    built = Kit("async", redis_url, namespace)
    yield built
    await built.close()


def test_a_plain_function_on_a_broker_makes_a_task(sync_kit: Kit) -> None:
    made = task(sync_kit.broker)(plain)
    assert type(made) is Task and made() == 1
    assert _is_task(made) and not _is_async_task(made)


def test_a_trigger_makes_a_trigger_task(sync_kit: Kit) -> None:
    made = task(sync_kit.broker, trigger=IntervalTrigger(hours=1))(plain)
    assert type(made) is TriggerTask and _is_task(made)
    assert "scheduler" not in vars(made)  # nothing started at decoration


async def test_a_coroutine_function_on_an_async_broker_makes_an_async_task(
    async_kit: Kit,
) -> None:
    made = task(async_kit.broker)(coroutine)
    assert type(made) is AsyncTask and await made() == 1
    assert _is_async_task(made) and not _is_task(made)


async def test_with_a_trigger_it_makes_an_async_trigger_task(async_kit: Kit) -> None:
    made = task(async_kit.broker, trigger=IntervalTrigger(hours=1))(coroutine)
    assert type(made) is AsyncTriggerTask and _is_async_task(made)


def test_an_async_function_on_a_sync_broker_is_refused(sync_kit: Kit) -> None:
    with pytest.raises(ValueError, match="use an AsyncBroker"):
        task(sync_kit.broker)(coroutine)


async def test_a_plain_function_on_an_async_broker_needs_base_task(async_kit: Kit) -> None:
    with pytest.raises(ValueError, match="base_task=AsyncTask"):
        task(async_kit.broker)(plain)
    made = task(async_kit.broker, base_task=AsyncTask)(plain)
    assert type(made) is AsyncTask


def test_base_task_wins(sync_kit: Kit) -> None:
    class Custom(Task):
        pass

    assert type(task(sync_kit.broker, base_task=Custom)(plain)) is Custom


def test_a_trigger_for_a_class_without_one_is_refused(sync_kit: Kit) -> None:
    with pytest.raises(ValueError, match="Trigger not supported by Task"):
        task(sync_kit.broker, trigger=IntervalTrigger(hours=1), base_task=Task)(plain)


def test_an_unsupported_mechanism_is_refused_at_once(sync_kit: Kit) -> None:
    with pytest.raises(ValueError, match="mechanism must be one of"):
        task(sync_kit.broker, mechanism="fiber")  # type: ignore[arg-type]


def test_settings_reach_the_task(sync_kit: Kit) -> None:
    made: Any = task(
        sync_kit.broker,
        name="named",
        queue="elsewhere",
        timeout=1234,
        max_retries=None,
        backoff=None,
        result_store=sync_kit.store,
        default_result_ttl=999,
        status_tracker=sync_kit.tracker,
        mechanism="process",
        run_in_main_thread=True,
        no_positional_args=True,
    )(plain)
    assert (made.name, made.queue, made.timeout, made.max_retries) == (
        "named", "elsewhere", 1234, None,
    )  # fmt: skip
    assert (made.result_store, made.status_tracker) == (sync_kit.store, sync_kit.tracker)
    assert (made.default_result_ttl, made.mechanism) == (999, "process")
    assert made.run_in_main_thread is True and made.no_positional_args is True
    assert made.backoff.get(5) == 0


@pytest.mark.parametrize(
    ("base_task", "trigger", "is_async", "expected"),
    [
        (None, None, False, Task),
        (None, IntervalTrigger(hours=1), False, TriggerTask),
        (None, None, True, AsyncTask),
        (None, IntervalTrigger(hours=1), True, AsyncTriggerTask),
        (AsyncTask, None, False, AsyncTask),
    ],
)
def test_parse_base_task(base_task: Any, trigger: Any, is_async: bool, expected: type) -> None:
    assert _parse_base_task(base_task, trigger=trigger, is_async=is_async) is expected
