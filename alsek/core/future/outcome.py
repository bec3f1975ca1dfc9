"""How a run of a message ends, decided in one place for every pool.

Each outcome (success, error, lost worker, shutdown) is a *plan*: a generator that yields the
calls it needs (task hooks, broker operations, checks) and receives their results. The thread,
process and asyncio pools all run the same plans, through ``run_plan`` (blocking) or
``run_plan_async`` (awaiting hooks and broker calls that are coroutines).

What each outcome does:

* success: the result, the SUCCEEDED status and the next message of a callback chain are written
  with the ack, in one round trip; then ``on_success``. A message that is gone by then was
  revoked (``on_revocation``) or finished by another worker (nothing to do).
* error: a revoked message only gets ``on_revocation`` (the revocation already failed it).
  Otherwise the exception is recorded and the message is retried after its backoff
  (``on_retry``, RETRYING) or, with retries exhausted, failed to the dead-letter queue
  (``on_failure``, FAILED). A timeout is an error like any other.
* lost: a message whose worker died too many times is failed without running again.
* shutdown: the lease is released, so the message runs again at once, no attempt counted.

Hook errors are logged and never stop the plan. A broker operation refused because the lease was
lost, or the message is gone, is logged: another worker owns the message now. A Redis outage
during a broker operation is waited out (every operation is idempotent, so retrying is safe)
until the lease would have expired anyway.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from alsek.core.message import Message
from alsek.core.status.types import TaskStatus
from alsek.core.task.helpers import build_callback_message
from alsek.defaults import DEFAULT_LEASE_TTL
from alsek.exceptions import (
    LeaseLostError,
    MessageDoesNotExistsError,
    TerminationError,
    ValidationError,
    WorkerLostError,
)
from alsek.utils.parsing import ExceptionDetails, get_exception_name, parse_exception

log = logging.getLogger(__name__)

CallKind = Literal["hook", "broker", "check"]

#: Redis errors that mean "not reachable right now": the call is repeated.
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError)
#: Pauses between repeats of a broker call during an outage: doubling, capped.
OUTAGE_PAUSES_MS = (50, 2000)


class _Refused:
    """Result of a broker call that was refused (lease lost, message gone, or Redis down)."""

    def __repr__(self) -> str:
        return "REFUSED"


REFUSED = _Refused()


@dataclass(frozen=True)
class Call:
    """One step of a plan.

    ``hook``: a task hook; errors are logged and swallowed. ``broker``: a broker operation;
    refusals become ``REFUSED`` and outages are waited out. ``check``: a read whose value the plan
    needs; outages are waited out.
    """

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    kind: CallKind = "check"


Plan = Generator[Call, Any, None]


def _hook(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Call:
    return Call(function, args, kwargs, "hook")


def _broker(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Call:
    return Call(function, args, kwargs, "broker")


def _check(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Call:
    return Call(function, args, kwargs, "check")


# -- plans ----------------------------------------------------------------------------------


def success_plan(task: Any, message: Message, result: Any) -> Plan:
    """Finish a message whose task returned ``result``."""
    try:
        effects = task.success_effects(message, result)
        next_message = None
        if message.callback_message_data and task.do_callback(message, result):
            next_message = build_callback_message(message, result)
    except TypeError as error:  # the result cannot be serialized: the attempt failed
        failure = TypeError(f"The result of {message.summary} cannot be stored: {error}")
        yield from error_plan(task, message, failure)
        return
    acked = yield _broker(
        task.broker.ack,
        message,
        effects=effects,
        then_submit=next_message,
        then_submit_effects=task.submit_effects(next_message) if next_message else (),
    )
    if acked is REFUSED:
        return
    if acked is False:
        if (yield _check(task.is_revoked, message)):
            log.info("%s was revoked while running; its result is discarded", message.summary)
            yield _hook(task.on_revocation, message, exception=None, result=result)
        return
    log.info("Successful: %s", message.summary)
    yield _hook(task.write_unshared, message, TaskStatus.SUCCEEDED, result)
    yield _hook(task.on_success, message, result=result)


def error_plan(task: Any, message: Message, exception: BaseException) -> Plan:
    """Finish a message whose attempt failed with ``exception``: retry or fail for good."""
    if (yield _check(task.is_revoked, message)):
        yield _hook(task.on_revocation, message, exception=exception, result=None)
        return
    message.update(exception_details=parse_exception(exception).as_dict())
    if (yield _check(task.do_retry, message, exception)):
        log.warning("%s failed (%s); retrying", message.summary, _describe(exception))
        yield _hook(task.on_retry, message, exception=exception)
        if (yield _broker(task.broker.retry, message, effects=task.retry_effects(message))) is None:
            yield _hook(task.write_unshared, message, TaskStatus.RETRYING)
        return
    log.error("%s failed (%s); retries exhausted", message.summary, _describe(exception))
    yield from _fail(task, message, exception)


def _fail(task: Any, message: Message, exception: BaseException) -> Plan:
    yield _hook(task.on_failure, message, exception=exception)
    if (yield _broker(task.broker.fail, message, effects=task.failure_effects(message))) is None:
        yield _hook(task.write_unshared, message, TaskStatus.FAILED)


def lost_plan(task: Any, message: Message) -> Plan:
    """Fail a message whose worker died on its last allowed attempt (it is not run again)."""
    exception = WorkerLostError(
        f"{message.summary}: its worker stopped renewing its lease on the last allowed attempt"
    )
    log.error("%s lost its worker too many times; failing it", message.summary)
    # The claim counted every lost attempt, the last one included; a failed attempt that ends
    # the message is not counted as a retry (``error_plan``), so record the same figure.
    message.update(retries=min(message.retries, task.max_retries))
    yield from _fail(task, message, exception)


def release_plan(broker: Any, message: Message) -> Plan:
    """Give the message back at once without counting an attempt (graceful shutdown)."""
    yield _broker(broker.release, message)


def unknown_task_plan(broker: Any, message: Message, known: list[Any]) -> Plan:
    """Dead-letter a message that names none of the ``known`` tasks, with the reason.

    Its FAILED status and failure record are written through the first known task that has a
    status tracker or a result store (they are keyed by the message, whatever its task), so
    nobody waits on it as if it were still queued.
    """
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
    if (yield _broker(broker.fail, message, effects=effects)) is None and reporter is not None:
        yield _hook(reporter.write_unshared, message, TaskStatus.FAILED)


def stop_plan(task: Any, message: Message, exception: BaseException) -> Plan:
    """What stopping a running future means: shutdown releases, anything else is an error."""
    if isinstance(exception, TerminationError):
        yield from release_plan(task.broker, message)
    else:
        yield from error_plan(task, message, exception)


def exhausted_by_lost_workers(task: Any, message: Message) -> bool:
    """Whether lost attempts (counted at claim) already used up the message's retries.

    In a normal run ``retries`` never exceeds ``max_retries``: the attempt that reaches it fails
    the message. Only attempts whose worker died can push it beyond.
    """
    return task.max_retries is not None and message.retries > task.max_retries


def _describe(exception: BaseException) -> str:
    text = str(exception)
    name = type(exception).__name__
    return f"{name}: {text}" if text else name


# -- running plans -----------------------------------------------------------------------------


def _outage_pause_ms(attempt: int) -> int:
    first, last = OUTAGE_PAUSES_MS
    return int(min(first * 2**attempt, last))


def _refusal(call: Call, error: Exception) -> _Refused:
    log.warning("%s refused: %s", getattr(call.function, "__name__", "operation"), error)
    return REFUSED


def _hook_failed(call: Call, error: BaseException) -> None:
    name = getattr(call.function, "__name__", "hook")
    log.critical("Hook %s raised %s: %s", name, type(error).__name__, error, exc_info=error)


def run_plan(plan: Plan, give_up_after_ms: int = DEFAULT_LEASE_TTL) -> None:
    """Run a plan with blocking calls."""
    value: Any = None
    while True:
        try:
            call = plan.send(value)
        except StopIteration:
            return
        value = _run_call(call, give_up_after_ms)


def _run_call(call: Call, give_up_after_ms: int) -> Any:
    if call.kind == "hook":
        try:
            return call.function(*call.args, **call.kwargs)
        except Exception as error:
            _hook_failed(call, error)
            return None
    deadline = time.monotonic() + give_up_after_ms / 1000
    attempt = 0
    while True:
        try:
            return call.function(*call.args, **call.kwargs)
        except (LeaseLostError, MessageDoesNotExistsError) as error:
            return _refusal(call, error)
        except OUTAGE_ERRORS as error:
            if time.monotonic() >= deadline:
                return _refusal(call, error)
            time.sleep(_outage_pause_ms(attempt) / 1000)
            attempt += 1


async def run_plan_async(plan: Plan, give_up_after_ms: int = DEFAULT_LEASE_TTL) -> None:
    """Run a plan, awaiting hooks and broker calls that are coroutines."""
    value: Any = None
    while True:
        try:
            call = plan.send(value)
        except StopIteration:
            return
        value = await _run_call_async(call, give_up_after_ms)


async def _run_call_async(call: Call, give_up_after_ms: int) -> Any:
    if call.kind == "hook":
        try:
            return await _maybe_await(call.function(*call.args, **call.kwargs))
        except Exception as error:
            _hook_failed(call, error)
            return None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after_ms / 1000
    attempt = 0
    while True:
        try:
            return await _maybe_await(call.function(*call.args, **call.kwargs))
        except (LeaseLostError, MessageDoesNotExistsError) as error:
            return _refusal(call, error)
        except OUTAGE_ERRORS as error:
            if loop.time() >= deadline:
                return _refusal(call, error)
            await asyncio.sleep(_outage_pause_ms(attempt) / 1000)
            attempt += 1


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
