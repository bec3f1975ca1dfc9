"""How a run of a message ends, decided in one place for every pool.

Each outcome (success, error, lost worker, shutdown) is a *plan*: a generator that yields the
actions it needs (task hooks, broker operations, checks) and receives their results. A plan does
no I/O, so a test can step it in memory. ``perform`` turns a plan's actions into steps of the
engine's vocabulary (``alsek.core.steps``), which the one blocking and the one asyncio driver
run: ``run_plan`` for the thread and process pools, ``run_plan_async`` for the asyncio pool
(hooks and broker operations that are coroutines are awaited).

What each outcome does:

* success: the result, the SUCCEEDED status and the next message of a callback chain are written
  with the ack, in one round trip; then ``on_success``. A repeat of the ack (its reply was lost)
  counts as acked. A message that is gone by then was revoked (``on_revocation``) or finished
  by another worker (nothing to do).
* skip (``SkipMessage``): acked as SUCCEEDED, with no result and no callback.
* error: a revoked message only gets ``on_revocation`` (the revocation already failed it).
  Otherwise the exception is recorded and the message is retried (RETRYING, ``on_retry``):
  after its backoff, after the delay a ``Retry`` asks for, or, for ``RateLimitExceeded``,
  without counting the attempt; or, when ``do_retry`` says no (retries exhausted, an exception
  the task ``throws``), failed to the dead-letter queue (FAILED, ``on_failure``). A timeout is
  an error like any other.
* lost: a message whose worker died too many times is failed without running again.
* too old: a message claimed past its ``max_age`` is failed without running (reason
  ``max_age``).
* unknown task: a claimed body naming a task the pool does not serve is never run.
* shutdown: the lease is released, so the message runs again at once, no attempt counted.
* interrupted: a run whose process ended before reporting its end is finished as its stop (or
  its death) says, unless the process had already written the outcome (its lease is gone).

The broker's middleware (``alsek.core.middleware``) is called along: ``after_process`` once per
run that ended (by itself, ``ended_plan``, or stopped, ``stop_plan``), before its outcome;
``after_ack``, ``after_retry`` and ``after_dead_letter`` once the broker took that outcome,
before the task's own hook; ``before_submit``/``after_submit`` around the ack that submits a
callback.

A hook runs exactly when its outcome happened: ``on_retry``, ``on_failure`` and ``on_success``
only after the broker accepted the retry, failure or ack (by this call or an earlier attempt of
it whose reply was lost). Hook errors are logged and never stop the plan. A broker operation
refused because the lease was lost, or the message is gone, is logged and answers ``REFUSED``:
another worker owns the message now, and no hook runs. A Redis outage during a broker operation
or a check is waited out (every operation is idempotent, so repeating it is safe) until the
lease would have expired anyway; then it too answers ``REFUSED``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from alsek.core.broker.effects import Effect
from alsek.core.broker.groups import GroupFollowUp
from alsek.core.broker.submit import FollowUp
from alsek.core.message import Message
from alsek.core.middleware import hooks_of, plain_hooks_of
from alsek.core.status.types import TaskStatus
from alsek.core.steps.drivers import async_run, run
from alsek.core.steps.ops import Invoke, Sleep, Steps
from alsek.core.steps.outage import (
    FINISH_OUTAGE_PAUSES_MS,
    REDIS_OUTAGE_ERRORS,
    outage_pause_ms,
)
from alsek.core.task.follow_ups import failure_handler, next_group, success_handler
from alsek.core.task.helpers import build_callback_message
from alsek.defaults import DEFAULT_LEASE_TTL
from alsek.exceptions import (
    LeaseLostError,
    MaxAgeExceeded,
    MessageDoesNotExistsError,
    RateLimitExceeded,
    Retry,
    SkipMessage,
    TerminationError,
    ValidationError,
    WorkerLostError,
)
from alsek.utils.parsing import ExceptionDetails, get_exception_name, parse_exception
from alsek.utils.temporal import utcnow_timestamp_ms

log = logging.getLogger(__name__)

#: The recorded name of ``WorkerLostError``, which a claim puts on a lost attempt's message.
_WORKER_LOST = get_exception_name(WorkerLostError)


# -- what plans work with -----------------------------------------------------------------------


class PlanBroker(Protocol):
    """The broker operations plans use (``Broker`` or ``AsyncBroker``)."""

    @property
    def ack(self) -> Callable[..., Any]: ...

    @property
    def retry(self) -> Callable[..., Any]: ...

    @property
    def fail(self) -> Callable[..., Any]: ...

    @property
    def release(self) -> Callable[..., Any]: ...

    @property
    def renew(self) -> Callable[..., Any]: ...


class PlanTask(Protocol):
    """What plans read from a task (a ``Task`` or an ``AsyncTask``): its broker, its settings,
    the writes that ride with broker operations, its decisions and its hooks."""

    @property
    def name(self) -> str: ...

    @property
    def broker(self) -> PlanBroker: ...

    @property
    def max_retries(self) -> int | None: ...

    @property
    def status_tracker(self) -> object: ...

    @property
    def result_store(self) -> object: ...

    def success_effects(self, message: Message, result: Any) -> Sequence[Effect]: ...

    def skip_effects(self, message: Message) -> Sequence[Effect]: ...

    def submit_effects(self, message: Message) -> Sequence[Effect]: ...

    def retry_effects(self, message: Message) -> Sequence[Effect]: ...

    def failure_effects(self, message: Message) -> Sequence[Effect]: ...

    def do_callback(self, message: Message, result: Any) -> bool: ...

    def throws_exception(self, message: Message, exception: BaseException) -> bool: ...

    def retry_verdict(self, message: Message, exception: BaseException) -> bool: ...

    def options_for(self, message: Message) -> Any: ...

    @property
    def do_retry(self) -> Callable[..., Any]: ...

    @property
    def is_revoked(self) -> Callable[..., Any]: ...

    @property
    def write_unshared(self) -> Callable[..., Any]: ...

    @property
    def on_revocation(self) -> Callable[..., Any]: ...

    @property
    def on_retry(self) -> Callable[..., Any]: ...

    @property
    def on_failure(self) -> Callable[..., Any]: ...

    @property
    def on_success(self) -> Callable[..., Any]: ...


# -- the actions of a plan ----------------------------------------------------------------------

ActionKind = Literal["hook", "broker_op", "check"]


class _Refused:
    """Answer to a broker operation that was refused (lease lost, message gone, or Redis down)."""

    def __repr__(self) -> str:
        return "REFUSED"


REFUSED = _Refused()


@dataclass(frozen=True)
class Action:
    """One action of a plan: call ``function(*args, **kwargs)``, in the manner of ``kind``.

    ``hook``: a task hook; its errors are logged and it answers ``None``. ``broker_op``: a
    broker operation; a refusal or an outage that outlasts the lease answers ``REFUSED``.
    ``check``: a read whose value the plan needs; handled like a broker operation.
    ``direct``: a plain hook, called right where the plan is carried out rather than through
    the driver (a few microseconds less per call: middleware runs for every message).
    """

    kind: ActionKind
    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    direct: bool = False

    @property
    def name(self) -> str:
        """The called function's name, for logs."""
        return str(getattr(self.function, "__name__", self.kind))


#: A plan: yields actions, receives their answers.
Plan = Generator[Action, Any, None]


def hook(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Action:
    """A task hook to call."""
    return Action("hook", function, args, kwargs)


def broker_op(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Action:
    """A broker operation to carry out."""
    return Action("broker_op", function, args, kwargs)


def check(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Action:
    """A read whose answer the plan needs."""
    return Action("check", function, args, kwargs)


# -- plans --------------------------------------------------------------------------------------


def middleware(broker: Any, name: str, *args: Any) -> tuple[Action, ...]:
    """The actions calling the broker's middleware hook ``name`` (each like a task hook: errors
    are logged); none, at no cost, without middleware. Plain ones (no ``async def``) are
    ``direct``."""
    functions = hooks_of(broker, name)
    if not functions:
        return ()
    direct = plain_hooks_of(broker, name) is not None
    return tuple(Action("hook", function, args, direct=direct) for function in functions)


def ended_plan(task: PlanTask, message: Message, result: Any, error: BaseException | None) -> Plan:
    """Finish a run that ended by itself: ``after_process``, then its outcome (success, a
    skip, or an error)."""
    yield from middleware(task.broker, "after_process", message, result, error)
    if error is None:
        # The error of an earlier attempt is no longer the message's.
        message.update(exception_details=None)
        yield from success_plan(task, message, result)
    elif isinstance(error, SkipMessage):
        yield from skip_plan(task, message, error)
    else:
        yield from error_plan(task, message, error)


def success_plan(task: PlanTask, message: Message, result: Any) -> Plan:
    """Finish a message whose task returned ``result``."""
    try:
        effects = task.success_effects(message, result)
        next_message = None
        if message.callback_message_data and task.do_callback(message, result):
            next_message = build_callback_message(message, result)
        handlers: list[FollowUp | GroupFollowUp] = [
            *_follow_ups(task, success_handler(message, result)),
            *_group_follow_up(task, message, result),
        ]
    except TypeError as error:  # the result cannot be serialized: the attempt failed
        failure = TypeError(f"The result of {message.summary} cannot be stored: {error}")
        yield from error_plan(task, message, failure)
        return
    submitted = [*([next_message] if next_message else []), *_messages_of(handlers)]
    for item in submitted:
        yield from middleware(task.broker, "before_submit", item)
    acked = yield broker_op(
        task.broker.ack,
        message,
        effects=effects,
        then_submit=next_message,
        then_submit_effects=task.submit_effects(next_message) if next_message else (),
        **({"follow_ups": handlers} if handlers else {}),
    )
    if not (yield from _acked(task, message, acked, result)):
        return
    log.info("Successful: %s", message.summary)
    for item in submitted:
        yield from middleware(task.broker, "after_submit", item)
    yield hook(task.write_unshared, message, TaskStatus.SUCCEEDED, result)
    yield from middleware(task.broker, "after_ack", message)
    yield hook(task.on_success, message, result=result)


def skip_plan(task: PlanTask, message: Message, skip: SkipMessage) -> Plan:
    """Ack a message whose run raised ``SkipMessage``: SUCCEEDED, with no result stored and
    no callback submitted."""
    acked = yield broker_op(task.broker.ack, message, effects=task.skip_effects(message))
    if not (yield from _acked(task, message, acked, None)):
        return
    log.info("Skipped: %s%s", message.summary, f" ({skip})" if str(skip) else "")
    yield hook(task.write_unshared, message, TaskStatus.SUCCEEDED, skipped=True)
    yield from middleware(task.broker, "after_ack", message)
    yield hook(task.on_success, message, result=None)


def _acked(
    task: PlanTask, message: Message, acked: Any, result: Any
) -> Generator[Action, Any, bool]:
    """Whether the ack went through; a message gone meanwhile was revoked (``on_revocation``)
    or finished by another worker (nothing to do)."""
    if acked is REFUSED:
        return False
    if acked is False:
        if (yield check(task.is_revoked, message)):
            log.info("%s was revoked while running; its result is discarded", message.summary)
            yield hook(task.on_revocation, message, exception=None, result=result)
        return False
    return True


def error_plan(task: PlanTask, message: Message, exception: BaseException) -> Plan:
    """Finish a message whose attempt failed with ``exception``: retry or fail for good."""
    if (yield check(task.is_revoked, message)):
        yield hook(task.on_revocation, message, exception=exception, result=None)
        return
    message.update(exception_details=parse_exception(exception).as_dict())
    if (yield check(task.do_retry, message, exception)):
        _log_retry(message, exception)
        retried = yield broker_op(
            task.broker.retry,
            message,
            effects=task.retry_effects(message),
            **_retry_timing(exception),
        )
        if retried is None:
            yield hook(task.write_unshared, message, TaskStatus.RETRYING)
            yield from middleware(task.broker, "after_retry", message, exception)
            yield hook(task.on_retry, message, exception=exception)
        return
    if task.throws_exception(message, exception):
        log.info(
            "%s failed (%s), which it throws: not retried", message.summary, _describe(exception)
        )
    else:
        # The traceback is logged here only, once per message: a retry's WARNING names the
        # exception and nothing more (every attempt's traceback is on the message meanwhile).
        log.error(
            "%s failed (%s); retries exhausted",
            message.summary,
            _describe(exception),
            exc_info=exception if exception.__traceback__ is not None else None,
        )
    yield from _fail(task, message, exception)


def _retry_timing(exception: BaseException) -> dict[str, Any]:
    """``broker.retry``'s options for a retry caused by ``exception``: the delay a ``Retry``
    asks for; no attempt counted for ``RateLimitExceeded``."""
    if isinstance(exception, Retry) and exception.delay is not None:
        return {"delay": exception.delay}
    if isinstance(exception, RateLimitExceeded):
        return {"counted": False}
    return {}


def _log_retry(message: Message, exception: BaseException) -> None:
    if isinstance(exception, Retry):
        log.info("%s asked to be retried (%s)", message.summary, _describe(exception))
    elif isinstance(exception, RateLimitExceeded):
        log.info("%s was rate limited (%s); retrying, not counted", message.summary, exception)
    else:
        log.warning("%s failed (%s); retrying", message.summary, _describe(exception))


def _follow_ups(task: PlanTask, *messages: Message | None) -> list[FollowUp]:
    """``messages`` (those that are there) to submit with an outcome, with their SUBMITTED
    writes."""
    return [FollowUp(m, task.submit_effects(m)) for m in messages if m is not None]


def _group_follow_up(task: PlanTask, message: Message, result: Any) -> list[GroupFollowUp]:
    """The group that follows ``message`` in a pipeline, fed ``result`` (none if none)."""
    group = next_group(message, result)
    if group is None:
        return []
    key, members, completion = group
    return [GroupFollowUp(key, _follow_ups(task, *members), completion)]


def _messages_of(follow_ups: Sequence[FollowUp | GroupFollowUp]) -> list[Message]:
    """The messages ``follow_ups`` submit now (a group's members; its callback comes later)."""
    return [
        member.message
        for item in follow_ups
        for member in (item.members if isinstance(item, GroupFollowUp) else [item])
    ]


def _fail(task: PlanTask, message: Message, exception: BaseException) -> Plan:
    handlers = _follow_ups(task, failure_handler(message, exception))
    for handler in handlers:
        yield from middleware(task.broker, "before_submit", handler.message)
    failed = yield broker_op(
        task.broker.fail,
        message,
        effects=task.failure_effects(message),
        **({"follow_ups": handlers} if handlers else {}),
    )
    if failed is None:
        for handler in handlers:
            yield from middleware(task.broker, "after_submit", handler.message)
        yield hook(task.write_unshared, message, TaskStatus.FAILED)
        yield from middleware(task.broker, "after_dead_letter", message, exception)
        yield hook(task.on_failure, message, exception=exception)


def lost_plan(task: PlanTask, message: Message) -> Plan:
    """Fail a message whose worker died on its last allowed attempt (it is not run again)."""
    exception = WorkerLostError(
        f"{message.summary}: its worker stopped renewing its lease on the last allowed attempt"
    )
    log.error("%s lost its worker too many times; failing it", message.summary)
    # The claim counted every lost attempt, the last one included; a failed attempt that ends
    # the message is not counted as a retry (``error_plan``), so record the last one's figure.
    message.update(retries=max(message.retries - 1, 0))
    yield from _fail(task, message, exception)


def too_old_plan(task: PlanTask, message: Message) -> Plan:
    """Dead-letter, without running it, a message claimed later than its ``max_age`` after its
    submit (the dead letter's reason starts with ``max_age``)."""
    age = utcnow_timestamp_ms() - message.created_at
    limit = task.options_for(message).max_age
    text = f"claimed {age} ms after its submit; its max_age is {limit} ms"
    log.warning("Moving %s to the DLQ unrun: %s", message.summary, text)
    message.update(exception_details=ExceptionDetails(name="max_age", text=text).as_dict())
    yield from _fail(task, message, MaxAgeExceeded(f"max_age: {text}"))


def release_plan(broker: PlanBroker, message: Message) -> Plan:
    """Give the message back at once without counting an attempt (graceful shutdown)."""
    yield broker_op(broker.release, message)


def unknown_task_plan(broker: PlanBroker, message: Message, known: Iterable[PlanTask]) -> Plan:
    """Dead-letter a claimed message whose body names none of the ``known`` tasks.

    Pools claim only the tasks they serve, so this happens only when a body was rewritten to
    name another task than the one it was queued under: it is never run. Its FAILED status and
    failure record are written through the first known task that has a status tracker or a
    result store (they are keyed by the message, whatever its task), so nobody waits on it as
    if it were still queued.
    """
    known = list(known)
    names = sorted(task.name for task in known)
    reason = (
        f"Unknown task {message.task_name!r} in queue {message.queue!r}: "
        f"this worker knows {', '.join(names) or 'no tasks'}"
    )
    log.error("Moving %s to the DLQ: %s", message.summary, reason)
    message.update(
        exception_details=ExceptionDetails(
            name=get_exception_name(ValidationError), text=reason, traceback=None
        ).as_dict()
    )
    reporter = next((t for t in known if t.status_tracker or t.result_store), None)
    effects = reporter.failure_effects(message) if reporter is not None else ()
    failed = yield broker_op(broker.fail, message, effects=effects)
    if failed is None and reporter is not None:
        yield hook(reporter.write_unshared, message, TaskStatus.FAILED)
    if failed is None:
        yield from middleware(broker, "after_dead_letter", message, ValidationError(reason))


def stop_plan(task: PlanTask, message: Message, exception: BaseException) -> Plan:
    """What stopping a running future means (``after_process`` with ``exception`` first):
    shutdown releases, anything else is an error."""
    yield from middleware(task.broker, "after_process", message, None, exception)
    if isinstance(exception, TerminationError):
        yield from release_plan(task.broker, message)
    else:
        yield from error_plan(task, message, exception)


def interrupted_plan(
    task: PlanTask,
    message: Message,
    exception: BaseException | None,
    lease_ttl: int,
    may_have_finished: bool = False,
) -> Plan:
    """Finish a run whose process ended (was killed, or died) before it reported its end.

    ``exception``: why the run ended (a stop's reason, or ``WorkerLostError``); ``None``: it
    never began, so the message is released without counting an attempt. ``may_have_finished``:
    the process had begun writing the outcome itself; that outcome reached Redis exactly when
    the lease is gone (every finishing operation drops it atomically), and then nothing is left.
    """
    if may_have_finished:
        renewed = yield check(task.broker.renew, [message], lease_ttl)
        if renewed is REFUSED or not renewed[0]:
            log.info("%s was finished by its process before it ended", message.summary)
            return
    if exception is None:
        yield from release_plan(task.broker, message)
    else:
        yield from stop_plan(task, message, exception)


def exhausted_by_lost_workers(task: PlanTask, message: Message) -> bool:
    """Whether the last attempt of a message whose worker died (the claim counted it and
    recorded ``WorkerLostError``) was its last allowed one: the task would not have retried
    that attempt had it failed (``retry_verdict``: ``max_retries``, or ``retry_when``)."""
    if message.retries == 0:
        return False  # a lost attempt counts at claim: never the case of a first attempt
    details = message.exception_details
    if details is None or details.name != _WORKER_LOST:
        return False
    last_attempt = message.clone().update(retries=message.retries - 1)
    lost = WorkerLostError(f"{message.summary}: its worker stopped renewing its lease")
    return not task.retry_verdict(last_attempt, lost)


def _describe(exception: BaseException) -> str:
    text = str(exception)
    name = type(exception).__name__
    return f"{name}: {text}" if text else name


# -- carrying plans out -------------------------------------------------------------------------


def perform(plan: Plan, give_up_after_ms: int = DEFAULT_LEASE_TTL) -> Steps[None]:
    """The steps that carry out ``plan``'s actions, answering each with its outcome.

    ``give_up_after_ms``: how long a broker operation or check waits out a Redis outage.
    """
    answer: Any = None
    try:
        while True:
            try:
                action = plan.send(answer)
            except StopIteration:
                return
            answer = yield from _carry_out(action, give_up_after_ms)
    finally:
        plan.close()


def _carry_out(action: Action, give_up_after_ms: int) -> Steps[Any]:
    invoke = Invoke(action.function, action.args, action.kwargs)
    if action.kind == "hook":
        try:
            if action.direct:
                return action.function(*action.args, **action.kwargs)
            return (yield invoke)
        except Exception as error:
            log.critical(
                "Hook %s raised %s: %s", action.name, type(error).__name__, error, exc_info=error
            )
            return None
    deadline = time.monotonic() + give_up_after_ms / 1000
    attempt = 0
    while True:
        try:
            return (yield invoke)
        except (LeaseLostError, MessageDoesNotExistsError) as error:
            return _refusal(action, error)
        except REDIS_OUTAGE_ERRORS as error:
            if time.monotonic() >= deadline:
                return _refusal(action, error)
            yield Sleep(outage_pause_ms(attempt, FINISH_OUTAGE_PAUSES_MS) / 1000)
            attempt += 1


def _refusal(action: Action, error: Exception) -> _Refused:
    log.warning("%s refused: %s", action.name, error)
    return REFUSED


def run_plan(plan: Plan, give_up_after_ms: int = DEFAULT_LEASE_TTL) -> None:
    """Run a plan with blocking calls."""
    run(perform(plan, give_up_after_ms))


async def run_plan_async(plan: Plan, give_up_after_ms: int = DEFAULT_LEASE_TTL) -> None:
    """Run a plan, awaiting hooks and broker calls that are coroutines."""
    await async_run(perform(plan, give_up_after_ms))
