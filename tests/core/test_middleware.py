"""Middleware plumbing: what ``add_middleware`` accepts, what travels with a broker to other
processes, which hooks a broker calls (and only those a middleware overrides), how a raising
hook is handled, and where the outcome plans call each hook, stepped in memory."""

from __future__ import annotations

import logging
from typing import Any

import dill
import pytest

from alsek.core.broker import AsyncBroker, Broker
from alsek.core.future.outcome import ended_plan, error_plan, stop_plan, too_old_plan
from alsek.core.message import Message
from alsek.core.middleware import Middleware, MiddlewareStack, before_process_steps, hook_steps
from alsek.core.steps.drivers import run
from alsek.exceptions import (
    RateLimitExceeded,
    Retry,
    SkipMessage,
    TerminationError,
    ValidationError,
)
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
from tests.core.test_outcome_plans import StandInTask, answers, names, running, steps_of


class Counting(Middleware):
    """Counts its calls (module-level, so it pickles)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def before_submit(self, message: Message) -> None:
        self.calls.append(f"before_submit:{message.uuid}")

    def after_submit(self, message: Message) -> None:
        self.calls.append(f"after_submit:{message.uuid}")

    def after_revoke(self, message: Message) -> None:
        self.calls.append(f"after_revoke:{message.uuid}")


class AsyncHooked(Middleware):
    async def after_ack(self, message: Message) -> None:
        pass


class Raising(Middleware):
    def after_ack(self, message: Message) -> None:
        raise RuntimeError("bug in a hook")


# -- add_middleware -------------------------------------------------------------------------------


def test_only_overridden_hooks_are_kept_in_order() -> None:
    stack = MiddlewareStack()
    first, second = Counting(), Counting()
    stack.add(first, allow_async=False)
    stack.add(second, allow_async=False)
    assert stack.hooks("before_submit") == (first.before_submit, second.before_submit)
    assert stack.hooks("after_ack") == ()  # not overridden: nothing to call
    assert list(stack) == [first, second]


def test_add_middleware_refuses_what_is_not_a_middleware_instance(redis_url: str) -> None:
    broker = Broker(RedisBackend(redis_url))
    with pytest.raises(TypeError, match=r"got the class Counting: pass Counting\(\)"):
        broker.add_middleware(Counting)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Middleware, got dict"):
        broker.add_middleware({})  # type: ignore[arg-type]


def test_a_sync_broker_refuses_async_hooks_and_an_async_one_takes_them(redis_url: str) -> None:
    with pytest.raises(TypeError, match=r"async def hooks \(after_ack\).*AsyncBroker"):
        Broker(RedisBackend(redis_url)).add_middleware(AsyncHooked())
    broker = AsyncBroker(AsyncRedisBackend(redis_url))
    broker.add_middleware(AsyncHooked())
    assert len(broker.middleware) == 1


def test_middleware_travels_with_the_broker(redis_url: str, namespace: str) -> None:
    broker = Broker(RedisBackend(redis_url, namespace=namespace))
    assert "middleware" not in broker.serialize()  # none: the settings are as before
    broker.add_middleware(Counting())
    rebuilt = Broker.deserialize(dill.loads(dill.dumps(broker.serialize())))
    [copy] = rebuilt.middleware
    assert isinstance(copy, Counting) and copy is not broker.middleware[0]
    assert rebuilt._middleware.hooks("after_submit") == (copy.after_submit,)


# -- hooks on a broker ----------------------------------------------------------------------------


def test_submit_and_revoke_call_their_hooks(redis_url: str, namespace: str) -> None:
    broker = Broker(RedisBackend(redis_url, namespace=namespace))
    counting = Counting()
    broker.add_middleware(counting)
    one, many = running(delay=60_000), [running(delay=60_000) for _ in range(2)]
    broker.submit(one)
    broker.submit_many(many)
    assert broker.revoke(one) and not broker.revoke(running())  # the second is not queued
    expected = [f"before_submit:{one.uuid}", f"after_submit:{one.uuid}"]
    expected += [f"before_submit:{m.uuid}" for m in many] + [f"after_submit:{m.uuid}" for m in many]
    assert counting.calls == [*expected, f"after_revoke:{one.uuid}"]


def test_submit_many_calls_after_submit_only_for_what_it_wrote(
    redis_url: str, namespace: str
) -> None:
    broker = Broker(RedisBackend(redis_url, namespace=namespace))
    taken = running(delay=60_000)
    broker.submit(taken)
    counting = Counting()
    broker.add_middleware(counting)
    clash, fresh = running(uuid=taken.uuid, args=(1,), delay=60_000), running(delay=60_000)
    with pytest.raises(Exception, match="1 of 2 messages were not submitted"):
        broker.submit_many([clash, fresh])
    assert [call for call in counting.calls if call.startswith("after")] == [
        f"after_submit:{fresh.uuid}"
    ]


def test_a_raising_hook_is_logged_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    with caplog.at_level(logging.ERROR):
        run(hook_steps([Raising().after_ack, lambda m: calls.append(m.uuid)], running(uuid="u-1")))
    assert calls == ["u-1"]
    assert "Middleware hook Raising.after_ack raised RuntimeError: bug in a hook" in caplog.text


@pytest.mark.parametrize("control", [SkipMessage("s"), Retry("r"), RateLimitExceeded("x")])
def test_before_process_may_raise_a_control_exception(control: BaseException) -> None:
    def steer(message: Message) -> None:
        raise control

    later: list[str] = []
    returned = run(before_process_steps([steer, lambda m: later.append("x")], running()))
    assert returned is control and later == []


def test_other_before_process_errors_are_logged_and_ignored() -> None:
    def broken(message: Message) -> None:
        raise ValueError("bug")

    later: list[str] = []
    assert run(before_process_steps([broken, lambda m: later.append("x")], running())) is None
    assert later == ["x"]


# -- where the plans call the hooks ---------------------------------------------------------------


class RecordingBroker:
    """A plan's broker with middleware whose hooks the plans name in their actions."""

    def __init__(self, broker: Any) -> None:
        self._inner = broker
        self._middleware = MiddlewareStack()
        self._middleware.add(Spy(), allow_async=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Spy(Middleware):
    def before_submit(self, message: Message) -> None: ...

    def after_submit(self, message: Message) -> None: ...

    def after_process(self, message: Message, result: Any, exception: Any) -> None: ...

    def after_ack(self, message: Message) -> None: ...

    def after_retry(self, message: Message, exception: BaseException) -> None: ...

    def after_dead_letter(self, message: Message, exception: BaseException) -> None: ...


def spied_task(**options: Any) -> StandInTask:
    task = StandInTask(**options)
    task.broker = RecordingBroker(task.broker)  # type: ignore[assignment]
    return task


def test_a_success_calls_after_process_then_after_ack_before_on_success() -> None:
    actions = steps_of(ended_plan(spied_task(), running(), 42, None), answers(ack=True))
    assert names(actions) == [
        "hook:after_process",
        "broker_op:ack",
        "hook:write_unshared",
        "hook:after_ack",
        "hook:on_success",
    ]
    assert actions[0].args[1:] == (42, None)


def test_a_callback_goes_through_before_and_after_submit_around_the_ack() -> None:
    callback = running()
    parent = running(callback_message_data=callback.data)
    actions = steps_of(ended_plan(spied_task(), parent, 1, None), answers(ack=True))
    assert names(actions)[:4] == [
        "hook:after_process",
        "hook:before_submit",
        "broker_op:ack",
        "hook:after_submit",
    ]
    assert actions[1].args[0].uuid == callback.uuid


def test_a_skip_acks_without_a_result_and_calls_after_ack() -> None:
    task, message = spied_task(), running()
    actions = steps_of(ended_plan(task, message, None, SkipMessage()), answers(ack=True))
    assert names(actions) == [
        "hook:after_process",
        "broker_op:ack",
        "hook:write_unshared",
        "hook:after_ack",
        "hook:on_success",
    ]
    assert actions[1].kwargs["effects"] == task.skip_effects(message)  # no result
    assert actions[2].kwargs == {"skipped": True}


def test_a_retry_calls_after_retry_before_on_retry() -> None:
    actions = steps_of(
        ended_plan(spied_task(), running(), None, ValueError("x")), answers(do_retry=True)
    )
    assert names(actions)[-3:] == ["hook:write_unshared", "hook:after_retry", "hook:on_retry"]


def test_retry_asks_for_its_delay_and_a_rate_limit_is_not_counted() -> None:
    retry = steps_of(error_plan(spied_task(), running(), Retry(delay=250)), answers(do_retry=True))
    limited = steps_of(
        error_plan(spied_task(), running(), RateLimitExceeded("full")), answers(do_retry=True)
    )
    [retry_op] = [a for a in retry if a.name == "retry"]
    [limited_op] = [a for a in limited if a.name == "retry"]
    assert retry_op.kwargs["delay"] == 250 and "counted" not in retry_op.kwargs
    assert limited_op.kwargs["counted"] is False and "delay" not in limited_op.kwargs


def test_a_failure_calls_after_dead_letter_before_on_failure() -> None:
    actions = steps_of(error_plan(spied_task(), running(), ValueError("x")))
    assert names(actions)[-3:] == [
        "hook:write_unshared",
        "hook:after_dead_letter",
        "hook:on_failure",
    ]


def test_an_expected_exception_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    task = spied_task()
    task.throws = (KeyError,)
    with caplog.at_level(logging.INFO, logger="alsek.core.future.outcome"):
        steps_of(error_plan(task, running(), KeyError("expected")))
        steps_of(error_plan(task, running(), ValueError("unexpected")))
    [expected] = [r for r in caplog.records if "KeyError" in r.getMessage()]
    [unexpected] = [r for r in caplog.records if "ValueError" in r.getMessage()]
    assert (expected.levelname, unexpected.levelname) == ("INFO", "ERROR")
    assert "which it throws: not retried" in expected.getMessage()


def test_a_stop_calls_after_process_with_its_reason_first() -> None:
    stopped = steps_of(stop_plan(spied_task(), running(), TimeoutError("late")))
    released = steps_of(stop_plan(spied_task(), running(), TerminationError("bye")))
    assert names(stopped)[0] == names(released)[0] == "hook:after_process"
    assert isinstance(stopped[0].args[2], TimeoutError)
    assert names(released)[1:] == ["broker_op:release"]


def test_a_message_too_old_is_dead_lettered_with_reason_max_age() -> None:
    task = spied_task()
    task.max_age = 10
    message = running(created_at=1, updated_at=1)
    actions = steps_of(too_old_plan(task, message))
    assert names(actions) == [
        "broker_op:fail",
        "hook:write_unshared",
        "hook:after_dead_letter",
        "hook:on_failure",
    ]
    details = message.exception_details
    assert details is not None and details.name == "max_age"
    assert details.text is not None and details.text.endswith("its max_age is 10 ms")
    assert not isinstance(actions[2].args[1], ValidationError)
