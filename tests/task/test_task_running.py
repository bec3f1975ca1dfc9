"""Running a task: direct calls, op/execute, the message argument, retries, hooks, transport."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import dill
import pytest

from alsek.core.future.outcome import exhausted_by_lost_workers, lost_plan, run_plan_async
from alsek.core.message import Message
from alsek.core.task import AsyncTask, Task, expects_message
from alsek.core.task.base import BaseTask
from tests.polling import call
from tests.task.conftest import Kit
from tests.task.functions import add

# -- calling the function ---------------------------------------------------------------------


def test_calling_a_task_runs_the_function_inline(sync_kit: Kit) -> None:
    task = sync_kit.task()
    assert task(1, b=2) == 3


async def test_calling_an_async_task_returns_the_coroutine(kit: Kit) -> None:
    task = kit.task()
    result = task(1, 2)
    assert (await result if asyncio.iscoroutine(result) else result) == 3


async def test_op_and_execute_call_the_function_with_the_message_arguments(kit: Kit) -> None:
    task = kit.task()
    message = await call(task.generate, args=(1,), kwargs={"b": 2}, submit=False)
    assert await call(task.op, message) == 3
    assert await call(task.execute, message) == 3


async def test_async_op_runs_a_plain_function_too(redis_url: str, namespace: str) -> None:
    kit = Kit("async", redis_url, namespace)
    task = kit.task(add)
    message = await task.generate(args=(2, 3), submit=False)
    assert await task.op(message) == 5
    await kit.close()


def _takes_message(a: int, message: Message) -> Any:
    return (a, message.uuid)


def _takes_unannotated_message(message) -> Any:  # type: ignore[no-untyped-def]
    return message.uuid


async def test_op_passes_the_message_to_a_function_that_asks_for_it(sync_kit: Kit) -> None:
    task = sync_kit.task(_takes_message)
    message = task.generate(args=(1,), submit=False)
    assert task.op(message) == (1, message.uuid)
    unannotated = sync_kit.task(_takes_unannotated_message)
    message = unannotated.generate(submit=False)
    assert unannotated.op(message) == message.uuid


def test_op_leaves_an_explicit_message_kwarg_alone(sync_kit: Kit) -> None:
    task = sync_kit.task(lambda message: message)
    message = task.generate(kwargs={"message": "mine"}, submit=False)
    assert task.op(message) == "mine"


def _annotated_str(message: str) -> None: ...
def _annotated_message_string(message: "Message") -> None: ...  # noqa: UP037
def _annotated_qualified(message: "alsek.core.message.Message") -> None: ...  # type: ignore[name-defined]  # noqa: F821, UP037
def _no_message(a: int) -> None: ...


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (_takes_message, True),
        (_takes_unannotated_message, True),
        (_annotated_message_string, True),
        (_annotated_qualified, True),
        (_annotated_str, False),
        (_no_message, False),
        (print, False),
    ],
)
def test_expects_message(function: Any, expected: bool) -> None:
    assert expects_message(function) is expected


# -- retries ----------------------------------------------------------------------------------


async def test_do_retry_until_max_retries(kit: Kit) -> None:
    task = kit.task(max_retries=2)
    message = await call(task.generate, args=(1, 2))
    error = ValueError("x")
    assert await call(task.do_retry, message, error)
    message.update(retries=1)
    assert await call(task.do_retry, message, error)
    message.update(retries=2)
    assert not await call(task.do_retry, message, error)


async def test_max_retries_none_retries_without_limit(kit: Kit) -> None:
    task = kit.task(max_retries=None)
    message = await call(task.generate, args=(1, 2))
    message.update(retries=10_000)
    assert await call(task.do_retry, message, ValueError("x"))


async def test_a_revoked_message_is_not_retried(kit: Kit) -> None:
    task = kit.task(max_retries=None)
    message = await call(task.generate, args=(1, 2))
    await call(task.revoke, message)
    assert not await call(task.do_retry, message, ValueError("x"))


async def test_backoff_none_means_retry_at_once(kit: Kit) -> None:
    task = kit.task(backoff=None)
    message = await call(task.generate, args=(1, 2), submit=False)
    message.update(retries=5)
    assert message.get_backoff_duration() == 0


def test_do_callback_defaults_to_true(sync_kit: Kit) -> None:
    task = sync_kit.task()
    assert task.do_callback(task.generate(args=(1, 2), submit=False), 3) is True


# -- hooks ------------------------------------------------------------------------------------


class _RecordingTask(Task):
    seen: list[str]

    def on_submit(self, message: Message) -> None:
        self.seen.append(message.uuid)


class _RecordingAsyncTask(AsyncTask):
    seen: list[str]

    async def on_submit(self, message: Message) -> None:
        self.seen.append(message.uuid)


async def test_on_submit_can_be_overridden(kit: Kit) -> None:
    task_class = _RecordingTask if kit.kind == "sync" else _RecordingAsyncTask
    task = task_class(add, broker=kit.broker, queue="q")
    task.seen = []
    first = await call(task.generate, args=(1, 2))
    many = await call(task.generate_many, args_list=[(1, 2), (3, 4)])
    await call(task.defer().generate, args=(1, 2))
    assert task.seen == [first.uuid, *(m.uuid for m in many)]


@pytest.mark.parametrize(
    ("hook", "args"),
    [
        ("pre_op", ()),
        ("post_op", (1,)),
        ("on_submit", ()),
        ("on_revocation", (None, None)),
        ("on_retry", (ValueError(),)),
        ("on_failure", (ValueError(),)),
        ("on_success", (1,)),
    ],
)
async def test_default_hooks_are_no_ops_and_awaitable_on_async_tasks(
    kit: Kit, hook: str, args: tuple[Any, ...]
) -> None:
    task = kit.task()
    message = await call(task.generate, args=(1, 2), submit=False)
    outcome = getattr(task, hook)(message, *args)
    if kit.kind == "async":
        assert asyncio.iscoroutine(outcome)
        outcome = await outcome
    assert outcome is None


_AWAITABLE = (
    "update_status", "write_unshared", "generate", "generate_many", "pre_op", "op", "post_op",
    "on_submit", "on_revocation", "on_retry", "on_failure", "on_success", "execute", "do_retry",
    "revoke", "is_revoked",
)  # fmt: skip


@pytest.mark.parametrize("method", _AWAITABLE)
def test_async_task_io_methods_and_hooks_are_coroutine_functions(method: str) -> None:
    assert inspect.iscoroutinefunction(getattr(AsyncTask, method))
    assert not inspect.iscoroutinefunction(getattr(Task, method))


def test_do_callback_stays_synchronous_on_async_tasks() -> None:
    assert not inspect.iscoroutinefunction(AsyncTask.do_callback)


# -- identity and transport -------------------------------------------------------------------


def test_default_name_is_the_function_name_and_name_overrides_it(sync_kit: Kit) -> None:
    assert sync_kit.task().name == "add"
    assert sync_kit.task(name="adder").name == "adder"


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"name": "bad:name"}, "task name"),
        ({"queue": "bad queue"}, "queue name"),
        ({"mechanism": "fiber"}, "mechanism must be one of"),
    ],
)
def test_invalid_settings_fail_at_construction(
    sync_kit: Kit, settings: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        sync_kit.task(**settings)


async def test_components_of_the_wrong_kind_are_refused(
    redis_url: str, namespace: str, kit: Kit
) -> None:
    other = Kit("async" if kit.kind == "sync" else "sync", redis_url, namespace)
    for component in ("broker", "status_tracker", "result_store"):
        label = {"broker": "broker", "status_tracker": "tracker", "result_store": "store"}
        with pytest.raises(ValueError, match=f"needs an? (a)?sync {component}"):
            kit.task(**{component: getattr(other, label[component])})
    await other.close()


async def test_serialize_round_trip_through_dill(kit: Kit) -> None:
    task = kit.task(
        name="adder",
        status_tracker=kit.tracker,
        result_store=kit.store,
        default_result_ttl=5000,
        max_retries=7,
        mechanism="process",
        no_positional_args=True,
    )
    rebuilt = BaseTask.deserialize(dill.loads(dill.dumps(task.serialize())))
    assert type(rebuilt) is type(task)
    assert (rebuilt.name, rebuilt.queue, rebuilt.max_retries) == ("adder", "q", 7)
    assert (rebuilt.mechanism, rebuilt.no_positional_args) == ("process", True)
    assert rebuilt.default_result_ttl == 5000
    assert rebuilt.backoff.settings == task.backoff.settings
    message = await call(rebuilt.generate, kwargs={"a": 1, "b": 2})
    assert await call(kit.tracker.get, message)
    assert await call(rebuilt.op, message) == 3
    for component in (rebuilt.broker, rebuilt.status_tracker, rebuilt.result_store):
        await kit.close(component.backend)


def test_repr_names_the_task(sync_kit: Kit) -> None:
    text = repr(sync_kit.task())
    assert "Task(" in text and "name='add'" in text and "deferred_mode='disabled'" in text


# -- lost workers -------------------------------------------------------------------------------


async def test_a_message_lost_on_its_last_attempt_is_dead_lettered_with_max_retries(
    kit: Kit,
) -> None:
    """Its retries read as after any failed last attempt: ``max_retries``, not one more."""
    task = kit.task(max_retries=1)
    await call(task.generate, args=(1, 2))
    for _ in range(2):  # two attempts whose worker vanished: the lease runs out each time
        assert len(await kit.claim(lease_ttl=1)) == 1
        await asyncio.sleep(0.01)
    [claimed] = await kit.claim()
    assert claimed.retries == 2 and exhausted_by_lost_workers(task, claimed)
    await run_plan_async(lost_plan(task, claimed))
    [letter] = await call(kit.broker.dlq_list, "q")
    assert letter.message is not None and letter.message.retries == task.max_retries
    assert "WorkerLostError" in letter.reason
