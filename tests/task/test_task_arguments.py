"""``generate()`` refuses arguments the task's function cannot be called with, naming the task
and the problem, before anything is written (they used to fail in the worker, every attempt)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from apscheduler.triggers.interval import IntervalTrigger

from alsek.core.message import Message
from alsek.core.task import Task, TriggerTask
from alsek.core.task import base as task_base
from alsek.exceptions import ValidationError
from tests.polling import call
from tests.task.conftest import Kit, namespace_keys


def takes_message(a: int, message: Message) -> int:
    return a + message.retries


async def async_takes_message(a: int, message: Message) -> int:
    return a + message.retries


def keywords_only(*, a: int, b: int = 2) -> int:
    return a + b


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"args": (1,)}, "missing a required argument: 'b'"),
        ({"args": (1, 2, 3)}, "too many positional arguments"),
        ({"args": (1, 2), "kwargs": {"c": 3}}, "got an unexpected keyword argument 'c'"),
        ({"args": (1,), "kwargs": {"a": 1}}, "multiple values for argument 'a'"),
    ],
)
async def test_arguments_that_do_not_bind_are_refused_before_anything_is_written(
    kit: Kit, redis_client: redis.Redis, arguments: dict[str, Any], problem: str
) -> None:
    task = kit.task(name="adder", status_tracker=kit.tracker)
    with pytest.raises(ValidationError) as refused:
        await call(task.generate, **arguments)
    text = str(refused.value)
    assert text.startswith("Task 'adder' cannot be called with these arguments: ")
    assert problem in text
    assert "it takes adder(a: 'int', b: 'int') -> 'int'" in text
    assert namespace_keys(redis_client, kit.namespace) == []


async def test_arguments_that_bind_are_accepted(kit: Kit) -> None:
    task = kit.task()
    for arguments in (
        {"args": (1, 2)},
        {"args": (1,), "kwargs": {"b": 2}},
        {"kwargs": {"a": 1, "b": 2}},
    ):
        message = await call(task.generate, submit=False, **arguments)
        assert message.task_name == task.name


async def test_the_message_a_worker_passes_counts_as_given(kit: Kit) -> None:
    task = kit.task(takes_message if kit.kind == "sync" else async_takes_message)
    assert (await call(task.generate, args=(1,), submit=False)).args == (1,)
    with pytest.raises(
        ValidationError,
        match="multiple values for argument 'message'.*"
        r"\(the worker passes message= itself\)",
    ):
        await call(task.generate, args=(1, 2), submit=False)


def test_keyword_only_tasks_are_checked_too(sync_kit: Kit) -> None:
    task = sync_kit.task(keywords_only, no_positional_args=True)
    assert task.generate(kwargs={"a": 1}, submit=False).kwargs == {"a": 1}
    with pytest.raises(ValidationError, match="missing a required argument: 'a'"):
        task.generate(kwargs={"b": 1}, submit=False)
    with pytest.raises(ValidationError, match="keyword arguments only"):
        task.generate(args=(1,), submit=False)


def test_a_refused_callback_ends_deferred_mode(sync_kit: Kit) -> None:
    task = sync_kit.task()
    with pytest.raises(ValidationError):
        task.defer().generate(args=(1, 2, 3))  # fits no role either
    assert not task.deferred
    message = task.generate(args=(1, 2))
    assert sync_kit.broker.exists(message)  # submitted: not swallowed by a stale defer()


def test_generate_many_refuses_the_whole_batch(sync_kit: Kit, redis_client: redis.Redis) -> None:
    task = sync_kit.task(name="adder")
    with pytest.raises(ValidationError, match=r"Task 'adder'.*missing a required argument"):
        task.generate_many(args_list=[(1, 2), (3,)])
    assert namespace_keys(redis_client, sync_kit.namespace) == []


def test_a_trigger_task_takes_no_arguments(sync_kit: Kit) -> None:
    ticking = TriggerTask(lambda: None, IntervalTrigger(hours=1), sync_kit.broker, name="tick")
    with pytest.raises(ValidationError, match=r"Task 'tick'.*too many positional arguments"):
        ticking.generate(args=(1,))
    assert not ticking.generated


class PassesASession(Task):
    """A task class that calls its function its own way: ``generate`` cannot judge the call."""

    def op(self, message: Message) -> Any:
        return self.function(*message.args, session="db", **message.kwargs)


def test_a_task_class_with_its_own_op_is_not_checked(sync_kit: Kit) -> None:
    def uses_session(a: int, session: str) -> str:
        return f"{a} in {session}"

    task = PassesASession(uses_session, broker=sync_kit.broker)
    assert task.generate(args=(1,), submit=False).args == (1,)


def test_a_function_without_a_readable_signature_is_not_checked(sync_kit: Kit) -> None:
    task = Task(max, broker=sync_kit.broker, name="biggest")
    assert task.generate(args=(1, 2, 3), submit=False).args == (1, 2, 3)


def test_the_signature_is_read_once(sync_kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[object] = []
    original = task_base.readable_signature

    def counted(function: Any) -> Any:
        reads.append(function)
        return original(function)

    monkeypatch.setattr(task_base, "readable_signature", counted)
    task = sync_kit.task()
    for i in range(5):
        task.generate(args=(i, 1), submit=False)
    assert len(reads) == 1
