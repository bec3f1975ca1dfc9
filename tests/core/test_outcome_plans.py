"""Outcome plans, stepped in memory: which actions each outcome takes, in which order.

The task and the broker are plain stand-ins (``StandInTask``, ``StandInBroker``): plans only
name their methods in the actions they yield, and each test answers those actions itself, as the
drivers would (REFUSED for a refused or outlasted broker operation). ``perform`` is stepped the
same way, with errors thrown in where the real call would raise them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from alsek.core.broker.effects import Effect, SetEffect
from alsek.core.future.outcome import (
    REFUSED,
    Action,
    Plan,
    error_plan,
    exhausted_by_lost_workers,
    interrupted_plan,
    lost_plan,
    perform,
    release_plan,
    run_plan,
    run_plan_async,
    stop_plan,
    success_plan,
    unknown_task_plan,
)
from alsek.core.message import Message
from alsek.core.status.types import TaskStatus
from alsek.core.steps.ops import Invoke, Sleep
from alsek.core.task.message_options import MessageOptions
from alsek.exceptions import LeaseLostError, TerminationError, WorkerLostError
from alsek.utils.parsing import ExceptionDetails, get_exception_name


class StandInBroker:
    """The broker operations plans name; calling one records it (for ``run_plan`` tests)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.raises: dict[str, list[BaseException]] = {}

    def _record(self, name: str) -> None:
        self.calls.append(name)
        pending = self.raises.get(name)
        if pending:
            raise pending.pop(0)

    def ack(self, message: Message, **options: Any) -> bool:
        self._record("ack")
        return True

    def retry(self, message: Message, **options: Any) -> None:
        self._record("retry")

    def fail(self, message: Message, **options: Any) -> None:
        self._record("fail")

    def release(self, message: Message) -> None:
        self._record("release")

    def renew(self, messages: list[Message], lease_ttl: int) -> list[bool]:
        self._record("renew")
        return [True for _ in messages]


class StandInTask:
    """A task's settings, effects, decisions and hooks, as plain Python."""

    def __init__(self, name: str = "work", max_retries: int | None = 2) -> None:
        self.name = name
        self.max_retries = max_retries
        self.broker = StandInBroker()
        self.status_tracker: object = None
        self.result_store: object = None
        self.hooks: list[str] = []
        self.max_age: int | None = None
        self.throws: tuple[type[BaseException], ...] = ()

    def success_effects(self, message: Message, result: Any) -> list[Effect]:
        if isinstance(result, set):
            raise TypeError("a set is not JSON serializable")
        return [SetEffect(f"result:{message.uuid}", repr(result))]

    def submit_effects(self, message: Message) -> list[Effect]:
        return [SetEffect(f"status:{message.uuid}", "SUBMITTED")]

    def retry_effects(self, message: Message) -> list[Effect]:
        return [SetEffect(f"status:{message.uuid}", "RETRYING")]

    def failure_effects(self, message: Message) -> list[Effect]:
        return [SetEffect(f"failure:{message.uuid}", "FAILED")]

    def skip_effects(self, message: Message) -> list[Effect]:
        return [SetEffect(f"status:{message.uuid}", "SUCCEEDED")]

    def do_callback(self, message: Message, result: Any) -> bool:
        return True

    def throws_exception(self, message: Message, exception: BaseException) -> bool:
        return isinstance(exception, self.throws)

    def options_for(self, message: Message) -> MessageOptions:
        return MessageOptions(self.max_age, self.throws, None)

    def do_retry(self, message: Message, exception: BaseException) -> bool:
        return self.retry_verdict(message, exception)

    def retry_verdict(self, message: Message, exception: BaseException) -> bool:
        return self.max_retries is None or message.retries < self.max_retries

    def is_revoked(self, message: Message) -> bool:
        return False

    def write_unshared(self, message: Message, status: TaskStatus, result: Any = None) -> None:
        self.hooks.append(f"write_unshared:{status.name}")

    def on_revocation(self, message: Message, exception: Any, result: Any) -> None:
        self.hooks.append("on_revocation")

    def on_retry(self, message: Message, exception: BaseException) -> None:
        self.hooks.append("on_retry")

    def on_failure(self, message: Message, exception: BaseException) -> None:
        self.hooks.append("on_failure")

    def on_success(self, message: Message, result: Any) -> None:
        self.hooks.append("on_success")


Answer = Callable[[Action], Any]


def steps_of(plan: Plan, answer: Answer | None = None) -> list[Action]:
    """Step ``plan`` to its end; each action is answered by ``answer`` (default: ``None``)."""
    actions: list[Action] = []
    reply: Any = None
    while True:
        try:
            action = plan.send(reply)
        except StopIteration:
            return actions
        actions.append(action)
        reply = answer(action) if answer else None


def names(actions: list[Action]) -> list[str]:
    return [f"{action.kind}:{action.name}" for action in actions]


def answers(**by_name: Any) -> Answer:
    """Answer each action by its function's name (others: ``None``)."""
    return lambda action: by_name.get(action.name)


def running(**fields: Any) -> Message:
    return Message("work", queue="q", **fields)


# -- success --------------------------------------------------------------------------------------


def test_success_acks_with_the_result_writes_then_records_and_calls_on_success() -> None:
    task, message = StandInTask(), running()
    actions = steps_of(success_plan(task, message, 42), answers(ack=True))
    assert names(actions) == [
        "broker_op:ack",
        "hook:write_unshared",
        "hook:on_success",
    ]
    ack = actions[0]
    assert ack.function == task.broker.ack
    assert ack.kwargs["effects"] == task.success_effects(message, 42)
    assert ack.kwargs["then_submit"] is None
    assert actions[1].args[1] is TaskStatus.SUCCEEDED


def test_success_submits_the_next_message_of_the_chain_with_the_ack() -> None:
    task = StandInTask()
    message = running(callback_message_data=Message("next", queue="q").data)
    [ack, *_] = steps_of(success_plan(task, message, 7), answers(ack=True))
    next_message = ack.kwargs["then_submit"]
    assert next_message.task_name == "next"
    assert next_message.previous_result == 7
    assert next_message.progenitor_uuid == message.uuid
    assert ack.kwargs["then_submit_effects"] == task.submit_effects(next_message)


def test_a_refused_ack_ends_the_plan() -> None:
    actions = steps_of(success_plan(StandInTask(), running(), 1), answers(ack=REFUSED))
    assert names(actions) == ["broker_op:ack"]


def test_an_ack_of_a_revoked_message_only_calls_on_revocation() -> None:
    actions = steps_of(
        success_plan(StandInTask(), running(), 1), answers(ack=False, is_revoked=True)
    )
    assert names(actions) == ["broker_op:ack", "check:is_revoked", "hook:on_revocation"]
    assert actions[-1].kwargs == {"exception": None, "result": 1}


def test_an_ack_of_a_message_finished_elsewhere_does_nothing_more() -> None:
    actions = steps_of(
        success_plan(StandInTask(), running(), 1), answers(ack=False, is_revoked=False)
    )
    assert names(actions) == ["broker_op:ack", "check:is_revoked"]


def test_a_result_that_cannot_be_stored_fails_the_attempt_instead() -> None:
    message = running()
    actions = steps_of(success_plan(StandInTask(), message, {1, 2}), answers(do_retry=True))
    assert names(actions)[:3] == ["check:is_revoked", "check:do_retry", "broker_op:retry"]
    assert "ack" not in [action.name for action in actions]
    assert message.exception_details is not None
    assert "cannot be stored" in (message.exception_details.text or "")


# -- errors ---------------------------------------------------------------------------------------


def test_an_error_of_a_revoked_message_only_calls_on_revocation() -> None:
    message, error = running(), ValueError("boom")
    actions = steps_of(error_plan(StandInTask(), message, error), answers(is_revoked=True))
    assert names(actions) == ["check:is_revoked", "hook:on_revocation"]
    assert actions[-1].kwargs == {"exception": error, "result": None}
    assert message.exception_details is None


def test_an_error_with_retries_left_retries_then_records_retrying_and_calls_on_retry() -> None:
    task, message = StandInTask(), running()
    actions = steps_of(error_plan(task, message, ValueError("boom")), answers(do_retry=True))
    assert names(actions) == [
        "check:is_revoked",
        "check:do_retry",
        "broker_op:retry",
        "hook:write_unshared",
        "hook:on_retry",
    ]
    assert actions[2].kwargs["effects"] == task.retry_effects(message)
    assert actions[3].args[1] is TaskStatus.RETRYING
    assert message.exception_details is not None
    assert message.exception_details.text == "boom"


def test_a_refused_retry_records_nothing_and_calls_no_hook() -> None:
    actions = steps_of(
        error_plan(StandInTask(), running(), ValueError("boom")),
        answers(do_retry=True, retry=REFUSED),
    )
    assert names(actions)[-1] == "broker_op:retry"


def test_exhausted_retries_fail_the_message_then_record_failed_and_call_on_failure() -> None:
    task, message = StandInTask(), running()
    actions = steps_of(error_plan(task, message, ValueError("boom")), answers(do_retry=False))
    assert names(actions) == [
        "check:is_revoked",
        "check:do_retry",
        "broker_op:fail",
        "hook:write_unshared",
        "hook:on_failure",
    ]
    assert actions[2].kwargs["effects"] == task.failure_effects(message)
    assert actions[3].args[1] is TaskStatus.FAILED


def test_a_refused_fail_records_nothing_and_calls_no_hook() -> None:
    actions = steps_of(
        error_plan(StandInTask(), running(), ValueError("boom")),
        answers(do_retry=False, fail=REFUSED),
    )
    assert names(actions)[-1] == "broker_op:fail"


# -- lost workers, shutdown, unknown tasks --------------------------------------------------------


def lost(**fields: Any) -> Message:
    """A message as a claim returns it after its worker died (``WorkerLostError`` recorded)."""
    details = ExceptionDetails(name=get_exception_name(WorkerLostError), text="lost")
    return running(exception_details=details, **fields)


def test_a_message_lost_too_often_is_failed_with_retries_at_the_maximum() -> None:
    task, message = StandInTask(max_retries=2), lost(retries=3)
    assert exhausted_by_lost_workers(task, message)
    actions = steps_of(lost_plan(task, message))
    assert names(actions) == ["broker_op:fail", "hook:write_unshared", "hook:on_failure"]
    assert isinstance(actions[2].kwargs["exception"], WorkerLostError)
    assert message.retries == 2


def test_retries_within_the_maximum_are_not_exhausted_by_lost_workers() -> None:
    assert not exhausted_by_lost_workers(StandInTask(max_retries=2), lost(retries=2))
    assert not exhausted_by_lost_workers(StandInTask(max_retries=None), lost(retries=9))


def test_only_a_lost_attempt_can_be_exhausted_at_claim() -> None:
    """Retries beyond ``max_retries`` without a lost worker were granted by ``retry_when``."""
    assert not exhausted_by_lost_workers(StandInTask(max_retries=0), running(retries=3))


def test_shutdown_releases_the_message() -> None:
    task = StandInTask()
    actions = steps_of(stop_plan(task, running(), TerminationError("shutdown")))
    assert names(actions) == ["broker_op:release"]
    assert actions[0].function == task.broker.release
    assert names(steps_of(release_plan(task.broker, running()))) == ["broker_op:release"]


def test_any_other_stop_is_an_error_of_the_attempt() -> None:
    actions = steps_of(stop_plan(StandInTask(), running(), TimeoutError("too slow")))
    assert names(actions)[:2] == ["check:is_revoked", "check:do_retry"]


def test_an_interrupted_run_that_never_began_is_released_uncounted() -> None:
    actions = steps_of(interrupted_plan(StandInTask(), running(), None, lease_ttl=30_000))
    assert names(actions) == ["broker_op:release"]


def test_an_interrupted_run_ends_as_its_stop_or_its_death_says() -> None:
    """As ``stop_plan`` would: a death or a timeout fails the attempt, a shutdown releases."""
    reply = answers(do_retry=True)
    for stop in (WorkerLostError("killed"), TimeoutError("slow"), TerminationError("stop")):
        interrupted = steps_of(interrupted_plan(StandInTask(), running(), stop, 30_000), reply)
        stopped = steps_of(stop_plan(StandInTask(), running(), stop), reply)
        assert names(interrupted) == names(stopped)
    assert names(steps_of(stop_plan(StandInTask(), running(), TerminationError("stop")))) == [
        "broker_op:release"
    ]


@pytest.mark.parametrize("renewed", [[False], [None], REFUSED])
def test_a_run_interrupted_while_finishing_without_its_lease_was_finished(renewed: Any) -> None:
    """The process's own outcome reached Redis (it drops the lease): nothing is written twice."""
    task, message = StandInTask(), running()
    plan = interrupted_plan(
        task, message, WorkerLostError("killed"), 30_000, may_have_finished=True
    )
    actions = steps_of(plan, answers(renew=renewed))
    assert names(actions) == ["check:renew"]
    assert actions[0].args == ([message], 30_000)


def test_a_run_interrupted_while_finishing_with_its_lease_held_is_finished_here() -> None:
    error = TimeoutError("slow")
    plan = interrupted_plan(StandInTask(), running(), error, 30_000, may_have_finished=True)
    actions = steps_of(plan, answers(renew=[True], do_retry=False))
    failed = steps_of(error_plan(StandInTask(), running(), error), answers(do_retry=False))
    assert names(actions) == ["check:renew", *names(failed)]
    assert "broker_op:fail" in names(failed)


def test_an_unknown_task_is_dead_lettered_through_a_task_that_reports() -> None:
    silent, reporter = StandInTask("silent"), StandInTask("reporter")
    reporter.status_tracker = object()
    broker, message = StandInBroker(), Message("ghost", queue="q")
    actions = steps_of(unknown_task_plan(broker, message, [silent, reporter]))
    assert names(actions) == ["broker_op:fail", "hook:write_unshared"]
    assert actions[0].function == broker.fail
    assert actions[0].kwargs["effects"] == reporter.failure_effects(message)
    assert actions[1].function == reporter.write_unshared
    assert message.exception_details is not None
    assert "'ghost'" in (message.exception_details.text or "")
    assert "reporter, silent" in (message.exception_details.text or "")


def test_an_unknown_task_without_a_reporter_is_only_dead_lettered() -> None:
    actions = steps_of(unknown_task_plan(StandInBroker(), running(), [StandInTask()]))
    assert names(actions) == ["broker_op:fail"]
    assert actions[0].kwargs["effects"] == ()


# -- carrying plans out ---------------------------------------------------------------------------


def test_perform_answers_a_refused_broker_operation_with_refused() -> None:
    steps = perform(error_plan(StandInTask(), running(), ValueError("boom")))
    op = steps.send(None)
    while not (isinstance(op, Invoke) and op.function.__name__ == "retry"):
        op = steps.send(op.function.__name__ == "do_retry")
    with pytest.raises(StopIteration):  # the plan got REFUSED: no RETRYING is written
        steps.throw(LeaseLostError("taken over"))


def test_perform_waits_out_an_outage_then_repeats_the_operation() -> None:
    steps = perform(release_plan(StandInBroker(), running()), give_up_after_ms=60_000)
    first = steps.send(None)
    assert isinstance(first, Invoke) and first.function.__name__ == "release"
    pause = steps.throw(redis.ConnectionError("down"))
    assert isinstance(pause, Sleep) and pause.seconds > 0
    again = steps.send(None)
    assert again == first
    with pytest.raises(StopIteration):
        steps.send(None)


def test_perform_gives_up_on_an_outage_that_outlasts_the_lease() -> None:
    task = StandInTask()
    steps = perform(error_plan(task, running(), ValueError("boom")), give_up_after_ms=0)
    op = steps.send(None)
    while not (isinstance(op, Invoke) and op.function.__name__ == "fail"):
        op = steps.send(False)  # not revoked, no retry
    with pytest.raises(StopIteration):  # REFUSED: FAILED is not written
        steps.throw(redis.TimeoutError("still down"))


def test_run_plan_logs_hook_errors_and_goes_on() -> None:
    task = StandInTask()

    def on_retry(message: Message, exception: BaseException) -> None:
        raise RuntimeError("hook bug")

    task.on_retry = on_retry  # type: ignore[method-assign]
    run_plan(error_plan(task, running(), ValueError("boom")))
    assert task.broker.calls == ["retry"]
    assert task.hooks == ["write_unshared:RETRYING"]


def test_run_plan_skips_the_status_write_and_the_hook_of_a_refused_operation() -> None:
    task = StandInTask(max_retries=0)
    task.broker.raises["fail"] = [LeaseLostError("taken over")]
    run_plan(error_plan(task, running(), ValueError("boom")))
    assert task.broker.calls == ["fail"]
    assert task.hooks == []


def test_run_plan_calls_on_retry_once_the_broker_retried() -> None:
    task = StandInTask()
    run_plan(error_plan(task, running(), ValueError("boom")))
    assert task.broker.calls == ["retry"]
    assert task.hooks == ["write_unshared:RETRYING", "on_retry"]


async def test_run_plan_async_awaits_coroutine_hooks_and_operations() -> None:
    task = StandInTask()
    seen: list[str] = []

    async def ack(message: Message, **options: Any) -> bool:
        seen.append("ack")
        return True

    async def on_success(message: Message, result: Any) -> None:
        seen.append(f"on_success:{result}")

    task.broker.ack = ack  # type: ignore[method-assign]
    task.on_success = on_success  # type: ignore[method-assign]
    await run_plan_async(success_plan(task, running(), 5))
    assert seen == ["ack", "on_success:5"]
    assert task.hooks == ["write_unshared:SUCCEEDED"]
