"""Task classes are generic at runtime too: subscripted, in evaluated annotations, as classes."""

from __future__ import annotations

import typing
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

import alsek
from alsek.core.broker import Broker
from alsek.core.task import AsyncTriggerTask, TriggerTask
from alsek.storage.backends.redis.sync import RedisBackend


def add(a: int, b: int) -> int:
    return a + b


def handler(
    plain: alsek.Task[[int, int], int],
    awaited: alsek.AsyncTask[[int], Coroutine[Any, Any, int]],
    ticking: TriggerTask[int],
    async_ticking: AsyncTriggerTask[Coroutine[Any, Any, None]],
) -> None:
    """Annotated as a user would; ``from __future__ import annotations`` keeps them strings."""


@pytest.fixture
def broker(redis_url: str, namespace: str) -> Iterator[Broker]:
    backend = RedisBackend(redis_url, namespace=namespace)
    yield Broker(backend)
    backend.conn.close()


def test_task_and_async_task_are_exported_by_alsek() -> None:
    from alsek.core.task import AsyncTask, Task

    assert (alsek.Task, alsek.AsyncTask) == (Task, AsyncTask)
    assert {"Task", "AsyncTask"} <= set(alsek.__all__)


def test_annotations_with_subscripted_tasks_evaluate() -> None:
    hints = typing.get_type_hints(handler)
    origins = {name: typing.get_origin(hint) for name, hint in hints.items() if name != "return"}
    assert origins == {
        "plain": alsek.Task,
        "awaited": alsek.AsyncTask,
        "ticking": TriggerTask,
        "async_ticking": AsyncTriggerTask,
    }
    assert typing.get_args(hints["plain"])[-1] is int
    assert typing.get_args(hints["ticking"]) == (int,)


def test_a_subscripted_task_class_builds_that_class(broker: Broker) -> None:
    built = alsek.Task[[int, int], int](add, broker=broker)
    assert type(built) is alsek.Task and built(1, 2) == 3
    assert built.generate(args=(1, 2)).task_name == "add"
