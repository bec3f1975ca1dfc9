"""Producing messages: generate, deferred mode, generate_many, and every validation error."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import redis

from alsek.core.backoff import ConstantBackoff
from alsek.core.broker import keys
from alsek.core.status import TaskStatus
from alsek.core.task import AsyncTask, AsyncTriggerTask, BaseTask, Task, TriggerTask
from alsek.exceptions import MessageAlreadyExistsError, ValidationError
from tests.polling import call
from tests.task.conftest import Kit, namespace_keys

# -- generate ---------------------------------------------------------------------------------

#: SPEC §13.2: ``generate``'s parameters and defaults (``options`` is ``**options``).
SPEC_GENERATE: dict[str, Any] = {
    "args": None,
    "kwargs": None,
    "priority": 0,
    "metadata": None,
    "result_ttl": None,
    "uuid": None,
    "timeout_override": None,
    "delay": None,
    "previous_result": None,
    "callback": None,
    "queue": None,
    "submit": True,
    "mechanism": None,
    "run_in_main_thread": None,
    "ready_at": None,
    "options": inspect.Parameter.empty,
}


@pytest.mark.parametrize("task_class", [Task, AsyncTask, TriggerTask, AsyncTriggerTask])
def test_generate_spells_out_specs_parameters(task_class: type[Any]) -> None:
    """Explicit and annotated (not ``*args, **kwargs``), so editors and type checkers show them."""
    parameters = dict(inspect.signature(task_class.generate).parameters)
    assert parameters.pop("self").kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert {name: p.default for name, p in parameters.items()} == SPEC_GENERATE
    assert parameters.pop("options").kind is inspect.Parameter.VAR_KEYWORD
    for parameter in parameters.values():
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, parameter
        assert parameter.annotation is not inspect.Parameter.empty, parameter


def test_generate_hands_its_fields_to_the_message_builder_in_its_order() -> None:
    """The shells pass them on by position to ``BaseTask._generate_message``, which decides."""
    parameters = inspect.signature(BaseTask._generate_message).parameters.values()
    builder = [p.name for p in parameters if p.kind is not p.KEYWORD_ONLY]  # ``later`` is not
    fields = [name for name in SPEC_GENERATE if name not in ("submit", "options")]
    assert builder == ["self", *fields]


async def test_generate_submits_a_claimable_message_with_its_arguments(kit: Kit) -> None:
    task = kit.task()
    message = await call(task.generate, args=(1,), kwargs={"b": 2})
    [claimed] = await kit.claim()
    assert (claimed.uuid, claimed.task_name, claimed.queue) == (message.uuid, task.name, "q")
    assert (claimed.args, claimed.kwargs) == ((1,), {"b": 2})


async def test_generate_writes_submitted_in_the_same_call(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    message = await call(task.generate, args=(1, 2))
    assert (await call(kit.tracker.get, message)).value is TaskStatus.SUBMITTED


async def test_generate_without_a_tracker_writes_no_status(
    kit: Kit, redis_client: redis.Redis
) -> None:
    await call(kit.task().generate, args=(1, 2))
    assert not [key for key in namespace_keys(redis_client, kit.namespace) if "status" in key]


async def test_generate_builds_the_message_from_task_and_arguments(kit: Kit) -> None:
    task = kit.task(
        timeout=5000,
        backoff=ConstantBackoff(constant=100, floor=0),
        result_store=kit.store,
        default_result_ttl=60_000,
        mechanism="process",
    )
    message = await call(
        task.generate,
        kwargs={"a": 1, "b": 2},
        priority=3,
        metadata={"who": "me"},
        delay=10_000,
        queue="other",
        run_in_main_thread=True,
    )
    assert message.priority == 3 and message.metadata == {"who": "me"}
    assert message.queue == "other" and message.delay == 10_000
    assert message.timeout == 5000 and message.result_ttl == 60_000
    assert message.backoff_settings == ConstantBackoff(constant=100, floor=0).settings
    assert message.mechanism == "process" and message.run_in_main_thread is True
    assert message.ready_at == message.created_at + 10_000
    assert await kit.claim(queue="other") == []  # delayed: not claimable yet


async def test_generate_overrides_the_task_defaults(kit: Kit) -> None:
    task = kit.task(result_store=kit.store, default_result_ttl=60_000, mechanism="process")
    message = await call(
        task.generate, args=(1, 2), result_ttl=5, timeout_override=7, mechanism="thread"
    )
    assert (message.result_ttl, message.timeout, message.mechanism) == (5, 7, "thread")


async def test_generate_with_an_explicit_uuid_and_ttl_option(
    kit: Kit, redis_client: redis.Redis
) -> None:
    message = await call(kit.task().generate, args=(1, 2), uuid="my-uuid", ttl=50_000)
    assert message.uuid == "my-uuid"
    key = f"{kit.namespace}:{keys.message_key('q', 'my-uuid')}"
    assert 0 < redis_client.pttl(key) <= 50_000


async def test_generate_of_an_existing_uuid_with_another_body_is_refused(kit: Kit) -> None:
    task = kit.task()
    await call(task.generate, args=(1, 2), uuid="same")
    with pytest.raises(MessageAlreadyExistsError):
        await call(task.generate, args=(3, 4), uuid="same")


async def test_submit_false_builds_without_submitting(kit: Kit) -> None:
    message = await call(kit.task().generate, args=(1, 2), submit=False)
    assert message.args == (1, 2)
    assert not await call(kit.broker.exists, message)


async def test_deferred_generate_builds_once_then_submits_again(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    assert task.defer() is task and task.deferred
    deferred = await call(task.generate, args=(1, 2))
    assert not task.deferred
    assert not await call(kit.broker.exists, deferred)
    assert not await call(kit.tracker.exists, deferred)
    submitted = await call(task.generate, args=(3, 4))
    assert await call(kit.broker.exists, submitted)


async def test_cancel_defer(kit: Kit) -> None:
    task = kit.task()
    assert task.defer().cancel_defer() is task and not task.deferred
    message = await call(task.generate, args=(1, 2))
    assert await call(kit.broker.exists, message)


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"result_ttl": 1000}, ValidationError, "needs a result store"),
        ({"priority": -1}, ValueError, "priority"),
        ({"priority": 1.5}, ValueError, "priority"),
        ({"priority": "1"}, ValueError, "priority"),
        ({"priority": True}, ValueError, "priority"),
        ({"queue": "bad:queue"}, ValueError, "queue name"),
        ({"mechanism": "fiber"}, ValueError, "mechanism"),
        ({"delay": -5}, ValueError, "delay"),
        ({"metadata": "not a dict"}, TypeError, "metadata"),
    ],
)
async def test_invalid_generate_arguments_raise_and_write_nothing(
    kit: Kit,
    redis_client: redis.Redis,
    options: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    task = kit.task(status_tracker=kit.tracker)
    with pytest.raises(error, match=match):
        await call(task.generate, args=(1, 2), **options)
    assert namespace_keys(redis_client, kit.namespace) == []


async def test_positional_args_are_refused_with_no_positional_args(
    kit: Kit, redis_client: redis.Redis
) -> None:
    task = kit.task(no_positional_args=True)
    with pytest.raises(ValidationError, match="keyword arguments only"):
        await call(task.generate, args=(1, 2))
    assert namespace_keys(redis_client, kit.namespace) == []
    assert (await call(task.generate, kwargs={"a": 1, "b": 2})).kwargs == {"a": 1, "b": 2}


async def test_unserializable_arguments_fail_before_anything_is_written(
    kit: Kit, redis_client: redis.Redis
) -> None:
    task = kit.task(status_tracker=kit.tracker)
    with pytest.raises(TypeError, match="'args' cannot be serialized"):
        await call(task.generate, args=(object(), 2))
    with pytest.raises(TypeError, match="'kwargs' cannot be serialized"):
        await call(task.generate, kwargs={"a": {1, 2}, "b": 2})
    assert namespace_keys(redis_client, kit.namespace) == []


async def test_unknown_submit_options_are_refused_before_anything_is_written(
    kit: Kit, redis_client: redis.Redis
) -> None:
    with pytest.raises(TypeError, match="bogus"):
        await call(kit.task().generate, args=(1, 2), bogus=1)
    assert namespace_keys(redis_client, kit.namespace) == []


# -- generate_many ----------------------------------------------------------------------------


async def test_generate_many_submits_one_message_per_item_in_order(kit: Kit) -> None:
    task = kit.task(status_tracker=kit.tracker)
    messages = await call(task.generate_many, args_list=[(i, i) for i in range(50)])
    assert [m.args for m in messages] == [(i, i) for i in range(50)]
    claimed = await kit.claim(n=100)
    assert [m.uuid for m in claimed] == [m.uuid for m in messages]
    for message in messages:
        assert (await call(kit.tracker.get, message)).value is TaskStatus.SUBMITTED


async def test_generate_many_zips_args_and_kwargs(kit: Kit) -> None:
    messages = await call(
        kit.task().generate_many, args_list=[(1,), (2,)], kwargs_list=[{"b": 10}, {"b": 20}]
    )
    assert [(m.args, m.kwargs) for m in messages] == [((1,), {"b": 10}), ((2,), {"b": 20})]


async def test_generate_many_with_kwargs_only(kit: Kit) -> None:
    task = kit.task(no_positional_args=True)
    messages = await call(task.generate_many, kwargs_list=[{"a": 1, "b": 2}] * 3)
    assert [m.kwargs for m in messages] == [{"a": 1, "b": 2}] * 3
    assert len({m.uuid for m in messages}) == 3


async def test_generate_many_shares_options_between_messages(
    kit: Kit, redis_client: redis.Redis
) -> None:
    task = kit.task(result_store=kit.store)
    messages = await call(
        task.generate_many,
        args_list=[(1, 2), (3, 4)],
        priority=4,
        metadata={"batch": 1},
        result_ttl=9000,
        timeout_override=1234,
        queue="other",
        ttl=40_000,
    )
    for message in messages:
        assert (message.priority, message.metadata, message.result_ttl) == (4, {"batch": 1}, 9000)
        assert (message.timeout, message.queue) == (1234, "other")
        key = f"{kit.namespace}:{keys.message_key('other', message.uuid)}"
        assert 0 < redis_client.pttl(key) <= 40_000
    assert len(await kit.claim(queue="other")) == 2


async def test_generate_many_deferred_builds_without_submitting(kit: Kit) -> None:
    task = kit.task()
    messages = await call(task.defer().generate_many, args_list=[(1, 2)])
    assert not task.deferred
    assert not await call(kit.broker.exists, messages[0])


async def test_generate_many_of_nothing_writes_nothing(kit: Kit, redis_client: redis.Redis) -> None:
    assert await call(kit.task().generate_many, args_list=[]) == []
    assert namespace_keys(redis_client, kit.namespace) == []


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({}, ValueError, "needs args_list, kwargs_list or both"),
        ({"args_list": [(1,)], "kwargs_list": [{}, {}]}, ValueError, "same length"),
        ({"args_list": [(1, 2)], "uuid": "x"}, ValueError, "cannot share 'uuid'"),
        ({"args_list": [(1, 2)], "callback": None}, ValueError, "cannot share 'callback'"),
        ({"args_list": [(1, 2)], "priority": -1}, ValueError, "priority"),
        ({"args_list": [(1, 2)], "result_ttl": 10}, ValidationError, "result store"),
        ({"args_list": [(1, 2), (object(), 1)]}, TypeError, "'args' cannot be serialized"),
    ],
)
async def test_invalid_generate_many_arguments_raise_and_write_nothing(
    kit: Kit,
    redis_client: redis.Redis,
    arguments: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        await call(kit.task(status_tracker=kit.tracker).generate_many, **arguments)
    assert namespace_keys(redis_client, kit.namespace) == []


async def test_generate_many_refuses_positional_args_with_no_positional_args(kit: Kit) -> None:
    with pytest.raises(ValidationError):
        await call(kit.task(no_positional_args=True).generate_many, args_list=[(1, 2)])
